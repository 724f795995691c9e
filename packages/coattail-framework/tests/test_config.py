"""ConfigLoader: YAML, SSM overrides (moto), environment overrides, precedence and bad values."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from coattail_framework.config import ConfigLoader, SymbolCatalog
from coattail_framework.config.model import SnapshotRetention
from coattail_framework.errors import ConfigError

SAMPLE = """
feature_tier: small
disabled_modules: [spread]
symbols:
  BTC/USDT: {binance: BTCUSDT}
  BTC/USD: {coinbase: BTC-USD}
exchanges:
  binance: {connector: binance}
  coinbase: {connector: coinbase, settings: {url: "wss://ws-feed.exchange.coinbase.com"}}
modules:
  whale: {min_notional_usd: 100000}
  volume-anomaly: {z_threshold: 2.5}
kinesis: {stream_name: trades, shard_count: 2}
ssm: {enabled: false, prefix: /coattail/test/}
"""


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "features.yaml"
    path.write_text(SAMPLE)
    return path


def test_reads_yaml_with_defaults_for_missing_sections(sample: Path, small_tier_declared: None) -> None:
    config = ConfigLoader(sample, environ={}).load()
    assert config.feature_tier == "small"
    assert config.active_modules == ["volume-anomaly", "whale"]
    assert config.kinesis.stream_name == "trades"
    assert config.kinesis.shard_count == 2
    assert config.dynamodb.ttl_days == 30
    assert config.symbols.for_exchange("coinbase") == ["BTC-USD"]
    assert config.symbols.canonical("binance", "BTCUSDT") == "BTC/USDT"
    assert list(config.enabled_exchanges) == ["binance", "coinbase"]
    assert config.source_of(("kinesis", "shard_count")) == str(sample)


def test_environment_overrides_yaml_matching_keys_loosely(sample: Path, small_tier_declared: None) -> None:
    environ = {
        "COATTAIL_KINESIS__SHARD_COUNT": "4",
        "COATTAIL_MODULES__VOLUME_ANOMALY__Z_THRESHOLD": "3.0",
        "COATTAIL_DISABLED_MODULES": "[]",
        "COATTAIL_CONFIG": "ignored-as-a-key",
        "OTHER_VARIABLE": "x",
    }
    config = ConfigLoader(sample, environ=environ).load()
    assert config.kinesis.shard_count == 4
    assert config.modules["volume-anomaly"] == {"z_threshold": 3.0}
    assert config.active_modules == ["volume-anomaly", "whale", "spread"]
    assert config.source_of(("kinesis", "shard_count")) == "environment COATTAIL_KINESIS__SHARD_COUNT"


def test_config_path_from_environment(sample: Path) -> None:
    loader = ConfigLoader(environ={"COATTAIL_CONFIG": str(sample)})
    assert loader.path == sample
    assert loader.load().kinesis.stream_name == "trades"


def _ssm(moto_endpoint: str) -> Any:
    return boto3.client("ssm", region_name="us-east-1", endpoint_url=moto_endpoint)


def test_ssm_overrides_yaml_and_environment_overrides_ssm(sample: Path, moto_endpoint: str) -> None:
    ssm = _ssm(moto_endpoint)
    ssm.put_parameter(Name="/coattail/test/kinesis/shard_count", Value="8", Type="String", Overwrite=True)
    ssm.put_parameter(
        Name="/coattail/test/modules/whale/min_notional_usd", Value="250000", Type="String", Overwrite=True
    )
    ssm.put_parameter(Name="/coattail/test/dynamodb/ttl_days", Value="7", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/coattail/other/dynamodb/ttl_days", Value="1", Type="String", Overwrite=True)
    environ = {
        "COATTAIL_SSM__ENABLED": "true",
        "COATTAIL_AWS__ENDPOINT_URL": moto_endpoint,
        "COATTAIL_DYNAMODB__TTL_DAYS": "14",
    }
    config = ConfigLoader(sample, environ=environ).load()
    assert config.kinesis.shard_count == 8
    assert config.modules["whale"] == {"min_notional_usd": 250000}
    assert config.dynamodb.ttl_days == 14
    assert config.source_of(("kinesis", "shard_count")) == "SSM parameter /coattail/test/kinesis/shard_count"


def test_bad_ssm_value_names_the_parameter(sample: Path, moto_endpoint: str) -> None:
    ssm = _ssm(moto_endpoint)
    ssm.put_parameter(Name="/coattail/bad/kinesis/max_records_per_trigger", Value="0", Type="String", Overwrite=True)
    environ = {
        "COATTAIL_SSM__ENABLED": "true",
        "COATTAIL_SSM__PREFIX": "/coattail/bad/",
        "COATTAIL_AWS__ENDPOINT_URL": moto_endpoint,
    }
    with pytest.raises(ConfigError) as error:
        ConfigLoader(sample, environ=environ).load()
    assert str(error.value) == (
        "SSM parameter /coattail/bad/kinesis/max_records_per_trigger: kinesis.max_records_per_trigger "
        "input should be greater than or equal to 1, got 0"
    )


def deployed_layout(env: str) -> list[tuple[str, str, str]]:
    """(name, value, type) of the SSM parameters of one environment, as docs/DEPLOY.md lays them out."""
    return [
        (f"/coattail/{env}/config/kinesis/stream_name", "coattail-trades-live", "String"),
        (f"/coattail/{env}/config/kinesis/shard_count", "4", "String"),
        (f"/coattail/{env}/config/modules/whale/min_notional_usd", "250000", "String"),
        (f"/coattail/{env}/config/dynamodb/ttl_days", "45", "String"),
        (f"/coattail/{env}/secrets/api/cursor-key", "k" * 48, "SecureString"),
    ]


class RecordingSsm:
    """A moto SSM client that records every call the loader makes (method name and arguments)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_paginator(self, operation: str) -> Any:
        paginator = self._client.get_paginator(operation)
        calls = self.calls

        class Recording:
            def paginate(self, **kwargs: Any) -> Any:
                calls.append((operation, kwargs))
                return paginator.paginate(**kwargs)

        return Recording()

    def __getattr__(self, name: str) -> Any:
        self.calls.append((name, {}))
        return getattr(self._client, name)


def _layout_loader(sample: Path, moto_endpoint: str, env: str, parameters: list[tuple[str, str, str]]) -> Any:
    ssm = _ssm(moto_endpoint)
    for name, value, kind in parameters:
        ssm.put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)
    recording = RecordingSsm(ssm)
    environ = {"COATTAIL_SSM__ENABLED": "true", "COATTAIL_SSM__PREFIX": f"/coattail/{env}/config/"}
    return ConfigLoader(sample, environ=environ, ssm_client_factory=lambda region, endpoint: recording), recording


def test_the_deployed_layout_loads_the_configuration_without_touching_secrets(sample: Path, moto_endpoint: str) -> None:
    env = f"prod-{uuid.uuid4().hex[:8]}"
    loader, recording = _layout_loader(sample, moto_endpoint, env, deployed_layout(env))

    config = loader.load()

    assert (config.kinesis.stream_name, config.kinesis.shard_count, config.dynamodb.ttl_days) == (
        "coattail-trades-live",
        4,
        45,
    )
    assert config.modules["whale"] == {"min_notional_usd": 250000}
    assert config.source_of(("dynamodb", "ttl_days")) == f"SSM parameter /coattail/{env}/config/dynamodb/ttl_days"
    assert recording.calls == [
        (
            "get_parameters_by_path",
            {"Path": f"/coattail/{env}/config", "Recursive": True, "WithDecryption": False},
        )
    ]


def test_a_stray_key_under_the_config_prefix_fails_naming_the_parameter(sample: Path, moto_endpoint: str) -> None:
    env = f"prod-{uuid.uuid4().hex[:8]}"
    stray = (f"/coattail/{env}/config/kinesis/shard_cont", "4", "String")
    loader, _ = _layout_loader(sample, moto_endpoint, env, [*deployed_layout(env), stray])

    with pytest.raises(ConfigError) as error:
        loader.load()

    assert str(error.value) == (
        f"SSM parameter /coattail/{env}/config/kinesis/shard_cont: kinesis.shard_cont extra inputs are not "
        "permitted, got 4"
    )


def test_a_secure_string_under_the_config_prefix_is_refused_unread(sample: Path, moto_endpoint: str) -> None:
    env = f"prod-{uuid.uuid4().hex[:8]}"
    misplaced = (f"/coattail/{env}/config/api/cursor-key", "m" * 48, "SecureString")
    loader, _ = _layout_loader(sample, moto_endpoint, env, [*deployed_layout(env), misplaced])

    with pytest.raises(ConfigError) as error:
        loader.load()

    assert str(error.value) == (
        f"SSM parameter /coattail/{env}/config/api/cursor-key: a SecureString under ssm.prefix "
        f"/coattail/{env}/config/; configuration parameters are plain String values, secrets belong under "
        "/coattail/<env>/secrets/ (read by name by the service that needs them): move it there or store it as a "
        "String"
    )


def test_the_secrets_subtree_cannot_be_the_config_prefix(sample: Path) -> None:
    environ = {"COATTAIL_SSM__ENABLED": "true", "COATTAIL_SSM__PREFIX": "/coattail/prod/secrets/"}

    def no_ssm(region: str, endpoint_url: str | None) -> Any:
        raise AssertionError("SSM must not be called with a secrets prefix")

    with pytest.raises(ConfigError) as error:
        ConfigLoader(sample, environ=environ, ssm_client_factory=no_ssm).load()

    assert str(error.value) == (
        f"{sample} or COATTAIL_SSM__* environment: ssm.prefix value error, must name the configuration subtree "
        "(/coattail/<env>/config/), not the secrets one, got '/coattail/prod/secrets/'"
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"COATTAIL_KINESIS__SHARD_COUNT": "-5"},
            "environment COATTAIL_KINESIS__SHARD_COUNT: kinesis.shard_count input should be greater than or equal "
            "to 1, got -5",
        ),
        (
            {"COATTAIL_FEATURE_TIER": "huge"},
            "environment COATTAIL_FEATURE_TIER: feature_tier input should be 'small', 'medium' or 'large', got 'huge'",
        ),
        (
            {"COATTAIL_KINESIS__STREAM": "x"},
            "environment COATTAIL_KINESIS__STREAM: kinesis.stream extra inputs are not permitted, got 'x'",
        ),
        (
            {"COATTAIL_STREAMING__QUERY_TRIGGER_SECONDS": '{"whale": 0}'},
            "environment COATTAIL_STREAMING__QUERY_TRIGGER_SECONDS: streaming.query_trigger_seconds value error, "
            "whale: a trigger must be greater than 0 seconds, got 0.0",
        ),
        (
            {"COATTAIL_ICEBERG__MAINTENANCE__TABLE_RETENTION": '{"raw_trades": {"keep_hourly_days": -1}}'},
            "environment COATTAIL_ICEBERG__MAINTENANCE__TABLE_RETENTION: "
            "iceberg.maintenance.table_retention.raw_trades.keep_hourly_days input should be greater than or equal "
            "to 0, got -1",
        ),
        (
            {"COATTAIL_KINESIS__STARTING_POSITION": "AT_TIMESTAMP"},
            "environment COATTAIL_KINESIS__STARTING_POSITION: kinesis value error, starting_timestamp is required "
            "when starting_position is AT_TIMESTAMP",
        ),
    ],
)
def test_bad_values_fail_with_key_path_and_source(sample: Path, environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        ConfigLoader(sample, environ=environ).load()
    assert str(error.value) == expected


def test_bad_yaml_values_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "features.yaml"
    path.write_text("dynamodb: {ttl_days: 0}\nsymbols: {btcusdt: {binance: BTCUSDT}}\n")
    with pytest.raises(ConfigError) as error:
        ConfigLoader(path, environ={}).load()
    lines = str(error.value).splitlines()
    assert lines[0] == f"{path}: symbols value error, symbol 'btcusdt' must be canonical BASE/QUOTE, e.g. BTC/USDT"
    assert lines[1] == f"{path}: dynamodb.ttl_days input should be greater than 0, got 0"


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found; pass --config or set COATTAIL_CONFIG"):
        ConfigLoader(tmp_path / "absent.yaml", environ={}).load()
    broken = tmp_path / "broken.yaml"
    broken.write_text("kinesis: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        ConfigLoader(broken, environ={}).load()
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="the top level must be a mapping, got list"):
        ConfigLoader(listing, environ={}).load()


def test_symbols_must_be_on_configured_exchanges(tmp_path: Path) -> None:
    path = tmp_path / "features.yaml"
    path.write_text("exchanges: {binance: {connector: binance}}\nsymbols: {BTC/USD: {kraken: XBTUSD}}\n")
    with pytest.raises(ConfigError, match="symbols name venue 'kraken', which is not under exchanges"):
        ConfigLoader(path, environ={}).load()


def test_symbol_catalogue_rejects_a_symbol_mapped_twice() -> None:
    with pytest.raises(ValueError, match="binance BTCUSDT is mapped to both BTC/USDT and BTC/USD"):
        SymbolCatalog({"BTC/USDT": {"binance": "BTCUSDT"}, "BTC/USD": {"binance": "BTCUSDT"}})


def test_repository_default_configuration_loads(small_tier_declared: None) -> None:
    root = Path(__file__).resolve().parents[3]
    config = ConfigLoader(root / "config" / "features.yaml", environ={}).load()
    assert config.active_modules == ["volume-anomaly", "whale", "spread"]
    assert set(config.symbols.exchanges()) >= {"binance", "coinbase"}
    maintenance = config.iceberg.maintenance
    assert maintenance.retention_for("alerts") == SnapshotRetention(keep_all_minutes=2, keep_hourly_days=0)
    assert maintenance.retention_for("raw_trades") == SnapshotRetention(keep_all_minutes=30, keep_hourly_days=7)
    assert (config.ssm.enabled, config.ssm.prefix) == (False, "/coattail/prod/config/")


def test_kinesis_source_options_come_from_config(sample: Path) -> None:
    from coattail_framework.kinesis import coattail_kinesis_options

    environ = {"COATTAIL_KINESIS__MIN_POLL_INTERVAL_MS": "1250", "COATTAIL_AWS__ENDPOINT_URL": "http://127.0.0.1:9"}
    options = coattail_kinesis_options(ConfigLoader(sample, environ=environ).load())
    assert options == {
        "streamName": "trades",
        "region": "us-east-1",
        "startingPosition": "TRIM_HORIZON",
        "maxRecordsPerTrigger": "10000",
        "maxBytesPerTrigger": "8388608",
        "minPollIntervalMs": "1250",
        "idlePollIntervalMs": "2000",
        "readFailureMaxAttempts": "10",
        "readFailureMaxSeconds": "60.0",
        "endpointUrl": "http://127.0.0.1:9",
    }


def test_kinesis_read_failure_limits_must_be_positive(sample: Path) -> None:
    environ = {"COATTAIL_KINESIS__READ_FAILURE_MAX_ATTEMPTS": "0", "COATTAIL_KINESIS__READ_FAILURE_MAX_SECONDS": "-1"}
    with pytest.raises(ConfigError) as error:
        ConfigLoader(sample, environ=environ).load()
    assert str(error.value).splitlines() == [
        "environment COATTAIL_KINESIS__READ_FAILURE_MAX_ATTEMPTS: kinesis.read_failure_max_attempts "
        "input should be greater than 0, got 0",
        "environment COATTAIL_KINESIS__READ_FAILURE_MAX_SECONDS: kinesis.read_failure_max_seconds "
        "input should be greater than 0, got -1",
    ]


def test_each_query_has_the_default_trigger_unless_it_has_its_own(sample: Path) -> None:
    environ = {"COATTAIL_STREAMING__QUERY_TRIGGER_SECONDS": '{"ingest": 10, "whale": 0.5}'}
    streaming = ConfigLoader(sample, environ=environ).load().streaming
    assert (streaming.trigger_for("ingest"), streaming.trigger_for("whale")) == (10.0, 0.5)
    assert streaming.trigger_for("volume-anomaly") == streaming.trigger_seconds == 1.0
    # an early query without its own entry runs on its module's trigger
    assert (streaming.trigger_for("whale-early"), streaming.trigger_for("spread-early")) == (0.5, 1.0)
    own = ConfigLoader(sample, environ={"COATTAIL_STREAMING__QUERY_TRIGGER_SECONDS": '{"whale-early": 0.25}'}).load()
    assert (own.streaming.trigger_for("whale-early"), own.streaming.trigger_for("whale")) == (0.25, 1.0)
