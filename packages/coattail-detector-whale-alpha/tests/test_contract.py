"""MOD-008 honours the detector contract (``DetectorContract``) and its own configuration rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coattail_detector_whale_alpha import WhaleAlphaConfig, WhaleAlphaDetector
from coattail_devstack.testing.contracts import DetectorContract
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError

SYMBOLS = {"BTC/USDT": {"binance": "BTCUSDT"}}
T0 = datetime(2024, 8, 8, 23, 58, 1, tzinfo=UTC)
ORDER = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "side": "buy",
    "order_time": T0,
    "first_trade_id": "101",
    "last_trade_id": "103",
    "notional": 250_000.0,
    "base_quantity": 4.0,
    "fill_count": 3,
    "order_vwap_price": 62_500.0,
    "notional_bucket": "100K-500K",
    "entry_price": 62_510.0,
    "entry_trade_count": 12,
    "signal_horizon_seconds": 300,
    "signal_n": 40,
    "signal_mean_bps": 3.5,
    "signal_std_bps": 9.0,
    "signal_t": 2.46,
    "signal_hit_rate": 0.6,
    "orders_untracked": 0,
}
ENTRY_ROW = {**ORDER, "horizon_seconds": 0, "horizon_end": T0 + timedelta(seconds=5), "exit_price": 62_510.0,
             "return_bps": 0.0}  # fmt: skip
MARKOUT_ROW = {
    **ORDER,
    "horizon_seconds": 60,
    "horizon_end": T0 + timedelta(seconds=60),
    "exit_price": 62_540.0,
    "exit_time": T0 + timedelta(seconds=59, milliseconds=870),
    "return_bps": 30 / 62_510 * 10_000,
    "cohort_n": 1,
    "cohort_mean_bps": 30 / 62_510 * 10_000,
    "cohort_hit_rate": 1.0,
}
"""An entry row whose cohort signals (t 2.46 over 40 orders) and a markout row (every one alerts, low)."""


class TestWhaleAlphaContract(DetectorContract):
    detector_class = WhaleAlphaDetector
    config = {"symbols": SYMBOLS}
    alerting_rows = (ENTRY_ROW, MARKOUT_ROW)


def configured(modules: dict[str, object]) -> WhaleAlphaDetector:
    detector = WhaleAlphaDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": modules}))
    return detector


def test_partitioned_by_the_order_day() -> None:
    assert [field.sql() for field in WhaleAlphaDetector.partition_spec] == ["days(order_time)"]


def test_defaults_follow_the_design_and_whale_orders_are_mod_002s() -> None:
    detector = configured({"whale": {"min_notional_usd": 250_000}})
    assert detector.settings == WhaleAlphaConfig()
    assert detector.settings.horizons_seconds == [60, 300, 900, 3600]
    assert (detector.settings.min_cohort_orders, detector.settings.score_horizon_seconds) == (30, 300)
    assert detector.state_settings.min_notional_usd == 250_000  # modules.whale's threshold, not a copy
    assert detector.state_settings.horizons_us == (60_000_000, 300_000_000, 900_000_000, 3_600_000_000)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"horizons_seconds": [300, 60]}, "horizons_seconds must be strictly increasing"),
        ({"horizons_seconds": [3, 60]}, "horizons_seconds must lie in (entry_delay_seconds = 5.0"),
        ({"score_horizon_seconds": 120}, "score_horizon_seconds 120 is not one of [60, 300, 900, 3600]"),
        ({"notional_buckets": [0, 10]}, "notional_buckets must be positive and strictly increasing"),
        ({"min_cohort_orders": 300}, "min_cohort_orders (300) exceeds cohort_size (200)"),
        ({"signal_statistic": "sharpe"}, "modules.whale-alpha.signal_statistic input should be 't' or 'mean_bps'"),
    ],
)
def test_bad_settings_name_their_key_path(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"modules\.whale-alpha") as raised:
        configured({"whale-alpha": section})
    assert message in str(raised.value)


def test_a_bad_whale_section_is_reported_under_its_own_path() -> None:
    with pytest.raises(ConfigError, match=r"modules\.whale\.min_notional_usd input should be greater than 0"):
        configured({"whale": {"min_notional_usd": -1}})
