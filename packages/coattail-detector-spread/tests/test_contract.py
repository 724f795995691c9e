"""MOD-003 honours the detector contract (``DetectorContract``) and its own configuration rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from coattail_detector_spread import SpreadConfig, SpreadDetector
from coattail_detector_spread.legs import Leg
from coattail_devstack.testing.contracts import DetectorContract
from coattail_framework.alerts import SeverityTiers
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError

SYMBOLS = {
    "BTC/USDT": {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT"},
    "BTC/USD": {"coinbase": "BTC-USD"},
    "ETH/USDT": {"binance": "ETHUSDT"},
    "ETH/USD": {"coinbase": "ETH-USD"},
}

WINDOW = {
    "window_start": datetime(2024, 8, 8, 23, 58, tzinfo=UTC),
    "window_end": datetime(2024, 8, 8, 23, 58, 30, tzinfo=UTC),
    "symbol": "BTC/USD",
    "exchange_a": "binance",
    "symbol_a": "BTCUSDT",
    "exchange_b": "coinbase",
    "symbol_b": "BTC-USD",
    "vwap_a": 60_000.0,
    "vwap_b": 61_500.0,
    "quote_volume_a": 1_000_000.0,
    "quote_volume_b": 800_000.0,
    "trade_count_a": 40,
    "trade_count_b": 25,
    "mid_price": 60_750.0,
    "spread_pct": 2.469,
    "premium_bps": 246.9,
}
"""An exchange_spreads row above the critical bound, both legs liquid."""


class TestSpreadContract(DetectorContract):
    detector_class = SpreadDetector
    config = {"symbols": SYMBOLS}
    alerting_rows = (WINDOW,)


def configured(settings: dict[str, Any] | None = None, symbols: dict[str, Any] | None = None) -> SpreadDetector:
    detector = SpreadDetector()
    modules = {"spread": settings or {}}
    detector.configure(CoattailConfig.model_validate({"symbols": symbols or SYMBOLS, "modules": modules}))
    return detector


def test_partitioned_by_the_window_day() -> None:
    assert [field.sql() for field in SpreadDetector.partition_spec] == ["days(window_start)"]


def test_defaults_match_the_issue() -> None:
    assert configured().settings == SpreadConfig(
        window_seconds=30,
        watermark_delay_seconds=15,
        thresholds=SeverityTiers(medium=0.5, high=1.0, critical=2.0),
        min_quote_volume=10_000,
        quote_equivalents={"USDT": "USD"},
        quote_equivalents_enabled=True,
    )


def test_legs_and_pairs_follow_symbols_and_quote_equivalence() -> None:
    detector = configured()
    assert detector.legs == (
        Leg("BTC/USD", "binance", "BTCUSDT"),
        Leg("BTC/USD", "binance-usdm", "BTCUSDT"),
        Leg("BTC/USD", "coinbase", "BTC-USD"),
        Leg("ETH/USD", "binance", "ETHUSDT"),
        Leg("ETH/USD", "coinbase", "ETH-USD"),
    )
    assert detector.pairs == ((0, 1), (0, 2), (1, 2), (3, 4))
    separate = configured({"quote_equivalents_enabled": False})
    assert [(separate.legs[a].exchange, separate.legs[b].exchange) for a, b in separate.pairs] == [
        ("binance", "binance-usdm")
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window_seconds": 0}, "modules.spread.window_seconds input should be greater than 0, got 0"),
        ({"thresholds": {"medium": 1.0, "high": 0.5}}, "modules.spread.thresholds value error, high (0.5)"),
        ({"quote_equivalents": {"usdt": "USD"}}, "modules.spread.quote_equivalents value error, currency 'usdt'"),
        ({"quote_equivalents": {"USDC": "USDT", "USDT": "USD"}}, "USDC maps to USDT, which is itself mapped"),
    ],
)
def test_bad_settings_name_their_key_path(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^defaults: modules\.spread\.") as raised:
        configured(settings)
    assert message in str(raised.value)


def test_symbols_without_a_second_venue_are_refused() -> None:
    with pytest.raises(ConfigError, match="no instrument under symbols is quoted on two exchanges"):
        configured(
            symbols={"BTC/USDT": {"binance": "BTCUSDT"}, "BTC/USD": {"coinbase": "BTC-USD"}},
            settings={"quote_equivalents": {}},
        )
