"""MOD-002 honours the detector contract (``DetectorContract``) and its own configuration rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coattail_detector_whale import WhaleConfig, WhaleDetector
from coattail_devstack.testing.contracts import DetectorContract
from coattail_framework.alerts import SeverityTiers
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError

SYMBOLS = {"BTC/USDT": {"binance": "BTCUSDT"}, "ETH/BTC": {"coinbase": "ETH-BTC"}}
ORDER = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "side": "buy",
    "order_time": datetime(2024, 8, 8, 23, 58, 1, tzinfo=UTC),
    "notional": 2_000_000.0,
    "base_quantity": 33.0,
    "fill_count": 3,
    "first_trade_id": "101",
    "last_trade_id": "103",
    "first_price": 60_500.0,
    "last_price": 60_700.0,
    "vwap_price": 60_606.0,
    "price_impact_bps": 33.1,
}
"""A whale_trades row (Binance: no taker order id) above the critical bound."""


class TestWhaleContract(DetectorContract):
    detector_class = WhaleDetector
    config = {"symbols": SYMBOLS}
    alerting_rows = (ORDER,)


def configured(modules: dict[str, object] | None = None, symbols: object = None) -> WhaleDetector:
    detector = WhaleDetector()
    config = CoattailConfig.model_validate(
        {"symbols": SYMBOLS if symbols is None else symbols, "modules": modules or {}}
    )
    detector.configure(config)
    return detector


def test_partitioned_by_the_order_day() -> None:
    assert [field.sql() for field in WhaleDetector.partition_spec] == ["days(order_time)"]


def test_defaults_match_the_issue() -> None:
    settings = configured().settings
    assert settings == WhaleConfig(
        min_notional_usd=100_000,
        thresholds=SeverityTiers(medium=100_000, high=500_000, critical=1_000_000),
        watermark_delay_seconds=2,
        usd_quote_currencies=["USD", "USDT", "USDC"],
    )


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"whale": {"min_notional_usd": -5}}, "modules.whale.min_notional_usd input should be greater than 0, got -5"),
        ({"whale": {"thresholds": {"medium": 10, "high": 5}}}, "modules.whale.thresholds value error, high (5.0)"),
        ({"whale": {"usd_quote_currencies": ["usd"]}}, "modules.whale.usd_quote_currencies.0 value error"),
    ],
)
def test_bad_settings_name_their_key_path(modules: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^defaults: ") as raised:
        configured(modules)
    assert message in str(raised.value)


def test_a_catalogue_without_usd_instruments_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"symbols has no instrument quoted in modules.whale.usd_quote_currencies"):
        configured(symbols={"ETH/BTC": {"coinbase": "ETH-BTC"}})
