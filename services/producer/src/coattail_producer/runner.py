"""Run connectors concurrently into the Kinesis publisher, with health checks, metrics and a clean stop.

Everything here runs on one asyncio event loop in the producer process. Each venue's
connector is pumped by its own task (``async for event in connector.connect()`` then
``await publisher.put(event)``, so a full buffer slows the connector down). A connector
whose ``connect()`` raises is restarted after a pause; nothing in one venue stops another.

Stopping (``stop`` event set, e.g. by SIGTERM): every connector's ``shutdown()`` is called
and its task awaited so it hands over what it already read (up to half the shutdown
deadline), then the publisher flushes everything buffered within the rest of the
deadline. Anything still unpublished then is dropped, counted and reported.

Example::

    config = ConfigLoader("config/features.yaml").load()
    connectors = build_connectors(config, connector_registry())
    producer = Producer(config, connectors, kinesis_client=aws_client("kinesis", region="us-east-1"))
    await producer.run(stop_event)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coattail_framework.config.model import CoattailConfig
from coattail_framework.connector import BaseConnector
from coattail_framework.errors import CoattailError, ConfigError
from coattail_framework.events import TradeEvent
from coattail_framework.registry import ModuleRegistry
from coattail_producer.health import Check, HealthReport, HealthServer
from coattail_producer.metrics import CloudWatchEmitter, Sample, VenueMetrics, collect
from coattail_producer.publisher import KinesisPublisher, LatencyWindow, PublisherStats
from coattail_producer.settings import ProducerSettings

LOG = logging.getLogger(__name__)

CONNECTOR_SHARE_OF_DEADLINE = 0.5
"""Part of the shutdown deadline connectors get to hand over what they read; the publisher gets the rest."""


def connector_registry() -> ModuleRegistry:
    """The plugin registry with its connector group loaded (failures logged at start).

    The producer never asks for detectors, so the registry never loads their group (nor the
    PySpark they import): each group is read the first time it is needed.
    """
    return ModuleRegistry().discover("connector")


def connector_settings(config: CoattailConfig, venue: str) -> dict[str, Any]:
    """``exchanges.<venue>.settings`` plus ``exchange`` (the venue id) and ``symbols`` (its spellings)."""
    exchange = config.exchanges[venue]
    return {**exchange.settings, "exchange": venue, "symbols": config.symbols.for_exchange(venue)}


def build_connector(
    registry: ModuleRegistry,
    connector_name: str,
    venue: str,
    settings: Mapping[str, Any],
    *,
    wall_clock: Callable[[], datetime] | None = None,
) -> BaseConnector:
    """Instantiate one venue's connector; a settings error names the venue and how to fix it.

    ``wall_clock`` (aware UTC) is the connector's receive clock (``BaseConnector``'s keyword);
    None keeps the connector's default, the real clock. Replay passes the simulator's recorded clock.
    """
    factory: Callable[..., BaseConnector] = registry.get_connector(connector_name)
    clock: dict[str, Callable[[], datetime]] = {} if wall_clock is None else {"wall_clock": wall_clock}
    try:
        return factory(settings=dict(settings), **clock)
    except CoattailError:
        raise
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"exchanges.{venue}.settings: connector {connector_name!r} rejected its settings: {error}"
        ) from None


def build_connectors(config: CoattailConfig, registry: ModuleRegistry) -> dict[str, BaseConnector]:
    """One connector per enabled venue, built from its configured settings and symbols."""
    connectors: dict[str, BaseConnector] = {}
    for venue, exchange in config.enabled_exchanges.items():
        if not config.symbols.for_exchange(venue):
            raise ConfigError(
                f"{config.source_of(('exchanges', venue))}: exchanges.{venue} is enabled but no symbol under "
                f"`symbols` names venue {venue!r}; map a symbol to it or set exchanges.{venue}.enabled: false"
            )
        connectors[venue] = build_connector(registry, exchange.connector, venue, connector_settings(config, venue))
    if not connectors:
        raise ConfigError(f"{config.source_of(('exchanges',))}: no enabled exchange under `exchanges`; nothing to run")
    return connectors


@dataclass
class VenueState:
    """One venue's connector and what the runner counted for it."""

    connector: BaseConnector
    received: int = 0
    restarts: int = 0
    healthy: bool = True
    detail: str = "not checked yet"


@dataclass
class ProducerResult:
    """What a run did: publisher counters and events received per venue."""

    publisher: PublisherStats
    received: dict[str, int] = field(default_factory=dict)
    connectors_cancelled: list[str] = field(default_factory=list)
    """Venues whose connector did not stop within its share of the deadline (their unread events are lost)."""

    @property
    def clean(self) -> bool:
        """True when nothing was dropped and every connector stopped by itself."""
        return self.publisher.dropped_total == 0 and not self.connectors_cancelled


class Producer:
    """Connectors, publisher, health endpoint and metrics of one producer process."""

    def __init__(
        self,
        config: CoattailConfig,
        connectors: Mapping[str, BaseConnector],
        *,
        kinesis_client: Any,
        cloudwatch_client: Any | None = None,
        settings: ProducerSettings | None = None,
        serve_health: bool = True,
        before_publish: Callable[[TradeEvent], Awaitable[None]] | None = None,
    ) -> None:
        self._config = config
        self._settings = settings or ProducerSettings()
        self.publisher = KinesisPublisher(kinesis_client, config.kinesis.stream_name, self._settings.publisher)
        self.venues = {venue: VenueState(connector) for venue, connector in connectors.items()}
        self._emitter = (
            CloudWatchEmitter(cloudwatch_client, config.metrics.namespace)
            if config.metrics.enabled and cloudwatch_client is not None
            else None
        )
        self.health_server = (
            HealthServer(
                self._settings.health_host, self._settings.health_port, report=self.health_report, metrics=self.metrics
            )
            if serve_health
            else None
        )
        self._before_publish = before_publish
        self._stopping = False
        self.started = asyncio.Event()

    @property
    def emitter(self) -> CloudWatchEmitter | None:
        """The CloudWatch metrics emitter, when metrics are enabled."""
        return self._emitter

    def health_report(self) -> HealthReport:
        """Every connector's ``health_check()`` and the publisher's state, now."""
        checks: dict[str, Check] = {}
        for venue, state in self.venues.items():
            try:
                healthy = bool(state.connector.health_check())
                detail = "ok" if healthy else "no message within the connector's staleness limit"
            except Exception as error:  # noqa: BLE001 - a failing check is an unhealthy connector, not a crash
                healthy, detail = False, f"health_check raised {type(error).__name__}: {error}"
            checks[f"connector:{venue}"] = Check(healthy, detail)
        publisher_ok, publisher_detail = self.publisher.health()
        checks["publisher"] = Check(publisher_ok, publisher_detail)
        return HealthReport(checks)

    def metrics(self) -> tuple[list[Sample], LatencyWindow]:
        """Current samples and the cumulative publish latency."""
        venues = {
            venue: VenueMetrics(
                state.received, state.restarts, state.healthy, state.connector.stats, state.connector.quarantined()
            )
            for venue, state in self.venues.items()
        }
        return collect(self.publisher.stats, self.publisher.buffered, venues), self.publisher.stats.latency

    async def run(self, stop: asyncio.Event) -> ProducerResult:
        """Run until ``stop`` is set, then stop connectors, flush, and return the counters."""
        await self.publisher.start()
        if self.health_server is not None:
            await self.health_server.start()
            LOG.info(
                "producer: health endpoint on http://%s:%d/healthz", self._settings.health_host, self.health_server.port
            )
        pumps = {venue: asyncio.create_task(self._pump(venue), name=f"connector:{venue}") for venue in self.venues}
        health = asyncio.create_task(self._health_loop())
        loops = [health, asyncio.create_task(self._metrics_loop())]
        LOG.info(
            "producer: %d connector(s) running (%s) -> kinesis stream %r",
            len(pumps),
            ", ".join(sorted(pumps)),
            self.publisher.stream_name,
        )
        self.started.set()
        try:
            await stop.wait()
        finally:
            result = await self._shutdown(pumps, loops, health)
        return result

    async def _shutdown(
        self, pumps: dict[str, asyncio.Task[None]], loops: list[asyncio.Task[None]], health: asyncio.Task[None]
    ) -> ProducerResult:
        self._stopping = True
        health.cancel()  # the connectors are stopped on purpose now: not an alarm
        await asyncio.gather(health, return_exceptions=True)
        deadline = self._settings.shutdown_deadline_seconds
        started = time.monotonic()
        LOG.info("producer: stopping %d connector(s), then flushing %d record(s)", len(pumps), self.publisher.buffered)
        cancelled = await self._stop_connectors(pumps, deadline * CONNECTOR_SHARE_OF_DEADLINE)
        remaining = max(0.0, deadline - (time.monotonic() - started))
        await self.publisher.close(remaining)
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await self._push_metrics()
        if self.health_server is not None:
            await self.health_server.stop()
        result = ProducerResult(
            self.publisher.stats, {venue: state.received for venue, state in self.venues.items()}, cancelled
        )
        stats = self.publisher.stats
        LOG.info(
            "producer: stopped; received %d, published %d, retried %d, dropped %d %s",
            sum(result.received.values()),
            stats.published,
            stats.retried,
            stats.dropped_total,
            dict(stats.dropped),
        )
        return result

    async def _stop_connectors(self, pumps: dict[str, asyncio.Task[None]], timeout: float) -> list[str]:
        async def stop_one(venue: str) -> None:
            try:
                await self.venues[venue].connector.shutdown()
            except Exception:
                LOG.exception("producer: connector %s: shutdown() failed", venue)

        if not pumps:
            return []
        started = time.monotonic()
        stops = [asyncio.create_task(stop_one(venue)) for venue in pumps]
        await asyncio.wait(stops, timeout=timeout)
        remaining = max(0.0, timeout - (time.monotonic() - started))
        _, pending = await asyncio.wait(pumps.values(), timeout=remaining)
        for stop_task in stops:
            stop_task.cancel()
        await asyncio.gather(*stops, return_exceptions=True)
        cancelled = sorted(venue for venue, task in pumps.items() if task in pending)
        for venue in cancelled:
            LOG.error(
                "producer: connector %s did not finish within %.1fs of shutdown(); cancelling it "
                "(events it had not handed over are lost)",
                venue,
                timeout,
            )
            pumps[venue].cancel()
        await asyncio.gather(*pumps.values(), return_exceptions=True)
        return cancelled

    async def _pump(self, venue: str) -> None:
        state = self.venues[venue]
        pause = self._settings.connector_restart_seconds
        while True:
            try:
                async for event in state.connector.connect():
                    state.received += 1
                    if self._before_publish is not None:
                        await self._before_publish(event)
                    await self.publisher.put(event)
            except Exception:
                if self._stopping:
                    LOG.exception("producer: connector %s failed while stopping", venue)
                    return
                state.restarts += 1
                LOG.exception("producer: connector %s failed; restarting in %.1fs", venue, pause)
                await asyncio.sleep(pause)
                continue
            if self._stopping:
                return
            state.restarts += 1
            LOG.error("producer: connector %s: connect() ended without shutdown(); restarting in %.1fs", venue, pause)
            await asyncio.sleep(pause)

    async def _health_loop(self) -> None:
        """Log each venue's health when it changes, every ``health_interval_seconds``.

        The first check comes one interval after the start: a connector that has not yet
        connected is not an alarm. ``_shutdown`` cancels this loop before it stops the
        connectors on purpose (``/healthz`` still answers truthfully meanwhile).
        """
        while True:
            await asyncio.sleep(self._settings.health_interval_seconds)
            report = self.health_report()
            for name, check in report.checks.items():
                venue = name.removeprefix("connector:")
                state = self.venues.get(venue)
                if state is not None and name != venue:
                    if state.healthy != check.healthy or state.detail == "not checked yet":
                        log = LOG.info if check.healthy else LOG.warning
                        log("producer: %s is %s (%s)", name, "healthy" if check.healthy else "UNHEALTHY", check.detail)
                    state.healthy, state.detail = check.healthy, check.detail
                elif not check.healthy:
                    LOG.warning("producer: %s is UNHEALTHY (%s)", name, check.detail)

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.metrics_interval_seconds)
            await self._push_metrics()

    async def _push_metrics(self) -> None:
        if self._emitter is None:
            return
        samples, _ = self.metrics()
        window = self.publisher.stats.take_latency_window()
        await asyncio.to_thread(self._emitter.push, samples, window)
