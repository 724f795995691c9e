"""The Binance connector plugin (entry point ``binance`` in ``coattail.connectors``).

Streams ``<symbol>@trade`` (or ``@aggTrade``) for the configured symbols from Binance spot or
USD-M futures, normalizes each trade to a ``TradeEvent`` and yields them in trade-id order
per symbol: gaps (after a reconnect, or a jump in ids) are filled from the public REST
endpoint, duplicates are dropped, an implausible id is held until the stream confirms it
(``sequencing``), futures trades other than ``X: MARKET`` are skipped and counted. Every
frame that cannot be used, for whatever reason or exception, is counted per reason and kept
in ``quarantine`` (``coattail_framework.quarantine``); the connection goes on. Runs on the
producer's asyncio event loop.

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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from coattail_connector_binance.backfill import TradeBackfill
from coattail_connector_binance.connection import (
    ConnectionEnded,
    Frame,
    QueueItem,
    Reconnected,
    StreamConnection,
)
from coattail_connector_binance.history import BinanceTradeHistory
from coattail_connector_binance.normalize import (
    InvalidTradeError,
    check_trade_time,
    is_market_trade,
    message_kind,
    normalize_message,
    trade_event,
    unwrap,
)
from coattail_connector_binance.ratelimit import SlidingWindowLimiter
from coattail_connector_binance.sequencing import TradeSequence, Verdict
from coattail_connector_binance.settings import BinanceSettings
from coattail_connector_binance.simulator import BinanceSimulator
from coattail_connector_binance.streams import plan_connections, stream_names, symbol_of_stream
from coattail_framework.connector import BaseConnector, ConnectorStats
from coattail_framework.errors import ConfigError
from coattail_framework.events import TradeEvent
from coattail_framework.quarantine import Quarantine, utc_now

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


@dataclass
class BinanceStats(ConnectorStats):
    """``ConnectorStats`` plus what only Binance counts (``malformed`` per reason: ``quarantine.counts``)."""

    non_market_trades: int = 0
    """Futures trades with ``X`` other than ``MARKET`` (insurance fund, ADL), skipped."""
    suspect_ids: int = 0
    """Trades held because their id jumped implausibly far (see ``sequencing``)."""
    resyncs: int = 0
    """Times a symbol restarted at new ids after they kept jumping."""
    backfill_failures: int = 0
    """Backfills that failed after their retries (the gap is kept in ``unrecovered_gaps``)."""


class BinanceConnector(BaseConnector):
    """Binance trade streams for many symbols, split over connections of at most 1024 streams."""

    default_exchange = "binance"
    simulator_class = BinanceSimulator
    stats: BinanceStats
    quarantine: Quarantine

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        rng: random.Random | None = None,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``wall_clock`` (aware UTC) gives receive times: ``ingestion_timestamp``, the trade-time
        window's reference, resync timing and quarantine times. A replay passes the simulator's
        ``recorded_clock()``. Staleness and backoff run on ``time.monotonic``."""
        self.settings = BinanceSettings.from_mapping(settings)
        self.stats = BinanceStats()
        self._wall_clock = wall_clock
        self.quarantine = Quarantine(
            max_frames=self.settings.malformed_keep,
            max_bytes=self.settings.malformed_max_bytes,
            max_frame_bytes=self.settings.malformed_max_frame_bytes,
            clock=wall_clock,
            source=self.settings.exchange,
            path=self.settings.malformed_path,
            log_interval_s=self.settings.malformed_log_interval_s,
        )
        self._ahead = timedelta(seconds=self.settings.max_trade_time_ahead_s)
        self._behind = timedelta(seconds=self.settings.max_trade_time_behind_s)
        self.unrecovered_gaps: deque[UnrecoveredGap] = deque(maxlen=1000)
        self._rng = rng or random.Random()
        self._attempts = SlidingWindowLimiter(
            limit=self.settings.max_connection_attempts, window=self.settings.connection_attempt_window_s
        )
        self._sequence = TradeSequence(
            max_jump=self.settings.max_trade_id_jump,
            resync_after_frames=self.settings.resync_after_frames,
            resync_after_s=self.settings.resync_after_s,
        )
        self._symbols = set(self.settings.symbols)
        """Symbols subscribed now: a trade of any other is quarantined (``symbol``)."""
        self._queue: asyncio.Queue[QueueItem] | None = None
        self._tasks: dict[StreamConnection, asyncio.Task[None]] = {}
        self._run: object | None = None
        """Identifies the current ``connect()``: an abandoned earlier one must not stop its connections."""

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
        """True while every connection task runs, is open and was heard from within ``stale_after_s``."""
        tasks = list(self._tasks.items())
        return bool(tasks) and all(not task.done() and connection.healthy() for connection, task in tasks)

    async def shutdown(self) -> None:
        """Close every connection (close frame); ``connect()`` then yields what it read and ends."""
        await asyncio.gather(*(connection.stop() for connection in list(self._tasks)))

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Add symbols while ``connect()`` runs: SUBSCRIBE on connections with room, new ones beyond."""
        names = stream_names(symbols, self.settings.stream)
        self._symbols.update(symbol_of_stream(name) for name in names)
        pending = [name for name in names if not self._subscribed(name)]
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
            self._symbols.discard(symbol_of_stream(name))

    def _subscribed(self, name: str) -> bool:
        return any(name in connection.streams for connection in self._tasks)

    def _start_connection(self, streams: Sequence[str], *, resume: bool = False) -> None:
        if self._queue is None:
            raise RuntimeError("subscribe() needs a running connect(); start iterating connect() first")
        connection = StreamConnection(
            self.settings,
            streams,
            self._queue,
            attempts=self._attempts,
            stats=self.stats,
            rng=self._rng,
            wall_clock=self._wall_clock,
            resume=resume,
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
        if self._tasks:  # left by a previous connect() whose iterator was abandoned, not closed
            await self._stop_tasks()
        run = object()
        self._run = run
        self._queue = asyncio.Queue(maxsize=self.settings.max_buffered_messages)
        streams = stream_names(self.settings.symbols, self.settings.stream)
        for group in plan_connections(streams, self.settings.max_streams_per_connection):
            resume = any(self._sequence.last(symbol_of_stream(name)) is not None for name in group)
            self._start_connection(group, resume=resume)
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
                        events = await self.handle_frame(backfill, item)
                    for event in events:
                        yield event
                    handled += 1
                    if handled % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
            finally:
                if self._run is run:
                    await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        """Cancel every connection task and wait for them, draining the queue so none blocks on it."""
        queue = self._queue
        tasks = list(self._tasks.values())
        for connection in self._tasks:
            connection.request_stop()
        while tasks and not all(task.done() for task in tasks):
            for task in tasks:
                task.cancel()
            while queue is not None and not queue.empty():
                queue.get_nowait()
            await asyncio.wait(tasks, timeout=0.05)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def handle_frame(self, backfill: TradeBackfill, frame: Frame) -> list[TradeEvent]:
        """The trades one frame gives (with backfilled ones before it); never raises.

        Whatever goes wrong with one frame (invalid JSON, an invalid field, an exception of
        any kind) is counted and quarantined with its reason, and the next frame is handled.
        """
        self.stats.messages += 1
        try:
            return await self._handle(backfill, frame)
        except InvalidTradeError as error:
            self._keep(error.reason, frame.text, str(error))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the frame boundary: no frame may stop the connector
            self._keep(f"handler_error:{type(error).__name__}", frame.text, str(error))
        return []

    async def _handle(self, backfill: TradeBackfill, frame: Frame) -> list[TradeEvent]:
        try:
            raw = json.loads(frame.text)
        except (ValueError, RecursionError) as error:  # RecursionError: nested deeper than the decoder goes
            self._keep("json", frame.text, f"{type(error).__name__}: {error}")
            return []
        kind = message_kind(raw)
        if kind in ("market_data", "ack"):
            return []
        if kind == "unknown":
            self._keep("unknown_message", frame.text, "not a Binance stream event or request reply")
            return []
        if kind == "error":
            self._keep("error_reply", frame.text, "error reply to a SUBSCRIBE/UNSUBSCRIBE request")
            return []
        payload = unwrap(raw)
        event = trade_event(payload, exchange=self.settings.exchange, received_at=frame.received_at)
        if event.symbol not in self._symbols:
            self._keep("symbol", frame.text, f"{event.symbol} is not a subscribed symbol")
            return []
        market = is_market_trade(payload)
        check_trade_time(event, frame.received_at, ahead=self._ahead, behind=self._behind)
        assert event.trade_id is not None
        trade_id = int(event.trade_id)
        verdict = self._sequence.check(event.symbol, trade_id)
        if verdict.kind == "jump":
            verdict = self._sequence.hold(event.symbol, trade_id, frame.received_at)
            if verdict.kind == "suspect":
                self.stats.suspect_ids += 1
                self._keep("trade_id_jump", frame.text, f"{event.symbol}: id {trade_id} far from the last emitted one")
                return []
            verdict = self._resync(event.symbol, trade_id, verdict.first_missing)
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
        if not market:
            self.stats.non_market_trades += 1
            return events
        self.stats.trades += 1
        events.append(event)
        return events

    def _resync(self, symbol: str, trade_id: int, first_held: int | None) -> Verdict:
        """Restart ``symbol`` at ``trade_id`` after its ids kept jumping; the held range is then a gap."""
        last = self._sequence.last(symbol)
        start = first_held if first_held is not None else trade_id
        self.stats.resyncs += 1
        LOG.warning(
            "%s %s: trade ids kept jumping from %s to about %d; resyncing there (ids %s..%d given up)",
            self.settings.exchange,
            symbol,
            last,
            trade_id,
            None if last is None else last + 1,
            start - 1,
        )
        if last is not None and start - 1 > last:
            lost = start - 1 - last
            self.unrecovered_gaps.append(UnrecoveredGap(symbol, last + 1, start - 1, lost, "trade ids jumped"))
        self._sequence.restart(symbol, start - 1)
        return self._sequence.check(symbol, trade_id)

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
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - a failed backfill is reported, never fatal
            self.stats.backfill_failures += 1
            LOG.error("%s %s: backfill of ids from %d failed: %s", self.settings.exchange, symbol, first, error)
            payloads, reason = [], f"{type(error).__name__}: {error}"
        received_at = self._wall_clock()
        events: list[TradeEvent] = []
        for payload in payloads:
            try:
                event = trade_event(payload, exchange=self.settings.exchange, received_at=received_at)
                market = is_market_trade(payload)
                check_trade_time(event, received_at, ahead=self._ahead, behind=self._behind)
            except InvalidTradeError as error:
                self._keep(f"rest_{error.reason}", json.dumps(payload, default=str), str(error))
                continue
            assert event.trade_id is not None
            trade_id = int(event.trade_id)
            if event.symbol != symbol or self._sequence.check(symbol, trade_id).kind in ("duplicate", "jump"):
                continue
            self._sequence.advance(symbol, trade_id)
            if market:
                events.append(event)
            else:
                self.stats.non_market_trades += 1
        self.stats.backfilled += len(events)
        self.stats.trades += len(events)
        if last is not None and (missing := last - first + 1 - len(events)) > 0:
            gap = UnrecoveredGap(symbol, first, last, missing, reason or "the REST endpoint returned fewer trades")
            self.unrecovered_gaps.append(gap)
            LOG.error("%s: %d trades lost: %s", self.settings.exchange, missing, gap)
        return events

    def _keep(self, reason: str, raw: str, detail: str) -> None:
        self.stats.malformed += 1
        self.quarantine.add(raw, reason, detail=detail)

    def trade_history(self) -> BinanceTradeHistory:
        """Past aggregate trades over REST from these settings (``rest_url``, weight limit, retries).

        For batch loads on the caller's event loop; see ``history.BinanceTradeHistory``.
        """
        return BinanceTradeHistory(self.settings)
