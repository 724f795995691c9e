"""The streaming test helper: one micro-batch per list, outputs and alerts per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from coattail_framework.alerts import SeverityTiers, alert_frame
from coattail_framework.config.model import CoattailConfig
from coattail_framework.detector import BaseDetector
from coattail_framework.partitioning import day
from coattail_framework.schemas import UNIFIED_TRADE_EVENT
from coattail_framework.testing import run_detector_stream, trade


class MinuteCountSettings(BaseModel):
    watermark_seconds: int = 5
    alert_above: float = 1.5


class MinuteCount(BaseDetector[MinuteCountSettings]):
    """Counts trades per minute (a stateful, watermarked aggregation) and alerts on busy minutes."""

    module_id = "MOD-903"
    module_name = "minute-count"
    alert_types = ("busy_minute",)
    output_table = "minute_counts"
    partition_spec = (day("window_start"),)
    config_model = MinuteCountSettings

    @property
    def output_schema(self) -> Any:
        return "window_start timestamp, symbol string, trades long"

    def process(self, events: DataFrame) -> DataFrame:
        windowed = events.withWatermark("timestamp", f"{self.settings.watermark_seconds} seconds").groupBy(
            F.window("timestamp", "60 seconds"), "symbol"
        )
        return windowed.count().select(
            F.col("window.start").alias("window_start"), "symbol", F.col("count").alias("trades")
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type="busy_minute",
            id_parts=[F.col("symbol"), F.col("window_start")],
            symbol=F.col("symbol"),
            exchange=F.lit("binance"),
            severity=SeverityTiers(medium=self.settings.alert_above).column(F.col("trades")),
            detected_at=F.col("window_start"),
            message=F.lit("busy"),
            details=[F.col("trades")],
        )


def test_batches_watermark_and_alerts(spark: SparkSession, tmp_path: Path) -> None:
    detector = MinuteCount()
    detector.configure(CoattailConfig())
    run = run_detector_stream(
        spark,
        detector,
        [
            [trade("2024-08-08T23:54:01Z", 1, 1, trade_id=1), trade("2024-08-08T23:54:30Z", 1, 1, trade_id=2)],
            [trade("2024-08-08T23:55:10Z", 1, 1, trade_id=3)],
            [trade("2024-08-08T23:55:20Z", 1, 1, trade_id=4)],
            [trade("2024-08-08T23:54:50Z", 1, 1, trade_id=5)],
        ],
        tmp_path,
    )
    assert [(str(r.window_start), r.trades) for r in run.outputs] == [("2024-08-08 23:54:00", 2)]
    # Spark drops late rows against the previous batch's watermark: trade 5 (23:54:50) arrives
    # after the watermark passed 23:55:05 and is dropped; the 23:54 window was emitted in batch 2.
    assert [batch for batch, rows in run.outputs_by_batch.items() if rows] == [2]
    assert [(a.alert_type, a.severity, a.details) for a in run.alerts] == [("busy_minute", "medium", '{"trades":2}')]
    assert UNIFIED_TRADE_EVENT.fieldNames()[0] == "event_id"
