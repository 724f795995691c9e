"""MOD-005 split-order: one actor working a large order as a run of equal clips (TWAP-style).

Public trade feeds carry no account identity; a split order shows as same-side taker orders of
near-identical base quantity, one after another. The module groups fills into taker orders
exactly as MOD-002 does, keeps those of ``min_clip_usd`` to ``max_clip_usd`` as clips, chains
clips of matching size (``size_tolerance``) at most ``max_gap_seconds`` apart into sequences,
and writes a ``split_order_sequences`` row for each closed sequence of at least ``min_clips``
clips and ``min_total_usd`` notional, with the regularity of its intervals and its price drift.
The row describes the sequence's regular core (the longest chain of clips at its median
interval, ``cadence_tolerance``) when that core alone is worth writing: same-size orders of other
takers off the cadence are left out and counted (``off_cadence_clips``).

``process`` builds one stateful streaming plan on the driver: trades of USD-quoted instruments
with a taker side -> watermark (``watermark_delay_seconds``) -> one ``applyInPandasWithState``
per (exchange, symbol, side) with an event-time timeout (``tracker.py``, ``state.py``). Spark
refuses a stateful function after an aggregation (ADR-008), so the fills are grouped inside
it, by MOD-002's own Python twin of its grouping (``coattail_detector_whale.fills``). Static
input (reprocessing) runs the same state machine through ``applyInPandas``.

Alert ``split_order`` (``build_alerts``, per micro-batch of output, driver): severity from
``thresholds`` on ``total_notional``; ``detected_at`` = the sequence's last clip; id parts:
exchange, symbol, side, sequence start (µs), first trade id (the row's: the core's when the row
is the core). It is raised once the watermark passes the sequence's close: ``max_gap_seconds``
after its last clip, or ``horizon_seconds`` after its first, whichever comes first.

Example::

    detector = SplitOrderDetector()
    detector.configure(config)
    sequences = detector.process(valid_trades)   # streaming split_order_sequences rows
    alerts = detector.build_alerts(batch)        # inside foreachBatch
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from coattail_detector_split_order.config import SplitOrderConfig
from coattail_detector_split_order.metadata import DETECTOR_INFO
from coattail_detector_split_order.schema import SPLIT_ORDER_SEQUENCES, STATE
from coattail_detector_split_order.state import Settings
from coattail_detector_split_order.tracker import sequence_batch_function, sequence_state_function
from coattail_detector_whale.detector import WhaleDetector
from coattail_detector_whale.fills import TAKER_SIDES
from coattail_framework.alerts import alert_frame
from coattail_framework.detector import BaseDetector
from coattail_framework.keyed_state import event_rows, keyed_state, watermark_ms
from coattail_framework.partitioning import day
from coattail_framework.quality.rules import positive_finite
from coattail_framework.schemas import EVENT_TIME_COLUMN

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

KEY_COLUMNS = ("exchange", "symbol", "side")
WHALE_MODULE = "whale"
"""The section whose ``usd_quote_currencies`` say which instruments count as USD-quoted (MOD-002's)."""
(_ALERT_TYPE,) = DETECTOR_INFO.alert_types


class SplitOrderDetector(BaseDetector[SplitOrderConfig]):
    """Sequences of same-size taker orders (``split_order_sequences``) and ``split_order`` alerts."""

    config_model: ClassVar[type[SplitOrderConfig]] = SplitOrderConfig
    info = DETECTOR_INFO
    module_id = DETECTOR_INFO.module_id
    module_name = DETECTOR_INFO.module_name
    alert_types = DETECTOR_INFO.alert_type_names
    output_table = "split_order_sequences"
    output_schema = SPLIT_ORDER_SEQUENCES
    partition_spec = (day("sequence_end"),)

    _usd_pairs: tuple[str, ...] = ()

    def on_configured(self, config: CoattailConfig) -> None:
        """Read MOD-002's quote currencies through its own ``configure`` (its key paths, its refusals)."""
        whale = WhaleDetector()
        whale.configure(config)
        self._usd_pairs = whale.usd_pairs

    @property
    def state_settings(self) -> Settings:
        """The state machine's settings (µs)."""
        settings = self.settings
        return Settings(
            min_clip_usd=settings.min_clip_usd,
            max_clip_usd=settings.max_clip_usd,
            size_tolerance=settings.size_tolerance,
            max_gap_us=round(settings.max_gap_seconds * 1_000_000),
            horizon_us=round(settings.horizon_seconds * 1_000_000),
            min_clips=settings.min_clips,
            min_total_usd=settings.min_total_usd,
            max_interval_cv=settings.max_interval_cv,
            cadence_tolerance=settings.cadence_tolerance,
            max_orders_in_state=settings.max_orders_in_state,
        )

    def _trades(self, events: DataFrame) -> DataFrame:
        """Trades of USD-quoted instruments with a time, a taker side and a finite positive price and size."""

        usd = F.concat_ws(":", F.col("exchange"), F.col("symbol")).isin(*self._usd_pairs)
        known_side = F.col("side").isin(*TAKER_SIDES)
        usable = positive_finite(F.col("price")) & positive_finite(F.col("quantity"))
        return events.where(F.col(EVENT_TIME_COLUMN).isNotNull() & usd & known_side & usable)

    def process(self, events: DataFrame) -> DataFrame:
        """``SPLIT_ORDER_SEQUENCES`` rows of ``events`` (streaming: as sequences close; static: all closed)."""
        delay_ms = watermark_ms(self.settings.watermark_delay_seconds)
        columns = ("trade_id", "price", "quantity", "quote_volume", "taker_order_id")
        return keyed_state(
            event_rows(self._trades(events), delay_ms=delay_ms, keys=KEY_COLUMNS, columns=columns),
            KEY_COLUMNS,
            streaming=events.isStreaming,
            state_function=sequence_state_function(self.state_settings),
            batch_function=sequence_batch_function(self.state_settings, delay_ms * 1000),
            output_schema=SPLIT_ORDER_SEQUENCES,
            state_schema=STATE,
            static_newest=True,
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        """``split_order`` alerts of one static batch of ``split_order_sequences`` rows."""
        settings = self.settings
        message = F.format_string(
            "%s %s: split %s order, %d clips of %s over %s s (every %.1f s, cv %.2f, %s%s), $%s, drift %s bps",
            F.col("symbol"),
            F.col("exchange"),
            F.upper(F.col("side")),
            F.col("clip_count"),
            F.col("clip_base_quantity").cast("string"),
            F.format_string(
                "%.0f", (F.unix_micros(F.col("sequence_end")) - F.unix_micros(F.col("sequence_start"))) / 1e6
            ),
            F.col("interval_mean_seconds"),
            F.col("interval_cv"),
            F.when(F.col("regular"), F.lit("regular")).otherwise(F.lit("irregular")),
            F.when(
                F.col("off_cadence_clips") > 0,
                F.format_string(", %d off-cadence clips left out", F.col("off_cadence_clips")),
            ).otherwise(F.lit("")),
            F.format_number(F.col("total_notional"), 0),
            F.format_string("%+.1f", F.col("price_drift_bps")),
        )
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type=_ALERT_TYPE.name,
            id_parts=[
                F.col("exchange"),
                F.col("symbol"),
                F.col("side"),
                F.unix_micros(F.col("sequence_start")),
                F.col("first_trade_id"),
            ],
            symbol=F.col("symbol"),
            exchange=F.col("exchange"),
            severity=settings.thresholds.column(F.col("total_notional")),
            detected_at=F.col("sequence_end"),
            message=message,
            details=[F.col(field.name) for field in _ALERT_TYPE.details],
        )
