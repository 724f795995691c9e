"""One Binance websocket connection and its reconnect loop.

A ``StreamConnection`` reads frames for a group of at most 1024 streams into the connector's
queue as soon as they arrive (so the websockets library keeps reading the socket and
answering the server's pings however slowly the producer consumes), and reconnects by
itself: ``coattail_framework.resilience.Backoff`` after a failure (reset once a connection
proved healthy), an immediate recycle before Binance's 24 h limit, a recycle when no message
arrived for ``stale_after_s``, and a shared sliding-window limit on connection attempts.
Runs as a task on the producer's event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from coattail_connector_binance.ratelimit import SlidingWindowLimiter
from coattail_connector_binance.settings import BinanceSettings
from coattail_connector_binance.streams import stream_url
from coattail_framework.connector import ConnectorStats
from coattail_framework.quarantine import utc_now
from coattail_framework.resilience import Backoff

LOG = logging.getLogger(__name__)

ReadOutcome = Literal["stopped", "aged", "stale", "dropped", "failed"]


@dataclass(frozen=True)
class Frame:
    """One text frame as received, with the local receive time (UTC)."""

    text: str
    received_at: datetime


@dataclass(frozen=True)
class Reconnected:
    """A connection is open again: trades of ``streams`` may have been missed meanwhile."""

    streams: tuple[str, ...]


@dataclass(frozen=True)
class ConnectionEnded:
    """A connection's loop has finished (after ``stop()``); nothing more comes from it."""

    connection: StreamConnection


QueueItem = Frame | Reconnected | ConnectionEnded


class StreamConnection:
    """Keeps one websocket connection for ``streams`` open until ``stop()``."""

    def __init__(
        self,
        settings: BinanceSettings,
        streams: Sequence[str],
        sink: asyncio.Queue[QueueItem],
        *,
        attempts: SlidingWindowLimiter,
        stats: ConnectorStats,
        rng: random.Random,
        wall_clock: Callable[[], datetime] = utc_now,
        resume: bool = False,
    ) -> None:
        self.settings = settings
        self.streams = list(streams)
        self._sink = sink
        self._attempts = attempts
        self._stats = stats
        self._wall_clock = wall_clock
        """Receive times of frames (aware UTC); staleness and the age limit use ``time.monotonic``."""
        self._resume = resume
        """Trades of these streams were read before (a restarted ``connect()``): catch up on the first open too."""
        self._stopping = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._control = SlidingWindowLimiter(limit=settings.max_control_messages_per_s, window=1.0)
        self._request_id = 0
        self.backoff = Backoff(
            initial=settings.backoff_initial_s,
            cap=settings.backoff_max_s,
            multiplier=settings.backoff_multiplier,
            jitter=settings.backoff_jitter,
            rng=rng,
        )
        self.recent_delays: deque[float] = deque(maxlen=100)
        """The last reconnect delays slept, in seconds (monitoring and tests)."""
        self.last_activity: float | None = None
        """``time.monotonic()`` of the last message (or of the open); None while disconnected."""

    def healthy(self) -> bool:
        """Connected, and a message arrived within ``stale_after_s``."""
        last = self.last_activity
        return last is not None and time.monotonic() - last < self.settings.stale_after_s

    async def run(self) -> None:
        """Connect, read and reconnect until ``stop()``; always ends with ``ConnectionEnded``."""
        connected_before = self._resume
        try:
            while not self._stopping.is_set():
                await self._attempts.acquire()
                if self._stopping.is_set():
                    break
                url = stream_url(self.settings.base_url, self.streams)
                try:
                    ws = await connect(
                        url,
                        open_timeout=self.settings.open_timeout_s,
                        close_timeout=self.settings.close_timeout_s,
                        ping_interval=self.settings.ping_interval_s,
                        ping_timeout=self.settings.ping_timeout_s,
                        max_queue=1024,
                        max_size=2**22,
                    )
                except (TimeoutError, OSError, InvalidHandshake, InvalidURI, ValueError) as error:
                    delay = self.backoff.next_delay()
                    LOG.warning("binance: connecting to %s failed (%s); retrying in %.2f s", url, error, delay)
                    await self._pause(delay)
                    continue
                if self._stopping.is_set():
                    await ws.close(1000, "shutdown")
                    break
                if connected_before:
                    self._stats.reconnects += 1
                    await self._sink.put(Reconnected(tuple(self.streams)))
                connected_before = True
                self._ws = ws
                try:
                    outcome = await self._read(ws)
                except Exception as error:  # whatever ends one connection, the loop reconnects
                    LOG.exception("binance: reading from %s failed (%s)", url, type(error).__name__)
                    await _close_quietly(ws)
                    outcome = "failed"
                self._ws = None
                self.last_activity = None
                if outcome == "stopped":
                    break
                if outcome != "aged":
                    delay = self.backoff.next_delay()
                    LOG.warning("binance: connection to %s ended (%s); reconnecting in %.2f s", url, outcome, delay)
                    await self._pause(delay)
        finally:
            await self._sink.put(ConnectionEnded(self))

    async def _read(self, ws: ClientConnection) -> ReadOutcome:
        opened = time.monotonic()
        self.last_activity = opened
        retire_at = opened + self.settings.max_connection_age_s
        try:
            while True:
                if self._stopping.is_set():
                    await ws.close(1000, "shutdown")
                    return "stopped"
                now = time.monotonic()
                if now >= retire_at:
                    LOG.info("binance: recycling a connection after %.0f s (age limit)", now - opened)
                    await ws.close(1000, "connection age limit")
                    return "aged"
                quiet_for = now - self.last_activity
                if quiet_for >= self.settings.stale_after_s:
                    LOG.warning("binance: no message for %.1f s; recycling the connection", quiet_for)
                    await ws.close(1000, "stale")
                    return "stale"
                wait = min(self.settings.stale_after_s - quiet_for, retire_at - now)
                try:
                    # asyncio.timeout, not wait_for: recv runs in this task, so a frame already read
                    # is handed over (and stamped) without a trip through the event loop.
                    async with asyncio.timeout(wait):
                        message = await ws.recv()
                except TimeoutError:
                    continue
                self.last_activity = time.monotonic()
                if self.backoff.attempt and self.last_activity - opened >= self.settings.healthy_after_s:
                    self.backoff.reset()
                text = message if isinstance(message, str) else message.decode("utf-8", errors="replace")
                await self._sink.put(Frame(text, self._wall_clock()))
        except ConnectionClosed as closed:
            if self._stopping.is_set():
                return "stopped"
            LOG.warning("binance: connection closed by the peer: %s", closed)
            return "dropped"

    async def _pause(self, delay: float) -> None:
        self.last_activity = None
        self.recent_delays.append(delay)
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            return

    async def send_control(self, method: Literal["SUBSCRIBE", "UNSUBSCRIBE"], streams: Sequence[str]) -> None:
        """Send one SUBSCRIBE/UNSUBSCRIBE request, at most ``max_control_messages_per_s`` per second.

        ``streams`` must already be reflected in ``self.streams`` so a reconnect uses them;
        while disconnected nothing is sent (the next connection's URL carries them).
        """
        await self._control.acquire()
        ws = self._ws
        if ws is None:
            return
        self._request_id += 1
        request = {"method": method, "params": list(streams), "id": self._request_id}
        try:
            await ws.send(json.dumps(request))
        except ConnectionClosed:
            LOG.info("binance: connection closed before %s; the reconnect URL carries the streams", method)

    def request_stop(self) -> None:
        """Ask the loop to end at its next step without waiting (``stop()`` also sends the close frame).

        On Python 3.11, ``asyncio.wait_for`` can swallow a task's cancellation when the message it
        awaits arrives at the same moment; this flag ends the loop even then.
        """
        self._stopping.set()

    async def stop(self) -> None:
        """Send a close frame (if connected) and end the loop once the close handshake is done."""
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            await ws.close(1000, "shutdown")


async def _close_quietly(ws: ClientConnection) -> None:
    """Close ``ws`` after a failure; a close that fails too changes nothing."""
    try:
        await ws.close(1011, "client error")
    except Exception as error:  # noqa: BLE001 - the connection failed already
        LOG.debug("binance: closing after a failure failed too: %s", error)
