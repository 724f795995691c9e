"""MOD-002 whale: taker orders of at least ``min_notional_usd``, rebuilt from their fills.

One market order arrives as many fills; a per-fill filter misses most whales. The plan
keeps the fills of each (exchange, symbol) in ``applyInPandasWithState`` state until the
watermark (max trade time minus ``watermark_delay_seconds``) passes them, groups them into
taker orders (``coattail_detector_whale.taker_orders``) and emits each closed order of at
least ``min_notional_usd`` once, so an order split across micro-batches is still one row.
Works on PySpark 3.5 and 4.x, in append output mode.

``process`` and ``build_alerts`` build plans on the driver; the order grouping runs in the
Python workers. Needs the session time zone UTC (``coattail_framework.spark`` sets it).

Example::

    detector = WhaleDetector()
    detector.configure(config)
    orders = detector.process(valid_trades)           # streaming whale_trades rows
    alerts = detector.build_alerts(orders_batch)      # inside foreachBatch
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout
from pyspark.sql.types import StructType

from coattail_detector_whale.config import WhaleConfig
from coattail_detector_whale.schema import PENDING_FILLS, WHALE_TRADES
from coattail_detector_whale.taker_orders import FILL_COLUMNS, close_orders
from coattail_framework.alerts import alert_frame
from coattail_framework.detector import BaseDetector
from coattail_framework.errors import ConfigError
from coattail_framework.partitioning import PartitionField, day
from coattail_framework.quality.rules import QualityRule
from coattail_framework.schemas import EVENT_TIME_COLUMN

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

TAKER_SIDES = ("buy", "sell")
_STRING_FILL_COLUMNS = ("trade_id", "taker_order_id", "side")


def _pending_fills(state: GroupState) -> pd.DataFrame:
    """The open fills kept in ``state`` as a fills frame."""
    stored = state.get
    frame = pd.DataFrame({name: list(values) for name, values in zip(FILL_COLUMNS, stored, strict=True)})
    return frame.astype({"time_us": "int64", "price": "float64", "quantity": "float64", "quote_volume": "float64"})


def _as_state(fills: pd.DataFrame) -> tuple[list[Any], ...]:
    """A fills frame as a ``PENDING_FILLS`` value of plain Python lists (nulls as None)."""
    columns = []
    for name in FILL_COLUMNS:
        series = fills[name]
        if name in _STRING_FILL_COLUMNS:
            columns.append([None if pd.isna(value) else str(value) for value in series])
        else:
            columns.append(series.tolist())
    return tuple(columns)


def _whale_rows(key: tuple[Any, ...], orders: pd.DataFrame, min_notional: float) -> pd.DataFrame:
    """``WHALE_TRADES`` rows of the ``orders`` of at least ``min_notional``."""
    whales = orders[orders["notional"] >= min_notional]
    exchange, symbol = key
    rows = whales.assign(
        exchange=exchange,
        symbol=symbol,
        order_time=pd.to_datetime(whales["order_time_us"], unit="us", utc=True),
        last_fill_time=pd.to_datetime(whales["last_fill_time_us"], unit="us", utc=True),
    )
    return rows.loc[:, WHALE_TRADES.fieldNames()].reset_index(drop=True)


class _OrderTracker:
    """The ``applyInPandasWithState`` function: picklable, shipped to the Python workers."""

    def __init__(self, min_notional: float) -> None:
        self.min_notional = min_notional

    def __call__(
        self, key: tuple[Any, ...], batches: Iterator[pd.DataFrame], state: GroupState
    ) -> Iterator[pd.DataFrame]:
        fresh = [batch.loc[:, list(FILL_COLUMNS)] for batch in batches]
        held = [_pending_fills(state)] if state.exists else []
        frames = [frame for frame in (*held, *fresh) if not frame.empty]
        if not frames:
            state.remove()
            return
        fills = pd.concat(frames, ignore_index=True)
        split = close_orders(fills, watermark_us=state.getCurrentWatermarkMs() * 1000)
        if split.next_close_ms is None:
            state.remove()
        else:
            state.update(_as_state(split.open_fills))
            state.setTimeoutTimestamp(split.next_close_ms)
        rows = _whale_rows(key, split.closed, self.min_notional)
        if not rows.empty:
            yield rows


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
        quote_volume = F.coalesce(F.col("quote_volume"), F.col("price") * F.col("quantity"))
        fills = events.where(
            F.col(EVENT_TIME_COLUMN).isNotNull()
            & F.concat_ws(":", F.col("exchange"), F.col("symbol")).isin(*self._usd_pairs)
            & F.col("side").isin(*TAKER_SIDES)
            & (F.col("price") > 0)
            & (F.col("quantity") > 0)
        ).select(
            "exchange",
            "symbol",
            EVENT_TIME_COLUMN,
            F.col("trade_id"),
            F.col("taker_order_id"),
            F.col("side"),
            F.unix_micros(EVENT_TIME_COLUMN).alias("time_us"),
            F.col("price"),
            F.col("quantity"),
            quote_volume.alias("quote_volume"),
        )
        delay_ms = round(self.settings.watermark_delay_seconds * 1000)
        return (
            fills.withWatermark(EVENT_TIME_COLUMN, f"{delay_ms} milliseconds")
            .groupBy("exchange", "symbol")
            .applyInPandasWithState(
                _OrderTracker(self.settings.min_notional_usd),
                outputStructType=WHALE_TRADES,
                stateStructType=PENDING_FILLS,
                outputMode="append",
                timeoutConf=GroupStateTimeout.EventTimeTimeout,
            )
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
                F.unix_micros("order_time"),
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
