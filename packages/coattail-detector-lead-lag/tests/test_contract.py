"""MOD-010 honours the detector contract (``DetectorContract``), pairs legs as MOD-003 does and refuses bad settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from coattail_detector_lead_lag import LeadLagConfig, LeadLagDetector
from coattail_detector_lead_lag.state import Pair
from coattail_detector_spread import SpreadDetector
from coattail_devstack.testing.contracts import DetectorContract
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError

SYMBOLS = {
    "BTC/USDT": {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT"},
    "BTC/USD": {"coinbase": "BTC-USD"},
    "ETH/USDT": {"binance": "ETHUSDT"},
    "ETH/USD": {"coinbase": "ETH-USD"},
    "SOL/USDT": {"binance": "SOLUSDT"},
}
CHANGE = {
    "window_start": datetime(2024, 8, 8, 23, 55, tzinfo=UTC),
    "window_end": datetime(2024, 8, 9, 0, 0, tzinfo=UTC),
    "symbol": "BTC/USD",
    "exchange_a": "binance",
    "symbol_a": "BTCUSDT",
    "exchange_b": "coinbase",
    "symbol_b": "BTC-USD",
    "lag_seconds": -2.0,
    "leader": "coinbase",
    "correlation_at_lag": 0.45,
    "correlation_at_zero": 0.21,
    "lead_lag_ratio": 0.4,
    "samples": 300,
    "nonzero_returns_a": 240,
    "nonzero_returns_b": 180,
    "significant": True,
    "previous_leader": "binance",
    "leader_change": True,
}
"""A lead_lag row whose leader changed after binance led three windows: |rho(k*)| 0.45, high."""


class TestLeadLagContract(DetectorContract):
    detector_class = LeadLagDetector
    config = {"symbols": SYMBOLS}
    alerting_rows = (CHANGE,)


def configured(modules: dict[str, Any] | None = None, symbols: dict[str, Any] | None = None) -> LeadLagDetector:
    detector = LeadLagDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": symbols or SYMBOLS, "modules": modules or {}}))
    return detector


def test_partitioned_by_the_window_end_day() -> None:
    assert [field.sql() for field in LeadLagDetector.partition_spec] == ["days(window_end)"]


def test_defaults_follow_the_design() -> None:
    settings = configured().settings
    assert settings == LeadLagConfig()
    assert (settings.grid_ms, settings.window_seconds, settings.max_lag_seconds, settings.step_seconds) == (
        1000,
        300,
        10.0,
        60,
    )
    assert (settings.min_correlation, settings.min_gain, settings.min_samples, settings.min_consecutive) == (
        0.2,
        0.05,
        120,
        3,
    )
    assert (settings.thresholds.ordered(), settings.watermark_delay_seconds) == (
        [("medium", 0.2), ("high", 0.4), ("critical", 0.6)],
        5.0,
    )
    assert (settings.window_cells, settings.max_lag_cells) == (300, 10)


@pytest.mark.parametrize("spread", [{}, {"quote_equivalents_enabled": False}])
def test_legs_and_pairs_are_mod_003s_under_its_quote_equivalence(spread: dict[str, Any]) -> None:
    detector = configured({"spread": spread})
    mod_003 = SpreadDetector()
    mod_003.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": {"spread": spread}}))
    assert (detector.legs, detector.pairs) == (mod_003.legs, mod_003.pairs)


def test_the_state_machine_gets_the_pairs_of_each_instrument() -> None:
    state = configured().state_settings
    assert dict(state.pairs) == {
        "BTC/USD": (
            Pair("binance", "BTCUSDT", "binance-usdm", "BTCUSDT"),
            Pair("binance", "BTCUSDT", "coinbase", "BTC-USD"),
            Pair("binance-usdm", "BTCUSDT", "coinbase", "BTC-USD"),
        ),
        "ETH/USD": (Pair("binance", "ETHUSDT", "coinbase", "ETH-USD"),),
    }  # SOL has one venue: no pair, its trades are never read
    assert (state.grid_us, state.window_cells, state.max_lag_cells, state.step_us) == (1_000_000, 300, 10, 60_000_000)
    only_usdt = configured({"spread": {"quote_equivalents_enabled": False}}).state_settings
    assert dict(only_usdt.pairs) == {"BTC/USDT": (Pair("binance", "BTCUSDT", "binance-usdm", "BTCUSDT"),)}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"grid_ms": 0}, "modules.lead-lag.grid_ms input should be greater than 0, got 0"),
        ({"grid_ms": 300}, "max_lag_seconds (10.0) must be a whole number of grid_ms (300)"),
        ({"max_lag_seconds": 0.25}, "max_lag_seconds (0.25) must be a whole number of grid_ms (1000)"),
        ({"grid_ms": 250, "max_lag_seconds": 2, "step_seconds": 1, "window_seconds": 1}, "max_lag_seconds (2.0) must"),
        ({"grid_ms": 7000, "max_lag_seconds": 7, "window_seconds": 302}, "window_seconds (302) must be a whole number"),
        ({"step_seconds": 600}, "step_seconds (600) exceeds window_seconds (300)"),
        ({"min_samples": 301}, "min_samples (301) exceeds the 300 returns of a window"),
        ({"grid_ms": 10, "window_seconds": 600}, "/ grid_ms is 61000 cells, more than 36000"),
        ({"min_gain": 0}, "modules.lead-lag.min_gain input should be greater than 0, got 0"),
        ({"thresholds": {"medium": 0.5, "high": 0.4}}, "modules.lead-lag.thresholds value error, high (0.4)"),
    ],
)
def test_bad_settings_name_their_key_path(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^defaults: modules\.lead-lag") as raised:
        configured({"lead-lag": section})
    assert message in str(raised.value)


def test_a_bad_spread_section_is_reported_under_its_own_path() -> None:
    with pytest.raises(ConfigError, match=r"modules\.spread\.quote_equivalents value error, currency 'usdt'"):
        configured({"spread": {"quote_equivalents": {"usdt": "USD"}}})


def test_symbols_without_a_second_venue_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"^defaults: no instrument under symbols .* MOD-010 has no pair of venues"):
        configured(symbols={"BTC/USDT": {"binance": "BTCUSDT"}, "BTC/USD": {"coinbase": "BTC-USD"}},
                   modules={"spread": {"quote_equivalents": {}}})  # fmt: skip
