"""MOD-002 whale: taker orders of at least ``min_notional_usd``, rebuilt from their fills.

One market order arrives as many fills; a per-fill filter misses most whales. Fills are
grouped back into taker orders:

- fills that share exchange, symbol, taker side, exact trade time and ``taker_order_id``
  (Coinbase stamps every fill of a taker order with the order's match time) are one group;
  fills without a ``taker_order_id`` (Binance) share a null id;
- a group without a ``taker_order_id`` is split into runs of consecutive integer trade ids:
  a gap (another taker's fill in between) starts a new order. Ids that are missing or not
  integers never split an order; such fills sort after the numbered ones.

The grouping is one watermarked streaming aggregation keyed on the trade time, so a group
is emitted once, when the watermark (max trade time minus ``watermark_delay_seconds``)
passes it: an order whose fills span micro-batches is still one row. Spark drops a fill as
late when its trade time is at or before the previous micro-batch's watermark. The split
into runs and the order figures are stateless array expressions on each emitted group;
fills are sorted first (rows of a group arrive in no particular order). Native Spark only:
the same plan runs on PySpark 3.5 and 4.x in append output mode.

Early path (``early_alerts``, ``early.py``, ADR-024): the stream job's stateless early query
alerts in the batch that read an order when that batch proves it complete (the trades with
the ids just before and after it are in the batch); the order figures come from the same
expressions (``orders.py``), so the alert equals the one this stateful plan emits later.

``process``, ``early_alerts`` and ``build_alerts`` build plans on the driver; executors run them.

Example::

    detector = WhaleDetector()
    detector.configure(config)
    orders = detector.process(valid_trades)           # streaming whale_trades rows
    alerts = detector.build_alerts(orders_batch)      # inside foreachBatch
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from coattail_detector_whale.config import WhaleConfig
from coattail_detector_whale.early import EarlyOrders
from coattail_detector_whale.fills import TAKER_SIDES, usd_quoted_pairs
from coattail_detector_whale.metadata import DETECTOR_INFO
from coattail_detector_whale.orders import GROUP_KEY, fill_struct, order_figures, split_runs
from coattail_detector_whale.schema import WHALE_TRADES
from coattail_framework.alerts import alert_columns, select_alerts
from coattail_framework.detector import BaseDetector, EarlyAlerts
from coattail_framework.errors import ConfigError
from coattail_framework.partitioning import day
from coattail_framework.quality.rules import QualityRule
from coattail_framework.schemas import EVENT_TIME_COLUMN

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

ORDER_KEY = ("exchange", "symbol", "side", "order_time", "first_trade_id", "taker_order_id")
"""``whale_trades`` columns that identify an order: the parts of its alert id."""
_DETAILS = StructType(
    [StructField(f.name, StringType(), True) if f.name == "order_time" else f for f in WHALE_TRADES.fields]
)
"""The schema ``details`` is read with (``order_time`` as text: it is taken from ``detected_at``)."""


class WhaleDetector(BaseDetector[WhaleConfig]):
    """Whale taker orders (``whale_trades``) and ``whale_trade`` alerts."""

    config_model: ClassVar[type[WhaleConfig]] = WhaleConfig
    info = DETECTOR_INFO
    module_id = DETECTOR_INFO.module_id
    module_name = DETECTOR_INFO.module_name
    alert_types = DETECTOR_INFO.alert_type_names
    output_table = "whale_trades"
    output_schema = WHALE_TRADES
    partition_spec = (day("order_time"),)

    output_key: Sequence[str] = ORDER_KEY
    """The columns that identify an order in ``whale_trades`` (its alert id's parts)."""

    _usd_pairs: tuple[str, ...] = ()
    _built: _Expressions | None = None
    _early: EarlyOrders | None = None

    def on_configured(self, config: CoattailConfig) -> None:
        """Keep the (exchange, symbol) pairs quoted in a currency counted as USD."""
        self._built = self._early = None
        quotes = set(self.settings.usd_quote_currencies)
        self._usd_pairs = usd_quoted_pairs(config.symbols.pairs(), quotes)
        if not self._usd_pairs:
            raise ConfigError(
                f"{config.source_of(('symbols',))}: symbols has no instrument quoted in "
                f"modules.whale.usd_quote_currencies {sorted(quotes)}; add one (e.g. BTC/USDT) or extend the list"
            )

    @property
    def usd_pairs(self) -> tuple[str, ...]:
        """``exchange:symbol`` of the configured instruments quoted in a currency counted as USD (sorted).

        The instruments MOD-002 evaluates; MOD-004, MOD-005 and MOD-008 configure a
        ``WhaleDetector`` to read it, so they follow the same instruments."""
        return self._usd_pairs

    def quality_rules(self) -> Sequence[QualityRule]:
        """Flag fills without a taker side: the whale detector cannot place them in an order."""
        return (
            QualityRule(
                name="whale_side_known",
                severity="warn",
                description="side is buy or sell (MOD-002 skips fills without a taker side)",
                check=lambda _: F.col("side").isin(*TAKER_SIDES),
            ),
        )

    @property
    def _expressions(self) -> _Expressions:
        """This configuration's column expressions (built on first use: reused by every micro-batch)."""
        if self._built is None:
            self._built = _Expressions.build(self.settings, self._usd_pairs)
        return self._built

    def _fills(self, events: DataFrame) -> DataFrame:
        """The fills MOD-002 evaluates: USD-quoted instruments, a taker side, positive price and quantity."""
        return events.where(self._expressions.evaluated_fill)

    def _order_rows(self, orders: DataFrame) -> DataFrame:
        """``WHALE_TRADES`` rows of ``orders`` (group key columns + an ``order`` struct) above the minimum."""
        expressions = self._expressions
        return orders.where(expressions.whale_order).select(*expressions.order_row)

    def process(self, events: DataFrame) -> DataFrame:
        """Whale orders from valid trades; fills of non-USD instruments or without a side are skipped."""
        delay_ms = round(self.settings.watermark_delay_seconds * 1000)
        groups = (
            self._fills(events)
            .withWatermark(EVENT_TIME_COLUMN, f"{delay_ms} milliseconds")
            .groupBy(*GROUP_KEY)
            .agg(F.array_sort(F.collect_list(fill_struct())).alias("fills"))
        )
        runs = split_runs(F.col("fills"), split_on_id_gaps=F.col("taker_order_id").isNull())
        return self._order_rows(
            groups.select(
                *GROUP_KEY, F.explode(F.transform(runs, lambda run: order_figures(run, F.col("side")))).alias("order")
            )
        )

    def early_alerts(self, trades: DataFrame) -> EarlyAlerts:
        """Alerts on the orders of one micro-batch that its own trades prove complete (see ``early``)."""
        if self._early is None or self._early.columns != tuple(trades.columns):
            self._early = EarlyOrders(trades.columns, self.settings.min_notional_usd)
        instruments = self._early.instruments(self._fills(trades))
        figures = self._early.orders(instruments).select(*GROUP_KEY, self._expressions.order_of_fills)
        return EarlyAlerts(
            alerts=self.build_alerts(self._order_rows(figures)),
            carry=self._early.carry(instruments),
            shared=instruments,
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        """``whale_trade`` alerts: one per order strictly above the mildest severity bound."""
        return select_alerts(output, self._expressions.alerts)

    def output_of_alerts(self, alerts: DataFrame) -> DataFrame:
        """The ``whale_trades`` rows of a static batch of this detector's alerts (driver, plan only).

        An alert's ``details`` is its row as JSON (doubles written with enough digits to read
        back the same value); ``order_time`` comes from ``detected_at`` (the order time, to the
        microsecond; the JSON has milliseconds). Used by the stream job's ``EarlyLedger``: the
        stateful query records the orders the early query alerted (ADR-029).
        """
        details = F.from_json(F.col("details"), _DETAILS)
        return alerts.select(
            *(
                (F.col("detected_at") if name == "order_time" else details[name]).alias(name)
                for name in WHALE_TRADES.fieldNames()
            )
        )


@dataclass(frozen=True)
class _Expressions:
    """MOD-002's column expressions for one configuration (unresolved: valid on every batch)."""

    evaluated_fill: Column
    whale_order: Column
    order_row: tuple[Column, ...]
    order_of_fills: Column
    alerts: tuple[Column, ...]

    @classmethod
    def build(cls, settings: WhaleConfig, usd_pairs: Sequence[str]) -> _Expressions:
        """The expressions of ``settings`` over the ``usd_pairs`` (``exchange:symbol``)."""
        notional = F.col("notional")
        fills_word = F.when(F.col("fill_count") == 1, F.lit("fill")).otherwise(F.lit("fills"))
        message = F.format_string(
            "%s %s: taker %s order $%s in %d %s, %s bps impact",
            F.col("symbol"),
            F.col("exchange"),
            F.upper(F.col("side")),
            F.format_number(notional, 0),
            F.col("fill_count"),
            fills_word,
            F.format_string("%+.1f", F.col("price_impact_bps")),
        )
        order_columns = {name: F.col(name) for name in GROUP_KEY} | {"order_time": F.col(EVENT_TIME_COLUMN)}
        return cls(
            evaluated_fill=(
                F.col(EVENT_TIME_COLUMN).isNotNull()
                & F.concat_ws(":", F.col("exchange"), F.col("symbol")).isin(*usd_pairs)
                & F.col("side").isin(*TAKER_SIDES)
                & (F.col("price") > 0)
                & (F.col("quantity") > 0)
            ),
            whale_order=F.col("order.notional") >= F.lit(settings.min_notional_usd),
            order_row=tuple(
                order_columns.get(name, F.col(f"order.{name}")).alias(name) for name in WHALE_TRADES.fieldNames()
            ),
            order_of_fills=order_figures(F.col("fills"), F.col("side")).alias("order"),
            alerts=alert_columns(
                module_id=WhaleDetector.module_id,
                alert_type=DETECTOR_INFO.alert_type_names[0],
                id_parts=[
                    F.col("exchange"),
                    F.col("symbol"),
                    F.col("side"),
                    F.unix_micros(F.col("order_time")),
                    F.col("first_trade_id"),
                    F.col("taker_order_id"),
                ],
                symbol=F.col("symbol"),
                exchange=F.col("exchange"),
                severity=settings.thresholds.column(notional),
                detected_at=F.col("order_time"),
                message=message,
                details=[F.col(name) for name in WHALE_TRADES.fieldNames()],
            ),
        )
