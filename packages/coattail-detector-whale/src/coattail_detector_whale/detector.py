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

``process`` and ``build_alerts`` build plans on the driver; executors run them.

Example::

    detector = WhaleDetector()
    detector.configure(config)
    orders = detector.process(valid_trades)           # streaming whale_trades rows
    alerts = detector.build_alerts(orders_batch)      # inside foreachBatch
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from coattail_detector_whale.config import WhaleConfig
from coattail_detector_whale.schema import WHALE_TRADES
from coattail_framework.alerts import alert_frame
from coattail_framework.detector import BaseDetector
from coattail_framework.errors import ConfigError
from coattail_framework.partitioning import PartitionField, day
from coattail_framework.quality.rules import QualityRule
from coattail_framework.schemas import EVENT_TIME_COLUMN

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

TAKER_SIDES = ("buy", "sell")
INTEGER_TRADE_ID = r"^[0-9]{1,18}$"
BPS = 10_000.0
_GROUP_KEY = ("exchange", "symbol", "side", EVENT_TIME_COLUMN, "taker_order_id")


def _fill() -> Column:
    """One fill as a struct whose natural order is the fill order: numbered fills first, by id."""
    trade_no = F.when(F.col("trade_id").rlike(INTEGER_TRADE_ID), F.col("trade_id").cast("long"))
    return F.struct(
        trade_no.isNull().alias("unnumbered"),
        trade_no.alias("trade_no"),
        F.col("trade_id"),
        F.col("price"),
        F.col("quantity"),
        F.coalesce(F.col("quote_volume"), F.col("price") * F.col("quantity")).alias("quote_volume"),
    )


def _runs(fills: Column, split_on_id_gaps: Column) -> Column:
    """The sorted ``fills`` of one group cut into taker orders (array of fill arrays)."""
    count = F.size(fills)

    def starts_order(position: Column) -> Column:
        current = F.get(fills, position - 1)["trade_no"]
        previous = F.get(fills, position - 2)["trade_no"]
        gap = current.isNotNull() & previous.isNotNull() & (current != previous + 1)
        return (position == 1) | (split_on_id_gaps & gap)

    starts = F.filter(F.sequence(F.lit(1), count), starts_order)
    return F.transform(
        starts,
        lambda start, index: F.slice(fills, start, F.coalesce(F.get(starts, index + 1), count + 1) - start),
    )


def _order(run: Column, side: Column) -> Column:
    """The ``WHALE_TRADES`` figures of one run of fills (first and last by fill order)."""
    first, last = F.get(run, 0), F.element_at(run, -1)
    notional = F.aggregate(run, F.lit(0.0), lambda total, fill: total + fill["quote_volume"])
    base_quantity = F.aggregate(run, F.lit(0.0), lambda total, fill: total + fill["quantity"])
    against_taker = F.when(side == "buy", F.lit(1.0)).otherwise(F.lit(-1.0))
    # + 0.0 turns the -0.0 of an unmoved sell into 0.0
    impact = (last["price"] - first["price"]) / first["price"] * BPS * against_taker + F.lit(0.0)
    return F.struct(
        notional.alias("notional"),
        base_quantity.alias("base_quantity"),
        F.size(run).cast("long").alias("fill_count"),
        first["trade_id"].alias("first_trade_id"),
        last["trade_id"].alias("last_trade_id"),
        first["price"].alias("first_price"),
        last["price"].alias("last_price"),
        (notional / base_quantity).alias("vwap_price"),
        impact.alias("price_impact_bps"),
    )


class WhaleDetector(BaseDetector[WhaleConfig]):
    """Whale taker orders (``whale_trades``) and ``whale_trade`` alerts."""

    config_model: ClassVar[type[WhaleConfig]] = WhaleConfig
    module_id = "MOD-002"
    module_name = "whale"
    alert_types: Sequence[str] = ("whale_trade",)
    output_table = "whale_trades"
    output_schema: StructType = WHALE_TRADES
    partition_spec: Sequence[PartitionField] = (day("order_time"),)

    _usd_pairs: tuple[str, ...] = ()

    def on_configured(self, config: CoattailConfig) -> None:
        """Keep the (exchange, symbol) pairs quoted in a currency counted as USD."""
        quotes = set(self.settings.usd_quote_currencies)
        pairs = config.symbols.pairs()
        self._usd_pairs = tuple(
            sorted(f"{exchange}:{symbol}" for exchange, symbol, canonical in pairs if canonical.split("/")[1] in quotes)
        )
        if not self._usd_pairs:
            raise ConfigError(
                f"{config.source_of(('symbols',))}: symbols has no instrument quoted in "
                f"modules.whale.usd_quote_currencies {sorted(quotes)}; add one (e.g. BTC/USDT) or extend the list"
            )

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

    def process(self, events: DataFrame) -> DataFrame:
        """Whale orders from valid trades; fills of non-USD instruments or without a side are skipped."""
        fills = events.where(
            F.col(EVENT_TIME_COLUMN).isNotNull()
            & F.concat_ws(":", F.col("exchange"), F.col("symbol")).isin(*self._usd_pairs)
            & F.col("side").isin(*TAKER_SIDES)
            & (F.col("price") > 0)
            & (F.col("quantity") > 0)
        )
        delay_ms = round(self.settings.watermark_delay_seconds * 1000)
        groups = (
            fills.withWatermark(EVENT_TIME_COLUMN, f"{delay_ms} milliseconds")
            .groupBy(*_GROUP_KEY)
            .agg(F.array_sort(F.collect_list(_fill())).alias("fills"))
        )
        runs = _runs(F.col("fills"), split_on_id_gaps=F.col("taker_order_id").isNull())
        orders = groups.select(
            *_GROUP_KEY, F.explode(F.transform(runs, lambda run: _order(run, F.col("side")))).alias("order")
        ).where(F.col("order.notional") >= F.lit(self.settings.min_notional_usd))
        columns = {name: F.col(name) for name in _GROUP_KEY} | {"order_time": F.col(EVENT_TIME_COLUMN)}
        return orders.select(
            *(columns.get(name, F.col(f"order.{name}")).alias(name) for name in WHALE_TRADES.fieldNames())
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        """``whale_trade`` alerts: one per order strictly above the mildest severity bound."""
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
        details: list[Column] = [F.col(name) for name in WHALE_TRADES.fieldNames()]
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type="whale_trade",
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
            severity=self.settings.thresholds.column(notional),
            detected_at=F.col("order_time"),
            message=message,
            details=details,
        )
