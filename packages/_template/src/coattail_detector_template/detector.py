"""MOD-999 template: every trade whose quote notional is at least ``min_notional``.

The smallest complete detector: a stateless filter and projection of valid trades, so no
watermark (a detector with state, e.g. a window aggregation, declares one on ``timestamp``
from a ``watermark_delay_seconds`` setting, as MOD-002 and MOD-003 do). Trades without a
venue or a trade time are skipped: their alert could not name them. Each output row is one
``large_trade`` alert whose id is built from the trade's ``event_id``, so a replayed trade
gives the same alert. Native Spark only: the same plan runs on PySpark 3.5 and 4.x in append
output mode.

``process`` and ``build_alerts`` build plans on the driver; executors run them.

Example::

    detector = TemplateDetector()
    detector.configure(config)
    trades = detector.process(valid_trades)           # streaming large_trades rows
    alerts = detector.build_alerts(trades_batch)      # inside foreachBatch
"""

from __future__ import annotations

from typing import ClassVar

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from coattail_detector_template.config import TemplateConfig
from coattail_detector_template.metadata import DETECTOR_INFO
from coattail_detector_template.schema import LARGE_TRADES
from coattail_framework.alerts import alert_frame
from coattail_framework.detector import BaseDetector
from coattail_framework.partitioning import day
from coattail_framework.schemas import EVENT_TIME_COLUMN

(LARGE_TRADE,) = DETECTOR_INFO.alert_types


class TemplateDetector(BaseDetector[TemplateConfig]):
    """Single large trades (``large_trades``) and ``large_trade`` alerts."""

    config_model: ClassVar[type[TemplateConfig]] = TemplateConfig
    info = DETECTOR_INFO
    module_id = DETECTOR_INFO.module_id
    module_name = DETECTOR_INFO.module_name
    alert_types = DETECTOR_INFO.alert_type_names
    output_table = "large_trades"
    output_schema = LARGE_TRADES
    partition_spec = (day("trade_time"),)

    def process(self, events: DataFrame) -> DataFrame:
        """``large_trades`` rows from valid trades; the quote notional is price x quantity when missing."""
        columns = {
            "trade_time": F.col(EVENT_TIME_COLUMN),
            "notional": F.coalesce(F.col("quote_volume"), F.col("price") * F.col("quantity")),
        }
        trades = events.select(*(columns.get(name, F.col(name)).alias(name) for name in LARGE_TRADES.fieldNames()))
        return trades.where(
            F.col("exchange").isNotNull()
            & F.col("trade_time").isNotNull()
            & (F.col("notional") >= F.lit(self.settings.min_notional))
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        """``large_trade`` alerts: one per row strictly above the mildest severity bound."""
        message = F.format_string(
            "%s %s: single trade of %s notional at %s",
            F.col("symbol"),
            F.col("exchange"),
            F.format_number(F.col("notional"), 0),
            F.format_number(F.col("price"), 2),
        )
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type=LARGE_TRADE.name,
            id_parts=[F.col("event_id")],
            symbol=F.col("symbol"),
            exchange=F.col("exchange"),
            severity=self.settings.thresholds.column(F.col("notional")),
            detected_at=F.col("trade_time"),
            message=message,
            details=[F.col(field.name) for field in LARGE_TRADE.details],
        )
