"""MOD-999 on a stream: hand-computed large_trades rows and alerts; a bad setting names its key."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from coattail_detector_template import TemplateDetector
from coattail_devstack.testing import run_detector_stream, trade
from coattail_framework.alerts import make_alert_id
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError


def configured(**settings: Any) -> TemplateDetector:
    detector = TemplateDetector()
    detector.configure(CoattailConfig.model_validate({"modules": {TemplateDetector.module_name: settings}}))
    return detector


def raw(event_id: str, price: float, quantity: float, **fields: Any) -> dict[str, Any]:
    """A raw event row, for null fields a TradeEvent refuses."""
    when = datetime.fromisoformat("2024-08-09T00:00:05+00:00")
    row: dict[str, Any] = {
        "event_id": event_id,
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "price": price,
        "quantity": quantity,
        "side": "buy",
        "timestamp": when,
        "ingestion_timestamp": when,
    }
    return row | fields


def large(event_id: str, side: str | None, at: str, price: float, quantity: float) -> dict[str, Any]:
    """An expected large_trades row (times come back from Spark as naive UTC)."""
    exchange, symbol, _ = event_id.split(":")
    return {
        "event_id": event_id,
        "exchange": exchange,
        "symbol": symbol,
        "side": side,
        "trade_time": datetime.fromisoformat(at),
        "price": price,
        "quantity": quantity,
        "notional": price * quantity,
    }


def test_trades_of_at_least_the_minimum_notional_each_give_a_row_and_an_alert(
    spark: SparkSession, tmp_path: Path
) -> None:
    batches = [
        [
            trade("2024-08-09T00:00:01Z", 61_000, 20, trade_id=1),  # 1,220,000
            trade("2024-08-09T00:00:02Z", 61_000, 0.5, trade_id=2),  # 30,500: below the minimum
            trade("2024-08-09T00:00:03Z", 2_500, 400, symbol="ETHUSDT", trade_id=3),  # exactly 1,000,000
            trade("2024-08-09T00:00:04Z", 60_000, 100, side="sell", exchange="coinbase", symbol="BTC-USD", trade_id=7),
        ],
        [
            raw("binance:BTCUSDT:8", 50_000, 30, quote_volume=None),  # notional from price x quantity
            raw("unknown:BTCUSDT:9", 50_000, 30, exchange=None),  # no venue: skipped
        ],
    ]
    run = run_detector_stream(spark, configured(), batches, tmp_path)

    assert sorted((row.asDict() for row in run.outputs), key=lambda row: row["event_id"]) == [
        large("binance:BTCUSDT:1", "buy", "2024-08-09T00:00:01", 61_000.0, 20.0),
        large("binance:BTCUSDT:8", "buy", "2024-08-09T00:00:05", 50_000.0, 30.0),
        large("binance:ETHUSDT:3", "buy", "2024-08-09T00:00:03", 2_500.0, 400.0),
        large("coinbase:BTC-USD:7", "sell", "2024-08-09T00:00:04", 60_000.0, 100.0),
    ]
    alerts = sorted(run.alerts, key=lambda alert: alert.detected_at)
    assert [(a.alert_id, a.symbol, a.exchange, a.severity, a.message) for a in alerts] == [
        (
            make_alert_id(TemplateDetector.module_id, "binance:BTCUSDT:1"),
            "BTCUSDT",
            "binance",
            "medium",
            "BTCUSDT binance: single trade of 1,220,000 notional at 61,000.00",
        ),
        (
            make_alert_id(TemplateDetector.module_id, "binance:ETHUSDT:3"),
            "ETHUSDT",
            "binance",
            "medium",
            "ETHUSDT binance: single trade of 1,000,000 notional at 2,500.00",
        ),
        (
            make_alert_id(TemplateDetector.module_id, "coinbase:BTC-USD:7"),
            "BTC-USD",
            "coinbase",
            "high",
            "BTC-USD coinbase: single trade of 6,000,000 notional at 60,000.00",
        ),
        (
            make_alert_id(TemplateDetector.module_id, "binance:BTCUSDT:8"),
            "BTCUSDT",
            "binance",
            "medium",
            "BTCUSDT binance: single trade of 1,500,000 notional at 50,000.00",
        ),
    ]
    assert {(a.alert_type, a.module_id) for a in alerts} == {("large_trade", TemplateDetector.module_id)}
    assert json.loads(alerts[2].details) == {
        "event_id": "coinbase:BTC-USD:7",
        "side": "sell",
        "price": 60_000.0,
        "quantity": 100.0,
        "notional": 6_000_000.0,
    }


def test_a_bad_setting_names_its_key_path() -> None:
    with pytest.raises(ConfigError, match=r"^defaults: modules\.template\.min_notional input should be greater"):
        configured(min_notional=-5)
