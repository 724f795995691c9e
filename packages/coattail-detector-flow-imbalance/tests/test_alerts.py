"""MOD-004's alert rule on hand-made ``flow_imbalance`` rows (default settings, one static Spark batch).

Each row below differs from a window that alerts in one condition; the window starts tell them
apart (minute ``m`` of 2024-08-09). Defaults: ``|z|`` strictly above medium 3 / high 4 /
critical 5, ``|imbalance| >= 0.3``, ``B + S >= 250,000``, ``baseline_size >= 30``, and z of
the net flow's sign.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql import Row, SparkSession

from coattail_detector_flow_imbalance import FLOW_IMBALANCE, FlowImbalanceDetector
from coattail_detector_flow_imbalance.metadata import DETECTOR_INFO
from coattail_framework.alerts import make_alert_id
from coattail_framework.config import CoattailConfig

T0 = datetime(2024, 8, 9, tzinfo=UTC)
T0_MS = 1_723_161_600_000


def window(minute: int, buy: float, sell: float, z: float | None, **changes: Any) -> dict[str, Any]:
    """A window of minute ``minute``: taker buys ``buy``, sells ``sell``, baseline mean 10,000, std 50,000."""
    return {
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "window_start": T0 + timedelta(minutes=minute),
        "window_end": T0 + timedelta(minutes=minute + 1),
        "buy_order_count": 40,
        "sell_order_count": 25,
        "buy_quote_volume": buy,
        "sell_quote_volume": sell,
        "large_buy_quote_volume": 0.0,
        "large_sell_quote_volume": 0.0,
        "net_quote_flow": buy - sell,
        "imbalance": (buy - sell) / (buy + sell),
        "large_order_imbalance": None,
        "baseline_size": 30,
        "baseline_mean": 10_000.0,
        "baseline_std": 50_000.0,
        "net_flow_z": z,
        "early_final_orders": 0,
        **changes,
    }


ROWS = [
    # 0: B 400K, S 100K: F +300K, I 0.6, z (300K - 10K) / 50K = 5.8 -> critical, buy.
    window(0, 400_000.0, 100_000.0, 5.8, large_buy_quote_volume=300_000.0, large_order_imbalance=1.0),
    window(1, 400_000.0, 100_000.0, 3.0),  # z 3 is not above 3: no alert
    window(2, 100_000.0, 400_000.0, -3.5),  # F -300K, z -3.5: |z| > 3 -> medium, sell
    window(3, 645_000.0, 355_000.0, 4.5),  # I (645K - 355K) / 1M = 0.29 < 0.3: no alert
    window(4, 650_000.0, 350_000.0, 4.5),  # I 0.3 exactly: high
    window(5, 200_000.0, 49_999.0, 4.5),  # B + S 249,999 < 250,000: no alert
    window(6, 200_000.0, 50_000.0, 4.5),  # B + S 250,000 exactly: high
    window(7, 400_000.0, 100_000.0, 5.8, baseline_size=29),  # warm-up: no alert
    window(8, 400_000.0, 100_000.0, None, baseline_std=0.0),  # flat baseline, no z: no alert
    window(9, 400_000.0, 100_000.0, -4.5, baseline_mean=500_000.0),  # net buying below its usual buying: no alert
]


@pytest.fixture(scope="module")
def alerts(spark: SparkSession) -> dict[int, Row]:
    detector = FlowImbalanceDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": {"BTC/USDT": {"binance": "BTCUSDT"}}}))
    rows = [tuple(row[name] for name in FLOW_IMBALANCE.fieldNames()) for row in ROWS]
    found = detector.build_alerts(spark.createDataFrame(rows, FLOW_IMBALANCE)).collect()
    return {(alert.detected_at - datetime(2024, 8, 9)).seconds // 60 - 1: alert for alert in found}


def test_only_windows_meeting_every_condition_alert_with_the_severity_of_their_z(alerts: dict[int, Row]) -> None:
    assert {minute: alert.severity for minute, alert in alerts.items()} == {
        0: "critical",
        2: "medium",
        4: "high",
        6: "high",
    }


def test_the_direction_is_in_the_message_and_the_details(alerts: dict[int, Row]) -> None:
    assert alerts[0].message == (
        "BTCUSDT binance: net taker BUY flow +$300.0K in 1 min (imbalance +0.60 of $500.0K, large orders +1.00), "
        "z=+5.8 against +$10.0K ± $50.0K over 30 min"
    )
    assert alerts[2].message == (
        "BTCUSDT binance: net taker SELL flow -$300.0K in 1 min (imbalance -0.60 of $500.0K, large orders none), "
        "z=-3.5 against +$10.0K ± $50.0K over 30 min"
    )
    (alert_type,) = DETECTOR_INFO.alert_types
    for minute, direction in ((0, "buy"), (2, "sell")):
        details = json.loads(alerts[minute].details)
        assert alert_type.details_problems(details) == []
        assert details["direction"] == direction
    assert json.loads(alerts[0].details)["large_order_imbalance"] == 1.0
    assert "large_order_imbalance" not in json.loads(alerts[2].details)  # null: left out by to_json


def test_alert_ids_hash_the_module_the_key_and_the_window_start(alerts: dict[int, Row]) -> None:
    for minute, alert in alerts.items():
        assert alert.alert_id == make_alert_id("MOD-004", "binance", "BTCUSDT", str(T0_MS + minute * 60_000))
        assert (alert.module_id, alert.alert_type, alert.exchange, alert.symbol) == (
            "MOD-004",
            "flow_imbalance",
            "binance",
            "BTCUSDT",
        )
        assert alert.detected_at == (T0 + timedelta(minutes=minute + 1)).replace(tzinfo=None)  # the window end
