"""The contract of a local exchange simulator: the exchange's wire protocol on 127.0.0.1.

A connector package may ship one (``BaseConnector.simulator_class``). Tests, the
producer's replay mode and benchmarks start it and point the unchanged connector at it
through ``connector_settings()``. It serves recorded messages exactly as the exchange
would (same URLs, subscription handshake, framing, pings) and the exchange's public REST
trades endpoint for gap backfill, and can inject faults. Like the real exchange, it does
not resend on the websocket what a client missed while disconnected.

Runs on the caller's asyncio event loop.

The recording's clock: ``recorded_clock()`` gives the connector its receive wall clock
(the keyword ``wall_clock`` of every connector), so a replay judges trade times, stamps
``ingestion_timestamp`` and dates quarantined frames with the time the recorder received
each frame, not with today's clock. ``RecordedClock`` is the shared implementation.

Example::

    simulator = BinanceSimulator()
    simulator.load(read_recording(path))
    await simulator.start()
    connector = BinanceConnector(settings=simulator.connector_settings(), wall_clock=simulator.recorded_clock())
    ...
    await simulator.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from coattail_framework.quarantine import utc_now
from coattail_framework.recordings import RecordedMessage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BULK_GAP_NS = 3600 * 1_000_000_000
"""Exchange times further than this (one hour) from the rest of a recording's are not its bulk."""


def utc_from_ns(ns: int) -> datetime:
    """``ns`` nanoseconds since the epoch as an aware UTC datetime (cut to the microsecond)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def ns_from_utc(moment: datetime) -> int:
    """An aware datetime as nanoseconds since the epoch (exact to the microsecond); ``utc_from_ns``'s inverse."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def recording_bulk(times_ns: Sequence[int], gap_ns: int = BULK_GAP_NS) -> tuple[int, int] | None:
    """First and last of ``times_ns`` around their median with no gap over ``gap_ns``; None if empty.

    A frame dated years away (hostile, or a recorder glitch) does not stretch the span.

    >>> recording_bulk([10, 20, 30, 10**18])
    (10, 30)
    """
    ordered = sorted(times_ns)
    if not ordered:
        return None
    low = high = len(ordered) // 2
    while low > 0 and ordered[low] - ordered[low - 1] <= gap_ns:
        low -= 1
    while high < len(ordered) - 1 and ordered[high + 1] - ordered[high] <= gap_ns:
        high += 1
    return ordered[low], ordered[high]


class RecordedClock:
    """The recording's clock: the recorded time of the last frame a simulator sent, aware UTC.

    A simulator calls ``start_at`` with the first frame's time when frames are loaded and
    ``sent`` as it sends each frame; ``now`` (the connector's ``wall_clock``) reads it. A
    frame without a time (an injected one, a line with no receive time), or with an earlier
    one than the clock's, leaves the clock where it was: it never runs backwards. Before
    anything is loaded it is the real clock (``fallback``), so a simulator with no
    recording behaves like the live exchange. A retimed replay shifts the receive times
    with the trade times, and so this clock.

    Served as fast as possible, a simulator would run ahead of its clients by all that the
    socket buffers hold, and the clock with it; the bundled simulators therefore send the
    next frame only once each client answered a ping sent after the last one, so a
    connector stamps each frame with that frame's recorded receive time. Runs on the
    simulator's event loop, which the connector shares.

    >>> clock = RecordedClock()
    >>> clock.start_at(1_723_161_255_000_000_000)
    >>> clock.now().isoformat()
    '2024-08-08T23:54:15+00:00'
    >>> clock.sent(1_723_161_256_500_000_000); clock.sent(None); clock.sent(1); clock.now().isoformat()
    '2024-08-08T23:54:16.500000+00:00'
    """

    def __init__(self, fallback: Callable[[], datetime] = utc_now) -> None:
        self._fallback = fallback
        self._start_ns: int | None = None
        self._sent_ns: int | None = None

    def start_at(self, at_ns: int | None) -> None:
        """The time before the first frame is sent (the first loaded frame's), ns since the epoch."""
        self._start_ns = at_ns

    def sent(self, at_ns: int | None) -> None:
        """A frame recorded at ``at_ns`` (ns since the epoch; None: unknown) was sent."""
        if at_ns is not None and (self._sent_ns is None or at_ns > self._sent_ns):
            self._sent_ns = at_ns

    def now(self) -> datetime:
        """The recorded time now (aware UTC)."""
        at = self._sent_ns if self._sent_ns is not None else self._start_ns
        return self._fallback() if at is None else utc_from_ns(at)


class ReadSync:
    """One client's clock-sync state in a simulator: the sync ping awaiting its pong (see ``RecordedClock``).

    The simulator calls ``sync_clients`` after each frame it sent; its websocket handler calls
    ``answered`` with each pong (True: it was the sync pong, not counted as the client's own)
    and ``release`` when the client leaves. Runs on the simulator's event loop.
    """

    def __init__(self) -> None:
        self.payload: bytes | None = None
        """The payload of the sync ping awaiting its pong (None: none pending)."""
        self._read = asyncio.Event()

    def begin(self, payload: bytes) -> bool:
        """Start a sync with ``payload``; False while the previous one is unanswered (not waited for again)."""
        if self.payload is not None:
            return False
        self._read.clear()
        self.payload = payload
        return True

    async def caught_up(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` for the pong (or the client's exit); whether it came."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._read.wait(), timeout=max(0.0, timeout_s))
        return self._read.is_set()

    def answered(self, data: bytes) -> bool:
        """Whether ``data`` (a pong's payload) answers the pending sync ping; if so, the client caught up."""
        if self.payload is None or data != self.payload:
            return False
        self.payload = None
        self._read.set()
        return True

    def release(self) -> None:
        """The client is gone: nobody waits for it any more."""
        self._read.set()


async def sync_clients(
    clients: Iterable[tuple[ReadSync, Callable[[bytes], Awaitable[None]]]], payload: bytes, timeout_s: float
) -> None:
    """Ping each client (its ``ReadSync`` and ``ping`` coroutine) and wait, at most ``timeout_s`` in all, for the pongs.

    A client still behind on an earlier sync (no pong yet) is neither pinged nor waited for
    again until it has answered, so one slow reader cannot stall the feed.
    """
    waiting: list[ReadSync] = []
    for sync, ping in clients:
        if not sync.begin(payload):
            continue
        try:
            await ping(payload)
        except (ConnectionError, RuntimeError):
            continue
        waiting.append(sync)
    deadline = time.monotonic() + timeout_s
    for sync in waiting:
        await sync.caught_up(deadline - time.monotonic())


class ExchangeSimulator(ABC):
    """A local server for one exchange. Binds 127.0.0.1 on a free port unless told otherwise."""

    @abstractmethod
    def load(self, messages: Iterable[RecordedMessage]) -> None:
        """Queue recorded frames to serve, in order (trade messages are also served over REST)."""

    @abstractmethod
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start listening; returns once clients can connect."""

    @abstractmethod
    def connector_settings(self) -> dict[str, Any]:
        """Settings that point this exchange's connector at the simulator (URLs, symbols)."""

    def recorded_clock(self) -> Callable[[], datetime]:
        """The recording's clock for the connector's ``wall_clock`` keyword (aware UTC).

        It reads the recorded receive time of the last frame sent (before the first: the
        first frame's), see ``RecordedClock``. This default is the real clock, for a
        simulator that does not follow its recording's time.
        """
        return utc_now

    @abstractmethod
    async def wait_drained(self, timeout: float) -> bool:
        """Wait until every loaded frame has been sent to a subscribed client; False on timeout."""

    @abstractmethod
    async def stop(self) -> None:
        """Close every connection and stop listening."""
