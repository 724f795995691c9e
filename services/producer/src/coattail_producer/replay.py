"""Replay recordings through each exchange's simulator and the real connector into Kinesis.

Runs on one asyncio event loop (``coattail-producer replay`` or ``await replay(...)`` from
the end-to-end pipeline). Per venue: the recorded frames are loaded into the connector
package's ``simulator_class`` (a local websocket server speaking that exchange's wire
protocol), the unchanged connector is pointed at it, and its trades go through the same
``Producer`` and ``KinesisPublisher`` as live mode. The replay ends once every simulator
has sent everything, the connectors have handed over what they read and the publisher
has flushed.

- Exchange of a file: ``binance:path`` prefix, else ``exchange=``, else detected: each
  installed connector's pure ``normalize`` is tried on the file's first messages and the
  one that finds trades wins. A name is a configured venue (its connector and settings
  are used) or a connector entry point.
- Recorded trade times are kept; ``retime=True`` rewrites them in the frames before the
  simulator serves them (see ``coattail_producer.retime``). Each connector's receive clock
  (``wall_clock``) is its simulator's ``recorded_clock()``: ``ingestion_timestamp`` and the
  connector's trade-time window follow the recording's receive times, not today's.
- ``speed=X`` paces by the recorded receive times (X times real time) where the producer
  takes events from the connector; the connector, the websocket and the simulator are
  slowed down by their own backpressure. Without it the replay runs as fast as it can.
- Malformed recording lines are counted per venue, logged with their line numbers and
  not served.
- ``kinesis:path`` is a raw-record file: its lines are put into the stream as they are,
  after the venues' replay (``coattail_producer.raw_records``; counts in ``ReplayStats.raw``).

Example::

    stats = await replay(config, ["binance:tests/data/binance/ws/spot_btcusdt_20240808.gz"])
    assert stats.dropped == 0
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coattail_framework.aws.clients import aws_client
from coattail_framework.config.model import CoattailConfig
from coattail_framework.connector import BaseConnector
from coattail_framework.errors import ConfigError
from coattail_framework.events import TradeEvent
from coattail_framework.quarantine import Quarantine
from coattail_framework.recordings import RecordedMessage, read_recording
from coattail_framework.registry import ModuleRegistry
from coattail_framework.simulator import ExchangeSimulator
from coattail_producer.raw_records import RAW_SOURCE, RawFileStats, check_files, put_raw_files
from coattail_producer.retime import retime as retime_messages
from coattail_producer.runner import Producer, build_connector, connector_registry, connector_settings
from coattail_producer.settings import ProducerSettings

LOG = logging.getLogger(__name__)

DETECTION_SAMPLE = 2000
"""Messages of a file tried with each connector's ``normalize`` to detect its exchange."""
SETTLE_SECONDS = 0.3
"""After the simulators drained: how long the connectors' counters must stay still before shutdown."""


@dataclass(frozen=True)
class Recording:
    """One recording file and the venue or connector it was tagged with, if any."""

    path: Path
    exchange: str | None = None


@dataclass
class VenueReplay:
    """One venue of a replay: its files, frames served and trades received."""

    venue: str
    connector: str
    files: list[str] = field(default_factory=list)
    frames: int = 0
    malformed_lines: int = 0
    received: int = 0
    drained: bool = False
    connector_stats: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    """Frames the connector rejected, per reason (its ``quarantine.counts``, when it keeps one)."""


@dataclass
class ReplayStats:
    """What a replay did. ``clean`` is what the command's exit code reports."""

    venues: dict[str, VenueReplay]
    published: int = 0
    failed: int = 0
    retried: int = 0
    reordered: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    raw: RawFileStats | None = None
    """The ``kinesis:`` raw-record files, when any were given."""

    @property
    def received(self) -> int:
        """Events the connectors handed over, all venues."""
        return sum(venue.received for venue in self.venues.values())

    @property
    def drained(self) -> bool:
        """True when every simulator served every frame."""
        return all(venue.drained for venue in self.venues.values())

    @property
    def clean(self) -> bool:
        """Every frame served, every received event published, nothing dropped."""
        raw_clean = self.raw is None or self.raw.clean
        return self.drained and not self.dropped and self.published == self.received and raw_clean

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "venues": {name: vars(venue) for name, venue in self.venues.items()},
            "received": self.received,
            "published": self.published,
            "failed": self.failed,
            "retried": self.retried,
            "reordered": self.reordered,
            "dropped": self.dropped,
            "drained": self.drained,
            "clean": self.clean,
            "seconds": round(self.seconds, 3),
            "raw": self.raw.as_dict() if self.raw is not None else None,
        }


def parse_recording(text: str | Path, names: set[str]) -> Recording:
    """``"binance:path"`` -> tagged recording when ``binance`` is a known venue or connector."""
    raw = str(text)
    prefix, separator, rest = raw.partition(":")
    if separator and prefix in names and rest:
        return Recording(Path(rest), prefix)
    return Recording(Path(raw))


def _decode(message: RecordedMessage) -> dict[str, Any] | None:
    if message.malformed:
        return None
    try:
        decoded = json.loads(message.payload)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
        return None
    return decoded if isinstance(decoded, dict) else None


def detect_connector(path: Path, registry: ModuleRegistry) -> str:
    """The connector whose ``normalize`` finds the most trades in the file's first messages."""
    sample = [d for m in itertools.islice(read_recording(path), DETECTION_SAMPLE) if (d := _decode(m)) is not None]
    scores: dict[str, int] = {}
    for name, cls in sorted(registry.connectors.items()):
        connector = cls()
        trades = 0
        for message in sample:
            try:
                trades += len(connector.normalize(message))
            except (ValueError, KeyError, TypeError):
                continue
        scores[name] = trades
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    if not ranked or ranked[0][1] == 0:
        raise ConfigError(
            f"{path}: no installed connector ({', '.join(sorted(scores)) or 'none'}) recognizes a trade in its first "
            f"{DETECTION_SAMPLE} messages; pass --exchange or prefix the path with the exchange (binance:{path})"
        )
    if len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
        raise ConfigError(
            f"{path}: connectors {ranked[0][0]!r} and {ranked[1][0]!r} both recognize its trades; "
            f"pass --exchange or prefix the path (e.g. {ranked[0][0]}:{path})"
        )
    return ranked[0][0]


def resolve_venue(name: str, config: CoattailConfig, registry: ModuleRegistry) -> tuple[str, str]:
    """(venue, connector) for a venue id from ``exchanges`` or a connector entry-point name."""
    if name in config.exchanges:
        return name, config.exchanges[name].connector
    if name in registry.connectors:
        return name, name
    known = sorted({*config.exchanges, *registry.connectors})
    raise ConfigError(f"exchange {name!r} is neither a configured venue nor an installed connector; known: {known}")


def _load_frames(paths: list[Path], venue: VenueReplay) -> list[RecordedMessage]:
    """Every well-formed frame of the files, merged by receive time when all have one."""
    frames: list[RecordedMessage] = []
    for path in paths:
        for message in read_recording(path):
            if message.malformed:
                venue.malformed_lines += 1
                LOG.warning(
                    "replay: %s line %d is not a recorded frame; not served: %.120s",
                    path,
                    message.line,
                    message.payload,
                )
                continue
            frames.append(message)
    if len(paths) > 1 and all(frame.received_ns is not None for frame in frames):
        frames.sort(key=lambda frame: frame.received_ns or 0)
    return frames


class Pacer:
    """Holds each event back until its recorded receive time, divided by ``speed``, has passed."""

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._speed = speed
        self._schedule: dict[str, int] = {}
        self._origin_ns: int | None = None
        self._started: float | None = None
        self.waiting = 0
        """Events being held back right now."""

    def learn(self, connector: BaseConnector, frames: list[RecordedMessage]) -> None:
        """Map the events of every frame (via the connector's pure ``normalize``) to the frame's time."""
        for frame in frames:
            decoded = _decode(frame)
            if decoded is None:
                continue
            try:
                events = connector.normalize(decoded)
            except (ValueError, KeyError, TypeError):
                continue
            for event in events:
                at = frame.received_ns or int(event.timestamp.timestamp() * 1e9)
                self._schedule.setdefault(event.event_id, at)
                self._origin_ns = at if self._origin_ns is None else min(self._origin_ns, at)

    async def wait(self, event: TradeEvent) -> None:
        """Sleep until ``event`` is due; events the recording does not hold (backfill) pass at once."""
        at = self._schedule.get(event.event_id)
        if at is None or self._origin_ns is None:
            return
        if self._started is None:
            self._started = time.monotonic()
        delay = self._started + (at - self._origin_ns) / 1e9 / self._speed - time.monotonic()
        if delay > 0:
            self.waiting += 1
            try:
                await asyncio.sleep(delay)
            finally:
                self.waiting -= 1


async def _settle(producer: Producer, pacer: Pacer | None, timeout: float) -> None:
    """Wait until no venue's counters moved, and no event was held back, for ``SETTLE_SECONDS``.

    Frames the simulator already sent may still sit in the sockets; this lets the
    connectors read them before they are asked to shut down.
    """

    def snapshot() -> list[tuple[int, int]]:
        return [(state.received, state.connector.stats.messages) for state in producer.venues.values()]

    deadline = time.monotonic() + timeout
    last, still_since = snapshot(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - still_since < SETTLE_SECONDS:
        await asyncio.sleep(0.05)
        now = snapshot()
        if now != last or (pacer is not None and pacer.waiting):
            last, still_since = now, time.monotonic()


async def replay(
    config: CoattailConfig,
    recordings: Sequence[str | Path | Recording],
    *,
    exchange: str | None = None,
    retime: bool = False,
    speed: float | None = None,
    settings: ProducerSettings | None = None,
    registry: ModuleRegistry | None = None,
    kinesis_client: Any | None = None,
    cloudwatch_client: Any | None = None,
    drain_timeout: float = 600.0,
) -> ReplayStats:
    """Replay ``recordings`` into ``config.kinesis.stream_name``; see the module docstring.

    Clients default to ``aws_client`` on ``config.aws`` (moto's URL locally). Raises
    ``ConfigError`` for an unknown or undetectable exchange or a connector without a simulator.
    """
    started = time.monotonic()
    registry = registry or connector_registry()
    settings = settings or ProducerSettings()
    names = {*config.exchanges, *registry.connectors, RAW_SOURCE}
    tagged = [r if isinstance(r, Recording) else parse_recording(r, names) for r in recordings]
    if not tagged:
        raise ConfigError("replay needs at least one recording file")
    raw_files = [recording.path for recording in tagged if recording.exchange == RAW_SOURCE]
    check_files(raw_files)
    tagged = [recording for recording in tagged if recording.exchange != RAW_SOURCE]
    kinesis = kinesis_client or aws_client("kinesis", region=config.aws.region, endpoint_url=config.aws.endpoint_url)
    by_venue: dict[tuple[str, str], list[Path]] = {}
    for recording in tagged:
        if not recording.path.is_file():
            raise ConfigError(f"{recording.path}: recording not found")
        name = recording.exchange or exchange or detect_connector(recording.path, registry)
        by_venue.setdefault(resolve_venue(name, config, registry), []).append(recording.path)

    venues: dict[str, VenueReplay] = {}
    simulators: dict[str, ExchangeSimulator] = {}
    connectors: dict[str, BaseConnector] = {}
    pacer = Pacer(speed) if speed is not None else None
    try:
        for (venue, connector_name), paths in by_venue.items():
            report = VenueReplay(venue, connector_name, [str(p) for p in paths])
            frames = _load_frames(paths, report)
            if retime:
                frames = retime_messages(frames, time.time_ns())
            report.frames = len(frames)
            simulator_class = registry.get_connector(connector_name).simulator_class
            if simulator_class is None:
                raise ConfigError(
                    f"connector {connector_name!r} ships no simulator_class; replay needs one to serve {paths[0]}"
                )
            simulator = simulator_class()
            simulator.load(frames)
            await simulator.start()
            simulators[venue] = simulator
            base = connector_settings(config, venue) if venue in config.exchanges else {}
            connector = build_connector(
                registry,
                connector_name,
                venue,
                {**base, **simulator.connector_settings(), "exchange": venue},
                wall_clock=simulator.recorded_clock(),
            )
            connectors[venue] = connector
            venues[venue] = report
            if pacer is not None:
                pacer.learn(connector, frames)
            LOG.info(
                "replay: %s (%s): %d frame(s) from %s", venue, connector_name, len(frames), ", ".join(report.files)
            )

        producer = Producer(
            config,
            connectors,
            kinesis_client=kinesis,
            cloudwatch_client=cloudwatch_client,
            settings=settings,
            serve_health=False,
            before_publish=pacer.wait if pacer is not None else None,
        )
        stop = asyncio.Event()
        run = asyncio.create_task(producer.run(stop))
        drained = await asyncio.gather(*(simulators[v].wait_drained(drain_timeout) for v in venues))
        for venue, ok in zip(venues, drained, strict=True):
            venues[venue].drained = ok
            if not ok:
                LOG.error("replay: %s: the simulator did not serve every frame within %.0fs", venue, drain_timeout)
        await _settle(producer, pacer, timeout=drain_timeout)
        try:  # everything is read: publish it all before the stop, whose deadline is for a live SIGTERM
            await asyncio.wait_for(producer.publisher.flush(), timeout=drain_timeout)
        except TimeoutError:
            LOG.error("replay: the publisher did not flush within %.0fs; stopping anyway", drain_timeout)
        stop.set()
        result = await run
    finally:
        for simulator in simulators.values():
            await simulator.stop()
    raw = None
    if raw_files:
        raw = await put_raw_files(
            kinesis,
            config.kinesis.stream_name,
            raw_files,
            settings.publisher,
            deadline_seconds=settings.shutdown_deadline_seconds,
        )

    for venue, report in venues.items():
        report.received = result.received.get(venue, 0)
        report.connector_stats = connectors[venue].stats.as_dict()
        quarantine = getattr(connectors[venue], "quarantine", None)
        if isinstance(quarantine, Quarantine):
            report.quarantined = dict(quarantine.counts)
    publisher = result.publisher
    stats = ReplayStats(
        venues,
        published=publisher.published,
        failed=publisher.failed,
        retried=publisher.retried,
        reordered=publisher.reordered,
        dropped=dict(publisher.dropped),
        seconds=time.monotonic() - started,
        raw=raw,
    )
    LOG.info("replay: %s", json.dumps(stats.as_dict()))
    return stats
