"""MOD-005 honours the detector contract (``DetectorContract``) and its own configuration rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from coattail_detector_split_order import SplitOrderConfig, SplitOrderDetector
from coattail_devstack.testing.contracts import DetectorContract
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError

SYMBOLS = {"BTC/USDT": {"binance": "BTCUSDT"}}
T0 = datetime(2024, 8, 8, 23, 58, 1, tzinfo=UTC)
SEQUENCE_ROW = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "side": "buy",
    "sequence_start": T0,
    "sequence_end": T0 + timedelta(seconds=300),
    "clip_count": 16,
    "off_cadence_clips": 2,
    "clip_base_quantity": 0.5,
    "clip_notional_median": 30_850.0,
    "total_notional": 493_551.23,
    "total_base_quantity": 8.0,
    "vwap_price": 61_693.90375,
    "interval_mean_seconds": 20.0,
    "interval_cv": 0.0,
    "regular": True,
    "price_drift_bps": -32.24,
    "first_trade_id": "9000000000",
    "orders_dropped": 0,
}
"""A 16-clip TWAP of $493,551 (two same-size orders off its cadence left out): above the medium bound
(250,000), so the defaults alert on it."""


class TestSplitOrderContract(DetectorContract):
    detector_class = SplitOrderDetector
    config = {"symbols": SYMBOLS}
    alerting_rows = (SEQUENCE_ROW,)


def configured(modules: dict[str, object], symbols: Mapping[str, object] = SYMBOLS) -> SplitOrderDetector:
    detector = SplitOrderDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": symbols, "modules": modules}))
    return detector


def test_partitioned_by_the_sequence_end_day() -> None:
    assert [field.sql() for field in SplitOrderDetector.partition_spec] == ["days(sequence_end)"]


def test_defaults_follow_the_design_but_the_calibrated_size_tolerance() -> None:
    detector = configured({})
    assert detector.settings == SplitOrderConfig()
    settings = detector.settings
    assert (settings.min_clip_usd, settings.max_clip_usd, settings.size_tolerance) == (5_000, 250_000, 0.005)
    assert (settings.max_gap_seconds, settings.horizon_seconds, settings.watermark_delay_seconds) == (120, 600, 10)
    assert (settings.min_clips, settings.min_total_usd, settings.max_interval_cv) == (8, 250_000, 0.35)
    assert settings.cadence_tolerance == 0.35
    assert settings.thresholds.ordered() == [("medium", 250_000), ("high", 1_000_000), ("critical", 5_000_000)]
    assert settings.max_orders_in_state == 5_000
    state = detector.state_settings
    assert (state.max_gap_us, state.horizon_us, state.cadence_tolerance) == (120_000_000, 600_000_000, 0.35)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"max_clip_usd": 4_000}, "modules.split-order.max_clip_usd value error, max_clip_usd (4000.0) must be "
                                  "greater than min_clip_usd (5000.0)"),
        ({"horizon_seconds": 60}, "modules.split-order.horizon_seconds value error, horizon_seconds (60.0) must be "
                                  "at least max_gap_seconds (120.0)"),
        ({"size_tolerance": 0}, "modules.split-order.size_tolerance input should be greater than 0"),
        ({"min_clips": 1}, "modules.split-order.min_clips input should be greater than or equal to 2"),
        ({"cadence_tolerance": 0}, "modules.split-order.cadence_tolerance input should be greater than 0"),
        ({"cadence_tolerance": 1}, "modules.split-order.cadence_tolerance input should be less than 1"),
        ({"max_orders_in_state": 0}, "modules.split-order.max_orders_in_state input should be greater than or equal"),
        ({"thresholds": {"medium": 5, "high": 1}}, "modules.split-order.thresholds value error, high (1.0) must be "
                                                   "greater than medium (5.0)"),
    ],
)  # fmt: skip
def test_bad_settings_name_their_key_path(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        configured({"split-order": section})
    assert message in str(raised.value)


def test_a_bad_whale_section_is_reported_under_its_own_path() -> None:
    with pytest.raises(ConfigError, match=r"modules\.whale\.usd_quote_currencies"):
        configured({"whale": {"usd_quote_currencies": []}})


def test_a_catalogue_without_a_usd_quoted_instrument_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"symbols has no instrument quoted in modules\.whale\.usd_quote_currencies"):
        configured({}, symbols={"ETH/BTC": {"binance": "ETHBTC"}})
