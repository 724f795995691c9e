"""The Binance connector plugin (entry point ``binance`` in ``coattail.connectors``).

Streams ``<symbol>@trade`` (or ``@aggTrade``) for the configured symbols from Binance spot or
USD-M futures, normalizes each trade to a ``TradeEvent`` and yields them in trade-id order
per symbol: gaps (after a reconnect, or a jump in ids) are filled from the public REST
endpoint, duplicates are dropped, and malformed messages are counted and kept in
``quarantine``. Runs on the producer's asyncio event loop.

Example::

    connector = BinanceConnector(settings={"symbols": ["BTCUSDT", "ETHUSDT"]})
    async for event in connector.connect():
        publisher.put(event)          # until another task awaits connector.shutdown()
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp

from coattail_connector_binance.backfill import BackfillError, TradeBackfill
from coattail_connector_binance.connection import (
    ConnectionEnded,
    Frame,
    QueueItem,
    Reconnected,
    StreamConnection,
)
from coattail_connector_binance.normalize import message_kind, normalize_message
from coattail_connector_binance.quarantine import Quarantine
from coattail_connector_binance.ratelimit import SlidingWindowLimiter
from coattail_connector_binance.sequencing import TradeSequence
from coattail_connector_binance.settings import BinanceSettings
from coattail_connector_binance.simulator import BinanceSimulator
from coattail_connector_binance.streams import plan_connections, stream_names, symbol_of_stream
from coattail_framework.connector import BaseConnector, ConnectorStats
from coattail_framework.errors import ConfigError
from coattail_framework.events import TradeEvent

LOG = logging.getLogger(__name__)

_YIELD_EVERY = 256
"""Queue items handled between two explicit yields to the event loop (keeps pings answered)."""


@dataclass(frozen=True)
class UnrecoveredGap:
    """Trade ids that neither the websocket nor the REST backfill delivered."""

    symbol: str
    first_missing: int
    last_missing: int
    missing: int
    reason: str


class BinanceConnector(BaseConnector):
    """Binance trade streams for many symbols, split over connections of at most 1024 streams."""

    default_exchange = "binance"
    simulator_class = BinanceSimulator

    def __init__(self, settings: Mapping[str, Any] | None = None, *, rng: random.Random | None = None) -> None:
        self.settings = BinanceSettings.from_mapping(settings)
        self.stats = ConnectorStats()
        self.quarantine = Quarantine(
            keep=self.settings.malformed_keep,
            path=self.settings.malformed_path,
            log_interval_s=self.settings.malformed_log_interval_s,
            source=self.settings.exchange,
        )
        self.unrecovered_gaps: deque[UnrecoveredGap] = deque(maxlen=1000)
        self._rng = rng or random.Random()
        self._attempts = SlidingWindowLimiter(
            limit=self.settings.max_connection_attempts, window=self.settings.connection_attempt_window_s
        )
        self._sequence = TradeSequence()
        self._queue: asyncio.Queue[QueueItem] | None = None
        self._tasks: dict[StreamConnection, asyncio.Task[None]] = {}
        self._stopping = False

    @property
    def connections(self) -> list[StreamConnection]:
        """The open (or reconnecting) connections."""
        return list(self._tasks)

    def normalize(self, raw: Mapping[str, Any], received_at: datetime | None = None) -> list[TradeEvent]:
        """Pure: see ``normalize.normalize_message``; ``exchange`` comes from the settings.

        ``ingestion_timestamp`` is ``received_at`` when given (the connector passes the local
        receive time), else the message's event time ``E``, so the result is deterministic.
        """
        return normalize_message(raw, exchange=self.settings.exchange, received_at=received_at)

    def health_check(self) -> bool:
        """True while every connection is open and heard from within ``stale_after_s``."""
        return bool(self._tasks) and all(connection.healthy() for connection in self._tasks)

    async def shutdown(self) -> None:
        """Close every connection (close frame); ``connect()`` then yields what it read and ends."""
        self._stopping = True
        await asyncio.gather(*(connection.stop() for connection in list(self._tasks)))

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Add symbols while ``connect()`` runs: SUBSCRIBE on connections with room, new ones beyond."""
        pending = [name for name in stream_names(symbols, self.settings.stream) if not self._subscribed(name)]
        for connection in self.connections:
            room = self.settings.max_streams_per_connection - len(connection.streams)
            taken, pending = pending[: max(room, 0)], pending[max(room, 0) :]
            if taken:
                connection.streams.extend(taken)
                await connection.send_control("SUBSCRIBE", taken)
        for group in plan_connections(pending, self.settings.max_streams_per_connection):
            self._start_connection(group)

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        """Drop symbols while ``connect()`` runs (UNSUBSCRIBE; a connection left empty is closed)."""
        names = set(stream_names(symbols, self.settings.stream))
        for connection in self.connections:
            dropped = [name for name in connection.streams if name in names]
            if not dropped:
                continue
            connection.streams[:] = [name for name in connection.streams if name not in names]
            if connection.streams:
                await connection.send_control("UNSUBSCRIBE", dropped)
            else:
                await connection.stop()
        for name in names:
            self._sequence.forget(symbol_of_stream(name))

    def _subscribed(self, name: str) -> bool:
        return any(name in connection.streams for connection in self._tasks)

    def _start_connection(self, streams: Sequence[str]) -> None:
        if self._queue is None:
            raise RuntimeError("subscribe() needs a running connect(); start iterating connect() first")
        connection = StreamConnection(
            self.settings, streams, self._queue, attempts=self._attempts, stats=self.stats, rng=self._rng
        )
        name = f"{self.settings.exchange} {streams[0]} (+{len(streams) - 1} streams)"
        self._tasks[connection] = asyncio.create_task(connection.run(), name=name)

    async def connect(self) -> AsyncIterator[TradeEvent]:
        """Yield trades, per symbol in trade-id order without gaps or duplicates, until ``shutdown()``."""
        if not self.settings.symbols:
            raise ConfigError(
                f"exchanges.{self.settings.exchange}.settings.symbols is empty: map at least one symbol "
                f"to {self.settings.exchange} in the symbols section of config/features.yaml"
            )
        self._queue = asyncio.Queue(maxsize=self.settings.max_buffered_messages)
        if not self._stopping:
            streams = stream_names(self.settings.symbols, self.settings.stream)
            for group in plan_connections(streams, self.settings.max_streams_per_connection):
                self._start_connection(group)
        handled = 0
        async with aiohttp.ClientSession() as session:
            backfill = TradeBackfill(session, self.settings)
            try:
                while self._tasks:
                    item = await self._queue.get()
                    if isinstance(item, ConnectionEnded):
                        self._tasks.pop(item.connection, None)
                        continue
                    if isinstance(item, Reconnected):
                        events = await self._catch_up(backfill, item.streams)
                    else:
                        events = await self._handle(backfill, item)
                    for event in events:
                        yield event
                    handled += 1
                    if handled % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
            finally:
                self._stopping = True
                tasks = list(self._tasks.values())
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._tasks.clear()

    async def _handle(self, backfill: TradeBackfill, frame: Frame) -> list[TradeEvent]:
        self.stats.messages += 1
        try:
            raw = json.loads(frame.text)
        except ValueError as error:
            self._keep(f"invalid JSON: {error}", frame.text, frame.received_at)
            return []
        kind = message_kind(raw)
        if kind in ("market_data", "ack"):
            return []
        if kind == "unknown":
            self._keep("unknown message: not a Binance stream event or request reply", frame.text, frame.received_at)
            return []
        if kind == "error":
            self._keep("error reply to a SUBSCRIBE/UNSUBSCRIBE request", frame.text, frame.received_at)
            return []
        try:
            (event,) = self.normalize(raw, received_at=frame.received_at)
        except ValueError as error:
            self._keep(str(error), frame.text, frame.received_at)
            return []
        assert event.trade_id is not None
        trade_id = int(event.trade_id)
        verdict = self._sequence.check(event.symbol, trade_id)
        if verdict.kind == "duplicate":
            self.stats.duplicates_dropped += 1
            return []
        events: list[TradeEvent] = []
        if verdict.kind == "gap":
            assert verdict.first_missing is not None
            assert verdict.last_missing is not None
            self.stats.gaps += 1
            LOG.warning(
                "%s %s: trade ids %d..%d missing on the websocket; backfilling over REST",
                self.settings.exchange,
                event.symbol,
                verdict.first_missing,
                verdict.last_missing,
            )
            events = await self._fill(backfill, event.symbol, verdict.first_missing, verdict.last_missing)
        self._sequence.advance(event.symbol, trade_id)
        self.stats.trades += 1
        events.append(event)
        return events

    async def _catch_up(self, backfill: TradeBackfill, streams: Sequence[str]) -> list[TradeEvent]:
        """After a reconnect: fetch every trade since the last emitted id of each symbol."""
        events: list[TradeEvent] = []
        for name in streams:
            symbol = symbol_of_stream(name)
            last = self._sequence.last(symbol)
            if last is None:
                continue
            filled = await self._fill(backfill, symbol, last + 1, None)
            if filled:
                self.stats.gaps += 1
                exchange = self.settings.exchange
                LOG.info("%s %s: backfilled %d trades missed while reconnecting", exchange, symbol, len(filled))
            events.extend(filled)
        return events

    async def _fill(self, backfill: TradeBackfill, symbol: str, first: int, last: int | None) -> list[TradeEvent]:
        """Trades ``first..last`` (None: up to the latest) from REST, each emitted at most once."""
        reason = ""
        try:
            payloads = await backfill.fetch(symbol, first, last)
        except BackfillError as error:
            LOG.error("%s %s: backfill of ids from %d failed: %s", self.settings.exchange, symbol, first, error)
            payloads, reason = [], str(error)
        received_at = datetime.now(timezone.utc)
        events: list[TradeEvent] = []
        for payload in payloads:
            try:
                (event,) = self.normalize(payload, received_at=received_at)
            except ValueError as error:
                self._keep(f"REST backfill record: {error}", json.dumps(payload), received_at)
                continue
            assert event.trade_id is not None
            trade_id = int(event.trade_id)
            if self._sequence.check(symbol, trade_id).kind == "duplicate":
                continue
            self._sequence.advance(symbol, trade_id)
            events.append(event)
        self.stats.backfilled += len(events)
        self.stats.trades += len(events)
        if last is not None and (missing := last - first + 1 - len(events)) > 0:
            gap = UnrecoveredGap(symbol, first, last, missing, reason or "the REST endpoint returned fewer trades")
            self.unrecovered_gaps.append(gap)
            LOG.error("%s: %d trades lost: %s", self.settings.exchange, missing, gap)
        return events

    def _keep(self, reason: str, raw: str, received_at: datetime) -> None:
        self.stats.malformed += 1
        self.quarantine.keep(reason, raw, received_at)
