"""The Coinbase Exchange connector: ``matches`` + ``heartbeat`` feed to ``TradeEvent``\\ s.

Runs in the producer process on its asyncio event loop. Connects to the websocket feed,
subscribes right after every (re)connect, normalizes ``match``/``last_match`` messages,
drops stale and duplicate trades, backfills missed trades over the public REST endpoint,
recycles a silent connection and reconnects with the framework's ``Backoff`` until ``shutdown()``.

``handle_frame`` is the frame boundary: whatever one frame holds (bad JSON, 10,000 nested
arrays, a time past year 9999, a lone surrogate) it returns that frame's trades or puts the
frame in ``quarantine`` (the framework's ``Quarantine``, bounded in frames and bytes,
counted by reason) and returns none; only cancellation passes through. Trade times must
lie within ``max_trade_time_behind_s``..``max_trade_time_ahead_s`` of the receive time.

Example::

    connector = CoinbaseConnector(settings={"symbols": ["BTC-USD", "ETH-USD"]})
    async for event in connector.connect():
        publisher.put(event)
    # elsewhere, on the same loop: await connector.shutdown()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import aiohttp
import websockets
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection

from coattail_connector_coinbase.history import CoinbaseTradeHistory
from coattail_connector_coinbase.normalize import (
    NON_TRADE_TYPES,
    TRADE_TYPES,
    InvalidTradeError,
    check_trade_time,
    normalize_match,
    normalize_rest_trade,
)
from coattail_connector_coinbase.rest import BackfillError, TradesClient
from coattail_connector_coinbase.settings import CoinbaseSettings
from coattail_connector_coinbase.simulator import CoinbaseSimulator
from coattail_connector_coinbase.tracking import Gap, TradeTracker
from coattail_framework.connector import BaseConnector, ConnectorStats
from coattail_framework.errors import ConfigError
from coattail_framework.events import TradeEvent
from coattail_framework.quarantine import Quarantine, utc_now
from coattail_framework.resilience import Backoff

LOG = logging.getLogger(__name__)


@dataclass
class CoinbaseStats(ConnectorStats):
    """The framework's counters plus Coinbase-specific ones."""

    stale_dropped: int = 0
    """Messages older (by ``sequence``) than the last one seen for their product."""
    stale_recycles: int = 0
    """Connections closed because no message arrived within ``stale_after``."""
    unrecovered: int = 0
    """Missed trades that the REST backfill could not deliver (logged with their ids); at most
    ``max_backfill_trades`` per gap, so one absurd trade id cannot inflate it."""
    exchange_errors: int = 0
    """``error`` messages sent by the exchange (kept for inspection)."""
    handler_errors: int = 0
    """Frames whose handling raised an unexpected exception (quarantined as ``handler_error:<type>``)."""
    resyncs: int = 0
    """Products whose highest sequence or trade id was reset after disagreeing frames (logged)."""


class CoinbaseConnector(BaseConnector):
    """Trades of the configured Coinbase products, normalized, gap-free where REST allows."""

    default_exchange: ClassVar[str] = "coinbase"
    simulator_class = CoinbaseSimulator
    quarantine: Quarantine

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``clock`` (monotonic seconds) times staleness and resyncs; ``wall_clock`` (aware UTC) gives receive
        times: ``ingestion_timestamp``, the trade time window's reference and quarantine times. A replay
        passes the simulator's ``recorded_clock()``."""
        try:
            self.settings = CoinbaseSettings.model_validate(dict(settings or {}))
        except ValidationError as error:
            raise ConfigError.from_validation(error, prefix=("exchanges", "coinbase", "settings")) from None
        config = self.settings
        self.stats: CoinbaseStats = CoinbaseStats()
        self.quarantine = Quarantine(
            max_frames=config.rejected_buffer,
            max_bytes=config.rejected_max_bytes,
            max_frame_bytes=config.rejected_max_frame_bytes,
            clock=wall_clock,
            source=f"{config.exchange} connector",
            path=config.rejected_path,
            log_interval_s=config.log_interval,
        )
        """Frames this connector rejected, counted per reason (``quarantine.counts``)."""
        self._tracker = TradeTracker(
            config.dedupe_window, resync_frames=config.resync_after_frames, resync_seconds=config.resync_after_s
        )
        self._backoff = Backoff(
            initial=config.backoff.initial,
            cap=config.backoff.maximum,
            multiplier=config.backoff.multiplier,
            jitter=config.backoff.jitter,
            rng=rng,
        )
        self._products = frozenset(config.symbols)
        self._ahead = timedelta(seconds=config.max_trade_time_ahead_s)
        self._behind = timedelta(seconds=config.max_trade_time_behind_s)
        self._clock = clock
        self._wall_clock = wall_clock
        self._stopping = asyncio.Event()
        self._websocket: ClientConnection | None = None
        self._last_message: float | None = None
        """Monotonic time of the last frame read (None: none yet, so not healthy)."""
        self._connection_started = clock()

    def normalize(self, raw: Mapping[str, Any], ingestion_timestamp: datetime | None = None) -> list[TradeEvent]:
        """The trade in one decoded message; ``[]`` for non-trade messages.

        Pure: ``ingestion_timestamp`` defaults to the trade's own time (``connect()`` passes
        the receive time). Raises ``ValueError`` naming the field for an invalid trade.
        """
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in TRADE_TYPES:
            return []
        return [normalize_match(raw, exchange=self.settings.exchange, ingestion_timestamp=ingestion_timestamp)]

    def health_check(self) -> bool:
        """True once a frame was read, and the last one within ``stale_after`` seconds.

        False before ``connect()`` read anything; a connection task that died (or hangs) reads
        nothing more, so it turns False within ``stale_after``.
        """
        return self._last_message is not None and self._clock() - self._last_message < self.settings.stale_after

    async def shutdown(self) -> None:
        """Send a close frame and stop reconnecting; ``connect()`` yields what it read, then ends."""
        self._stopping.set()
        websocket = self._websocket
        if websocket is not None:
            await websocket.close()

    async def connect(self) -> AsyncIterator[TradeEvent]:
        """Connect, subscribe and yield trades until ``shutdown()``; reconnects by itself."""
        if not self.settings.symbols:
            raise ConfigError(
                "exchanges.coinbase.settings.symbols is empty: list Coinbase product ids (e.g. BTC-USD) "
                "in the symbol catalogue under the venue's id"
            )
        timeout = aiohttp.ClientTimeout(total=self.settings.rest_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            rest = TradesClient(
                session,
                self.settings.rest_url,
                page_size=self.settings.rest_page_size,
                retries=self.settings.rest_retries,
            )
            while not self._stopping.is_set():
                subscribed_for: float | None = None
                self._connection_started = self._clock()
                try:
                    async with websockets.connect(
                        self.settings.url,
                        open_timeout=self.settings.open_timeout,
                        close_timeout=self.settings.close_timeout,
                        max_size=2**24,
                    ) as websocket:
                        self._websocket = websocket
                        if self._stopping.is_set():  # shutdown() arrived during the handshake
                            await websocket.close()
                        await websocket.send(json.dumps(self.settings.subscribe_message()))
                        subscribed_at = self._clock()
                        LOG.info(
                            "coinbase: connected to %s, subscribed to %s", self.settings.url, self.settings.symbols
                        )
                        async for event in self._read(websocket, rest):
                            yield event
                        subscribed_for = self._clock() - subscribed_at
                except (TimeoutError, OSError, websockets.WebSocketException) as error:
                    LOG.warning(
                        "coinbase: connection to %s failed: %s: %s", self.settings.url, type(error).__name__, error
                    )
                finally:
                    self._websocket = None
                if self._stopping.is_set():
                    break
                self.stats.reconnects += 1
                reset_if_healthy(self._backoff, subscribed_for, self.settings.backoff.healthy_after)
                delay = self._backoff.next_delay()
                LOG.info("coinbase: reconnecting in %.2f s (attempt %d)", delay, self._backoff.attempt)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _read(self, websocket: ClientConnection, rest: TradesClient) -> AsyncIterator[TradeEvent]:
        """Frames of one connection until it closes, goes stale, or the connector stops.

        Each frame is stamped with ``wall_clock`` as ``recv`` returns it. ``recv`` runs in this
        task, so frames the websocket already read are taken one after another without yielding
        to the event loop; behind a ``wait_for`` each took a new task and several loop turns, and
        a replay's recorded clock (which moves once the client's websocket answered a ping) could
        move on before a queued frame was stamped.
        """
        while True:
            last_sign_of_life = max(self._last_message or self._connection_started, self._connection_started)
            remaining = last_sign_of_life + self.settings.stale_after - self._clock()
            if remaining <= 0 and not self._stopping.is_set():
                self.stats.stale_recycles += 1
                LOG.warning("coinbase: no message for %.1f s, recycling the connection", self.settings.stale_after)
                await websocket.close()
                return
            try:
                # asyncio.timeout, not wait_for: recv runs in this task, so a frame already read is
                # handed over (and stamped) without a trip through the event loop (see the docstring).
                async with asyncio.timeout(remaining if remaining > 0 else self.settings.close_timeout):
                    frame = await websocket.recv()
            except TimeoutError:
                continue
            except websockets.ConnectionClosed as closed:
                if not self._stopping.is_set():
                    LOG.warning("coinbase: connection closed by the server: %s", closed)
                return
            self._last_message = self._clock()
            self.stats.messages += 1
            for event in await self.handle_frame(frame, self._wall_clock(), rest):
                yield event

    async def handle_frame(self, frame: str | bytes, received_at: datetime, rest: TradesClient) -> list[TradeEvent]:
        """The trades one frame yields (after any backfill it triggers), oldest first.

        The frame boundary: never raises except ``asyncio.CancelledError``. A frame that
        cannot be used, or whose handling fails in any way, is quarantined with its reason
        and counted; the connection goes on. ``received_at`` is aware UTC.
        """
        try:
            return await self._handle(frame, received_at, rest)
        except Exception as error:  # noqa: BLE001 - one frame must never stop the connection
            self.stats.handler_errors += 1
            return self._reject(f"handler_error:{type(error).__name__}", f"{error}"[:200], frame)

    async def _handle(self, frame: str | bytes, received_at: datetime, rest: TradesClient) -> list[TradeEvent]:
        if isinstance(frame, bytes):
            try:
                text = frame.decode("utf-8")
            except UnicodeDecodeError as error:
                return self._reject("encoding", f"binary frame is not UTF-8: {error}", frame)
        else:
            text = frame
        try:
            message = json.loads(text)
        except (ValueError, RecursionError) as error:
            return self._reject("json", f"not JSON (malformed, truncated or nested too deep): {error}", text)
        if not isinstance(message, dict):
            return self._reject("not_object", f"not a JSON object but {type(message).__name__}", text)
        kind = message.get("type")
        if not isinstance(kind, str):
            return self._reject("unknown_type", f"unknown message type {kind!r}", text)
        if kind == "heartbeat":
            return await self._heartbeat(message, text, rest)
        if kind == "error":
            self.stats.exchange_errors += 1
            detail = f"exchange error: {message.get('message')!r} {message.get('reason', '')!r}"
            self.quarantine.add(text, "exchange_error", detail=detail)
            return []
        if kind not in TRADE_TYPES:
            if kind in NON_TRADE_TYPES:
                return []
            return self._reject("unknown_type", f"unknown message type {kind!r}", text)
        try:
            event = normalize_match(message, exchange=self.settings.exchange, ingestion_timestamp=received_at)
            self._check_time(event, received_at)
        except InvalidTradeError as error:
            return self._reject(error.reason, f"invalid {kind}: {error}", text)
        if event.symbol not in self._products:
            return self._reject("product", f"{kind} of {event.symbol!r}, not a subscribed product", text)
        product_id, sequence, trade_id, now = event.symbol, message["sequence"], int(event.trade_id or 0), self._clock()
        stale = self._tracker.is_stale(product_id, sequence, trade_id, now)
        self._log_resyncs()
        if stale:
            self.stats.stale_dropped += 1
            LOG.info("coinbase: dropped stale %s %s sequence %d (trade %d)", kind, product_id, sequence, trade_id)
            return []
        self._tracker.observe_sequence(product_id, sequence)
        gap = self._tracker.observe_trade(product_id, trade_id, now)
        self._log_resyncs()
        events = await self._backfill(gap, rest) if gap else []
        if self._tracker.is_duplicate(product_id, trade_id):
            self.stats.duplicates_dropped += 1
            return events
        return [*events, self._emit(event)]

    def _check_time(self, event: TradeEvent, received_at: datetime) -> None:
        check_trade_time(event.timestamp, received_at, ahead=self._ahead, behind=self._behind)

    def _log_resyncs(self) -> None:
        for resync in self._tracker.resyncs:
            self.stats.resyncs += 1
            LOG.warning(
                "coinbase: %s: %s %d disagreed with %d frame(s) in a row; reset to %d",
                resync.product_id,
                resync.mark,
                resync.absurd,
                resync.frames,
                resync.value,
            )
        self._tracker.resyncs.clear()

    async def _heartbeat(self, message: dict[str, Any], text: str, rest: TradesClient) -> list[TradeEvent]:
        product_id, last_trade_id = message.get("product_id"), message.get("last_trade_id")
        if not isinstance(product_id, str) or not isinstance(last_trade_id, int) or isinstance(last_trade_id, bool):
            return self._reject("heartbeat", "heartbeat without product_id / integer last_trade_id", text)
        if product_id not in self._products:
            return self._reject("product", f"heartbeat of {product_id!r}, not a subscribed product", text)
        if last_trade_id <= 0:
            return []
        gap = self._tracker.observe_last_trade_id(product_id, last_trade_id, self._clock())
        self._log_resyncs()
        return await self._backfill(gap, rest) if gap else []

    async def _backfill(self, gap: Gap, rest: TradesClient) -> list[TradeEvent]:
        """The missed trades of ``gap`` from REST, oldest first, minus any already emitted."""
        self.stats.gaps += 1
        LOG.warning(
            "coinbase: %s missed trades %d..%d (%d), backfilling over REST",
            gap.product_id,
            gap.first,
            gap.last,
            gap.size,
        )
        try:
            result = await rest.fetch_gap(gap, self.settings.max_backfill_trades)
        except BackfillError as error:
            self.stats.unrecovered += min(gap.size, self.settings.max_backfill_trades)
            LOG.error("coinbase: %s trades %d..%d not recovered: %s", gap.product_id, gap.first, gap.last, error)
            return []
        received_at = self._wall_clock()
        for item in result.invalid:
            self._reject("rest_trade", "REST trade without an integer trade_id", _as_text(item))
        events = []
        for item in result.trades:
            try:
                event = normalize_rest_trade(
                    gap.product_id, item, exchange=self.settings.exchange, ingestion_timestamp=received_at
                )
                self._check_time(event, received_at)
            except InvalidTradeError as error:
                self._reject(f"rest_{error.reason}", f"invalid REST trade: {error}", _as_text(item))
                continue
            if self._tracker.is_duplicate(gap.product_id, int(item["trade_id"])):
                self.stats.duplicates_dropped += 1
                continue
            self.stats.backfilled += 1
            events.append(self._emit(event))
        missing = gap.size - len(result.trades)
        if missing:
            self.stats.unrecovered += min(missing, self.settings.max_backfill_trades)
            LOG.error(
                "coinbase: %s: %d of trades %d..%d not served by REST (limit max_backfill_trades=%d)",
                gap.product_id,
                missing,
                gap.first,
                gap.last,
                self.settings.max_backfill_trades,
            )
        return events

    def _emit(self, event: TradeEvent) -> TradeEvent:
        self._tracker.remember(event.symbol, int(event.trade_id or 0))
        self.stats.trades += 1
        return event

    def _reject(self, reason: str, detail: str, payload: str | bytes) -> list[TradeEvent]:
        self.stats.malformed += 1
        self.quarantine.add(payload, reason, detail=detail)
        return []

    def trade_history(self) -> CoinbaseTradeHistory:
        """Past trades over REST from these settings (``rest_url``, ``rest_page_size``, ``rest_retries``).

        For batch loads on the caller's event loop; see ``history.CoinbaseTradeHistory``.
        """
        return CoinbaseTradeHistory(self.settings)


def reset_if_healthy(backoff: Backoff, subscribed_for: float | None, healthy_after: float) -> None:
    """Start ``backoff`` over when the connection that just ended stayed subscribed ``healthy_after`` seconds.

    ``subscribed_for`` is None when the connection never got to subscribe.
    """
    if subscribed_for is not None and subscribed_for >= healthy_after:
        backoff.reset()


def _as_text(item: object) -> str:
    """A REST item as JSON text for the quarantine (whatever it holds)."""
    try:
        return json.dumps(item, default=str)
    except (ValueError, RecursionError):
        return repr(item)[:1000]
