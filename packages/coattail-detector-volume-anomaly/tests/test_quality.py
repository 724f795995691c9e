"""The module's data-quality rules route unusable trades to the dead-letter path, with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession

from coattail_detector_volume_anomaly import VolumeAnomalyDetector
from coattail_framework import CoattailConfig
from coattail_framework.quality import DataQualityChecker
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

AT = datetime(2024, 8, 9, tzinfo=UTC)


def row(event_id: str, **changes: Any) -> dict[str, Any]:
    values = {
        "event_id": event_id,
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "price": 60_000.0,
        "quantity": 0.5,
        "quote_volume": 30_000.0,
        "side": "buy",
        "timestamp": AT,
        "ingestion_timestamp": AT,
        "trade_id": event_id,
        "taker_order_id": None,
    }
    return {**values, **changes}


def test_unusable_trades_are_invalid_with_the_rule_name(spark: SparkSession) -> None:
    config = CoattailConfig.model_validate({"symbols": {"BTC/USDT": {"binance": "BTCUSDT"}}})
    checker = DataQualityChecker(spark, config, extra_rules=VolumeAnomalyDetector().quality_rules())
    events = spark.createDataFrame(
        [
            row("ok"),
            row("no-side", side=None),
            row("odd-side", side="maker"),
            row("no-exchange", exchange=None),
            row("no-quote", quote_volume=None),
            row("zero-quote", quote_volume=0.0),
        ],
        UNIFIED_TRADE_EVENT,
    )
    valid, invalid, _ = checker.validate(events)
    assert [r.event_id for r in valid.collect()] == ["ok"]
    assert {r.event_id: r.dq_reason for r in invalid.collect()} == {
        "no-side": "volume_anomaly_side_known",
        "odd-side": "volume_anomaly_side_known",
        "no-exchange": "volume_anomaly_exchange_present",
        "no-quote": "volume_anomaly_quote_volume_positive",
        "zero-quote": "volume_anomaly_quote_volume_positive",
    }
