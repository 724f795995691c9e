"""The streaming test helper: one micro-batch per list, outputs and alerts per batch."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from coattail_devstack.testing import run_detector_stream, trade
from coattail_devstack.testing.detectors import TradeCountDetector
from coattail_framework.config.model import CoattailConfig


def test_batches_watermark_and_alerts(spark: SparkSession, tmp_path: Path) -> None:
    detector = TradeCountDetector()
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
    assert [(str(r.window_start), r.exchange, r.symbol, r.trades) for r in run.outputs] == [
        ("2024-08-08 23:54:00", "binance", "BTCUSDT", 2)
    ]
    # Spark drops late rows against the previous batch's watermark: trade 5 (23:54:50) arrives
    # after the watermark passed 23:55:05 and is dropped; the 23:54 window was emitted in batch 2.
    assert [batch for batch, rows in run.outputs_by_batch.items() if rows] == [2]
    assert [(a.alert_type, a.severity, a.message, a.details) for a in run.alerts] == [
        (
            "busy_window",
            "medium",
            "BTCUSDT binance: 2 trades in one window",
            '{"window_start":"2024-08-08T23:54:00.000Z","trades":2,"quote_volume":2.0}',
        )
    ]
