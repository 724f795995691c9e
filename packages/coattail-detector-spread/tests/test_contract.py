"""MOD-003 honours the detector contract: entry point, schema, partitioning, configuration."""

from __future__ import annotations

from typing import Any

import pytest
from pyspark.sql import SparkSession

from coattail_detector_spread import EXCHANGE_SPREADS, SpreadConfig, SpreadDetector
from coattail_detector_spread.detector import Leg
from coattail_framework.alerts import SeverityTiers
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError
from coattail_framework.registry import ModuleRegistry
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

SYMBOLS = {
    "BTC/USDT": {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT"},
    "BTC/USD": {"coinbase": "BTC-USD"},
    "ETH/USDT": {"binance": "ETHUSDT"},
    "ETH/USD": {"coinbase": "ETH-USD"},
}


def configured(settings: dict[str, Any] | None = None, symbols: dict[str, Any] | None = None) -> SpreadDetector:
    detector = SpreadDetector()
    modules = {"spread": settings or {}}
    detector.configure(CoattailConfig.model_validate({"symbols": symbols or SYMBOLS, "modules": modules}))
    return detector


def test_the_entry_point_publishes_the_detector() -> None:
    assert ModuleRegistry().discover().get_detector("spread") is SpreadDetector
    detector = configured()
    assert (detector.module_id, detector.module_name, detector.output_table) == (
        "MOD-003",
        "spread",
        "exchange_spreads",
    )
    assert list(detector.alert_types) == ["spread_divergence"]
    assert [field.sql() for field in detector.partition_spec] == ["days(window_start)"]


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


def test_output_has_exactly_the_declared_schema(spark: SparkSession) -> None:
    events = spark.createDataFrame([], UNIFIED_TRADE_EVENT)
    assert configured().process(events).schema == EXCHANGE_SPREADS


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window_seconds": 0}, "modules.spread.window_seconds input should be greater than 0, got 0"),
        ({"thresholds": {"medium": 1.0, "high": 0.5}}, "modules.spread.thresholds value error, high (0.5)"),
        ({"quote_equivalents": {"usdt": "USD"}}, "modules.spread.quote_equivalents value error, currency 'usdt'"),
        ({"quote_equivalents": {"USDC": "USDT", "USDT": "USD"}}, "USDC maps to USDT, which is itself mapped"),
        ({"window": 30}, "modules.spread.window extra inputs are not permitted"),
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
