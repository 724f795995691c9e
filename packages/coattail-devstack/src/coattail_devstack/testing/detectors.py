"""A small stateful detector for platform tests (not a feature module; never registered).

``TradeCountDetector`` counts trades and sums quote volume per (exchange, symbol) in
tumbling event-time windows, with a watermark, and alerts when a window holds more than
``alert_above_trades`` trades. It exercises everything the runtime must handle for real
detectors (state, watermark, late rows, module output, alerts) with numbers a test can
compute by hand.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampType

from coattail_framework.alerts import SeverityTiers, alert_frame
from coattail_framework.detector import BaseDetector
from coattail_framework.partitioning import day, identity

TRADE_COUNTS = StructType(
    [
        StructField("window_start", TimestampType(), nullable=True),
        StructField("window_end", TimestampType(), nullable=True),
        StructField("exchange", StringType(), nullable=True),
        StructField("symbol", StringType(), nullable=True),
        StructField("trades", LongType(), nullable=False),
        StructField("quote_volume", DoubleType(), nullable=True),
    ]
)


class TradeCountConfig(BaseModel):
    """``modules.trade-count``: window and watermark in seconds, alert threshold in trades."""

    model_config = ConfigDict(extra="forbid")

    window_seconds: int = Field(60, gt=0)
    watermark_delay_seconds: float = Field(5.0, ge=0, le=3600)
    alert_above_trades: int = Field(1, ge=0)


class TradeCountDetector(BaseDetector[TradeCountConfig]):
    """Trades per window per (exchange, symbol); alerts on busy windows."""

    module_id = "MOD-T01"
    module_name = "trade-count"
    alert_types = ("busy_window",)
    output_table = "trade_counts"
    output_schema = TRADE_COUNTS
    partition_spec = (day("window_start"), identity("exchange"))
    config_model = TradeCountConfig

    def process(self, events: DataFrame) -> DataFrame:
        settings = self.settings
        windowed = events.withWatermark(
            "timestamp", f"{round(settings.watermark_delay_seconds * 1000)} milliseconds"
        ).groupBy(F.window("timestamp", f"{settings.window_seconds} seconds"), "exchange", "symbol")
        counted = windowed.agg(F.count(F.lit(1)).alias("trades"), F.sum("quote_volume").alias("quote_volume"))
        return counted.select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "exchange",
            "symbol",
            "trades",
            "quote_volume",
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type="busy_window",
            id_parts=[F.col("exchange"), F.col("symbol"), F.col("window_start")],
            symbol=F.col("symbol"),
            exchange=F.col("exchange"),
            severity=SeverityTiers(medium=self.settings.alert_above_trades).column(F.col("trades")),
            detected_at=F.col("window_end"),
            message=F.format_string("%s %s: %d trades in one window", "symbol", "exchange", "trades"),
            details=[F.col("window_start"), F.col("trades"), F.col("quote_volume")],
        )
