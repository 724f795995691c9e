"""Producer runner: connectors built from configuration, run concurrently into moto Kinesis,
health endpoint over real HTTP, CloudWatch metrics, connector restarts and a clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
import yaml

from coattail_framework.aws.clients import aws_client
from coattail_framework.config.loader import ConfigLoader
from coattail_framework.config.model import CoattailConfig
from coattail_framework.connector import BaseConnector, ConnectorStats
from coattail_framework.errors import ConfigError, PluginError
from coattail_framework.events import TradeEvent
from coattail_framework.registry import ModuleRegistry
from coattail_framework.resilience import wait_until_async
from coattail_producer.runner import Producer, build_connectors
from coattail_producer.settings import ProducerSettings, PublisherSettings

from .conftest import BTC_DAY1, ETH_DAY1, REGION, binance_trades, published_events


class RecordedTradesConnector(BaseConnector):
    """A test connector: yields the real trades of ``settings["recording"]`` for its symbols, then idles.

    ``fail_after`` makes ``connect()`` raise once after that many events (it resumes where it stopped).
    """

    default_exchange = "recorded"
    instances: ClassVar[list[RecordedTradesConnector]] = []

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self.stats = ConnectorStats()
        self.healthy = True
        self._stop = asyncio.Event()
        symbols = set(self.settings.get("symbols", []))
        recorded = binance_trades(Path(self.settings["recording"]), self.settings.get("limit"))
        self._events = [e for e in recorded if e.symbol in symbols][: self.settings.get("limit")]
        self._position = 0
        self._fail_after = self.settings.get("fail_after")
        RecordedTradesConnector.instances.append(self)

    async def connect(self) -> AsyncIterator[TradeEvent]:
        while self._position < len(self._events):
            if self._fail_after is not None and self._position == self._fail_after:
                self._fail_after = None
                raise ConnectionError("simulated disconnect")
            event = self._events[self._position]
            self._position += 1
            self.stats.messages += 1
            self.stats.trades += 1
            yield event
            await asyncio.sleep(0)
        await self._stop.wait()

    def normalize(self, raw: Mapping[str, Any]) -> list[TradeEvent]:
        return []

    def health_check(self) -> bool:
        return self.healthy

    async def shutdown(self) -> None:
        self._stop.set()


def write_config(tmp_path: Path, moto_url: str, stream: str, **extra: Any) -> CoattailConfig:
    document = {
        "symbols": {"BTC/USDT": {"spot-a": "BTCUSDT"}, "ETH/USDT": {"spot-b": "ETHUSDT"}},
        "exchanges": {
            "spot-a": {"connector": "recorded", "settings": {"recording": str(BTC_DAY1), "limit": 1500}},
            "spot-b": {"connector": "recorded", "settings": {"recording": str(ETH_DAY1), "limit": 1000}},
            "spot-off": {"connector": "missing-plugin", "enabled": False},
        },
        "aws": {"region": REGION, "endpoint_url": moto_url},
        "kinesis": {"stream_name": stream},
        "metrics": {"namespace": f"Test/{stream}"},
        **extra,
    }
    path = tmp_path / "features.yaml"
    path.write_text(yaml.safe_dump(document))
    return ConfigLoader(path, environ={}).load()


@pytest.fixture
def registry() -> ModuleRegistry:
    RecordedTradesConnector.instances.clear()
    registry = ModuleRegistry(entry_points=lambda group: [])
    registry.register(RecordedTradesConnector, "recorded")
    return registry


def test_connectors_get_their_venue_settings_symbols_and_id(
    tmp_path: Path, moto_url: str, stream: str, registry: ModuleRegistry
) -> None:
    config = write_config(tmp_path, moto_url, stream)
    connectors = build_connectors(config, registry)

    assert sorted(connectors) == ["spot-a", "spot-b"]
    settings = connectors["spot-a"].settings  # type: ignore[attr-defined]
    assert settings == {"recording": str(BTC_DAY1), "limit": 1500, "exchange": "spot-a", "symbols": ["BTCUSDT"]}


def test_configuration_errors_name_the_key(
    tmp_path: Path, moto_url: str, stream: str, registry: ModuleRegistry
) -> None:
    config = write_config(tmp_path, moto_url, stream)
    no_symbols = config.model_copy(update={"symbols": config.symbols.model_validate({})})
    with pytest.raises(ConfigError, match=r"exchanges.spot-a is enabled but no symbol"):
        build_connectors(no_symbols, registry)
    with pytest.raises(PluginError, match="pip install coattail-connector-recorded"):
        build_connectors(config, ModuleRegistry(entry_points=lambda group: []))


async def wait_for(condition: Any, timeout: float = 20.0) -> None:
    assert await wait_until_async(condition, timeout, interval_s=0.02), "condition not met in time"


async def test_runs_connectors_concurrently_serves_health_and_metrics_and_stops_clean(
    tmp_path: Path, moto_url: str, stream: str, kinesis: Any, registry: ModuleRegistry
) -> None:
    config = write_config(tmp_path, moto_url, stream)
    connectors = build_connectors(config, registry)
    expected = [*connectors["spot-a"]._events, *connectors["spot-b"]._events]  # type: ignore[attr-defined]
    cloudwatch = aws_client("cloudwatch", region=REGION, endpoint_url=moto_url)
    settings = ProducerSettings(
        health_port=0, health_interval_seconds=0.05, publisher=PublisherSettings(linger_seconds=0.01)
    )
    producer = Producer(config, connectors, kinesis_client=kinesis, cloudwatch_client=cloudwatch, settings=settings)
    stop = asyncio.Event()
    run = asyncio.create_task(producer.run(stop))
    await producer.started.wait()
    await wait_for(lambda: producer.publisher.stats.published == 2500)

    assert producer.health_server is not None
    base = f"http://127.0.0.1:{producer.health_server.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
            body = await response.json()
            assert body == {
                "status": "ok",
                "checks": {
                    "connector:spot-a": {"healthy": True, "detail": "ok"},
                    "connector:spot-b": {"healthy": True, "detail": "ok"},
                    "publisher": {"healthy": True, "detail": "ok"},
                },
            }
        async with http.get(f"{base}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
        assert "coattail_producer_events_published_total 2500\n" in text
        assert 'coattail_producer_events_received_total{exchange="spot-a"} 1500\n' in text
        assert 'coattail_producer_events_received_total{exchange="spot-b"} 1000\n' in text
        assert "coattail_producer_publish_latency_seconds_count 2500\n" in text
        async with http.get(f"{base}/metrics?format=json") as response:
            metrics = await response.json()
        published = [m for m in metrics["metrics"] if m["name"] == "EventsPublished"]
        assert published == [
            {"name": "EventsPublished", "kind": "counter", "unit": "Count", "labels": {}, "value": 2500}
        ]

        connectors["spot-b"].healthy = False  # type: ignore[attr-defined]
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 503
            body = await response.json()
            assert body["status"] == "unhealthy"
            assert body["checks"]["connector:spot-b"]["healthy"] is False
        await wait_for(lambda: not producer.venues["spot-b"].healthy)

    stop.set()
    result = await run
    assert result.clean
    assert result.received == {"spot-a": 1500, "spot-b": 1000}
    read = published_events(kinesis, stream)
    assert sorted(e.event_id for _, _, e in read) == sorted(e.event_id for e in expected)

    statistics = cloudwatch.get_metric_statistics(
        Namespace=f"Test/{stream}",
        MetricName="EventsPublished",
        Dimensions=[{"Name": "Service", "Value": "coattail-producer"}],
        StartTime="2000-01-01T00:00:00Z",
        EndTime="2100-01-01T00:00:00Z",
        Period=86400,
        Statistics=["Sum"],
    )
    assert sum(point["Sum"] for point in statistics["Datapoints"]) == 2500
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace=f"Test/{stream}")["Metrics"]}
    assert {"EventsReceived", "EventsFailed", "EventsRetried", "EventsDropped", "Reconnects", "Gaps"} <= names
    assert "PublishLatency" in names


async def test_a_failing_connector_is_restarted_and_loses_nothing(
    tmp_path: Path, moto_url: str, stream: str, kinesis: Any, registry: ModuleRegistry
) -> None:
    config = write_config(tmp_path, moto_url, stream)
    config = config.model_copy(
        update={
            "exchanges": {
                "spot-a": config.exchanges["spot-a"].model_copy(
                    update={"settings": {"recording": str(BTC_DAY1), "limit": 600, "fail_after": 250}}
                )
            },
            "symbols": config.symbols.model_validate({"BTC/USDT": {"spot-a": "BTCUSDT"}}),
        }
    )
    connectors = build_connectors(config, registry)
    settings = ProducerSettings(connector_restart_seconds=0.01, publisher=PublisherSettings(linger_seconds=0.01))
    producer = Producer(config, connectors, kinesis_client=kinesis, settings=settings, serve_health=False)
    stop = asyncio.Event()
    run = asyncio.create_task(producer.run(stop))
    await wait_for(lambda: producer.publisher.stats.published == 600)
    stop.set()
    result = await run

    assert producer.venues["spot-a"].restarts == 1
    assert result.clean
    assert [e.event_id for _, _, e in published_events(kinesis, stream)] == [
        e.event_id
        for e in connectors["spot-a"]._events  # type: ignore[attr-defined]
    ]
