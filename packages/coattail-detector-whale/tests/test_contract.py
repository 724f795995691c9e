"""MOD-002 honours the detector contract: entry point, schema, partitioning, configuration."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from coattail_detector_whale import WHALE_TRADES, WhaleConfig, WhaleDetector
from coattail_framework.alerts import SeverityTiers
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError
from coattail_framework.registry import ModuleRegistry
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

SYMBOLS = {"BTC/USDT": {"binance": "BTCUSDT"}, "ETH/BTC": {"coinbase": "ETH-BTC"}}


def configured(modules: dict[str, object] | None = None, symbols: object = None) -> WhaleDetector:
    detector = WhaleDetector()
    config = CoattailConfig.model_validate(
        {"symbols": SYMBOLS if symbols is None else symbols, "modules": modules or {}}
    )
    detector.configure(config)
    return detector


def test_the_entry_point_publishes_the_detector() -> None:
    registry = ModuleRegistry().discover()
    assert registry.get_detector("whale") is WhaleDetector
    detector = configured()
    assert (detector.module_id, detector.module_name, detector.output_table) == ("MOD-002", "whale", "whale_trades")
    assert list(detector.alert_types) == ["whale_trade"]
    assert [field.sql() for field in detector.partition_spec] == ["days(order_time)"]


def test_defaults_match_the_issue() -> None:
    settings = configured().settings
    assert settings == WhaleConfig(
        min_notional_usd=100_000,
        thresholds=SeverityTiers(medium=100_000, high=500_000, critical=1_000_000),
        watermark_delay_seconds=2,
        usd_quote_currencies=["USD", "USDT", "USDC"],
    )


def test_output_has_exactly_the_declared_schema(spark: SparkSession) -> None:
    events = spark.createDataFrame([], UNIFIED_TRADE_EVENT)
    assert configured().process(events).schema == WHALE_TRADES
    alerts = configured().build_alerts(spark.createDataFrame([], WHALE_TRADES))
    assert alerts.columns[:3] == ["alert_id", "alert_type", "module_id"]


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"whale": {"min_notional_usd": -5}}, "modules.whale.min_notional_usd input should be greater than 0, got -5"),
        ({"whale": {"thresholds": {"medium": 10, "high": 5}}}, "modules.whale.thresholds value error, high (5.0)"),
        ({"whale": {"usd_quote_currencies": ["usd"]}}, "modules.whale.usd_quote_currencies.0 value error"),
        ({"whale": {"watermark": 2}}, "modules.whale.watermark extra inputs are not permitted"),
    ],
)
def test_bad_settings_name_their_key_path(modules: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^defaults: ") as raised:
        configured(modules)
    assert message in str(raised.value)


def test_a_catalogue_without_usd_instruments_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"symbols has no instrument quoted in modules.whale.usd_quote_currencies"):
        configured(symbols={"ETH/BTC": {"coinbase": "ETH-BTC"}})
