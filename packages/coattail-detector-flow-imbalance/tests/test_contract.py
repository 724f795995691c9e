"""MOD-004 honours the detector contract (``DetectorContract``) and its own configuration rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from coattail_detector_flow_imbalance import FlowImbalanceConfig, FlowImbalanceDetector
from coattail_devstack.testing.contracts import DetectorContract
from coattail_framework.alerts import SeverityTiers
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError

SYMBOLS = {"BTC/USDT": {"binance": "BTCUSDT"}, "ETH/BTC": {"binance": "ETHBTC"}}
BUYING = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "window_start": datetime(2024, 8, 8, 23, 58, tzinfo=UTC),
    "window_end": datetime(2024, 8, 8, 23, 59, tzinfo=UTC),
    "buy_order_count": 420,
    "sell_order_count": 180,
    "buy_quote_volume": 2_400_000.0,
    "sell_quote_volume": 600_000.0,
    "large_buy_quote_volume": 1_500_000.0,
    "large_sell_quote_volume": 100_000.0,
    "net_quote_flow": 1_800_000.0,
    "imbalance": 0.6,
    "large_order_imbalance": 0.875,
    "baseline_size": 60,
    "baseline_mean": 20_000.0,
    "baseline_std": 300_000.0,
    "net_flow_z": (1_800_000.0 - 20_000.0) / 300_000.0,
    "early_final_orders": 0,
}
"""A window of heavy taker buying against a full baseline: z 5.93, critical."""


class TestFlowImbalanceContract(DetectorContract):
    detector_class = FlowImbalanceDetector
    config = {"symbols": SYMBOLS}
    alerting_rows = (BUYING, {**BUYING, "large_order_imbalance": None})


def configured(modules: dict[str, Any], symbols: dict[str, Any] = SYMBOLS) -> FlowImbalanceDetector:
    detector = FlowImbalanceDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": symbols, "modules": modules}))
    return detector


def test_partitioned_by_the_window_day() -> None:
    assert [field.sql() for field in FlowImbalanceDetector.partition_spec] == ["days(window_start)"]


def test_defaults_follow_the_design() -> None:
    detector = configured({})
    assert detector.settings == FlowImbalanceConfig(
        window_seconds=60,
        baseline_windows=60,
        min_baseline_windows=30,
        large_order_usd=50_000.0,
        min_imbalance=0.3,
        min_quote_volume=250_000.0,
        thresholds=SeverityTiers(medium=3.0, high=4.0, critical=5.0),
        watermark_delay_seconds=30.0,
        max_pending_fills=50_000,
    )
    assert detector.state_settings.window_us == 60_000_000
    assert detector.info.tier == "medium"


def test_only_instruments_quoted_in_modules_whale_usd_currencies_are_evaluated() -> None:
    assert configured({})._usd_pairs == ("binance:BTCUSDT",)
    widened = configured({"whale": {"usd_quote_currencies": ["USDT", "BTC"]}})
    assert widened._usd_pairs == ("binance:BTCUSDT", "binance:ETHBTC")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"window_seconds": 0}, "modules.flow-imbalance.window_seconds input should be greater than 0"),
        ({"baseline_windows": 1}, "modules.flow-imbalance.baseline_windows input should be greater than or equal to 2"),
        (
            {"baseline_windows": 10, "min_baseline_windows": 20},
            "modules.flow-imbalance value error, min_baseline_windows (20) exceeds baseline_windows (10)",
        ),
        ({"large_order_usd": 0}, "modules.flow-imbalance.large_order_usd input should be greater than 0"),
        ({"min_imbalance": 1.5}, "modules.flow-imbalance.min_imbalance input should be less than or equal to 1"),
        ({"min_quote_volume": "lots"}, "modules.flow-imbalance.min_quote_volume input should be a valid number"),
        (
            {"thresholds": {"medium": 4, "high": 3}},
            "modules.flow-imbalance.thresholds value error, high (3.0) must be greater than medium (4.0)",
        ),
        ({"watermark_delay_seconds": -1}, "modules.flow-imbalance.watermark_delay_seconds input should be greater"),
        ({"max_pending_fills": 0}, "modules.flow-imbalance.max_pending_fills input should be greater than or equal"),
    ],
)
def test_bad_settings_name_their_key_path(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^defaults: modules\.flow-imbalance") as raised:
        configured({"flow-imbalance": section})
    assert message in str(raised.value)


def test_a_bad_whale_section_is_reported_under_its_own_path() -> None:
    with pytest.raises(ConfigError, match=r"modules\.whale\.usd_quote_currencies list should have at least 1 item"):
        configured({"whale": {"usd_quote_currencies": []}})


def test_a_configuration_without_a_usd_quoted_instrument_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"symbols has no instrument quoted in modules\.whale\.usd_quote_currencies"):
        configured({}, symbols={"ETH/BTC": {"binance": "ETHBTC"}})
