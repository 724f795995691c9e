"""Sliding-window rate limiter: at most ``limit`` events in any ``window`` seconds.

Keeps the connector under Binance's limits: 300 connection attempts per 5 minutes per IP
and 5 incoming messages per second per connection. Runs on the producer's event loop; the
clock is injectable so the policy can be tested without waiting.

Example::

    >>> limiter = SlidingWindowLimiter(limit=2, window=1.0, clock=lambda: 10.0)
    >>> limiter.record(); limiter.record(); limiter.delay_needed()
    1.0
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """Counts events in the trailing ``window`` seconds; ``acquire()`` waits for room."""

    def __init__(self, *, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"a rate limit needs limit >= 1 and window > 0, got limit={limit}, window={window}")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._events and self._events[0] <= now - self.window:
            self._events.popleft()

    def delay_needed(self) -> float:
        """Seconds until one more event fits in the window (0 when it fits now)."""
        now = self._clock()
        self._expire(now)
        if len(self._events) < self.limit:
            return 0.0
        return self._events[0] + self.window - now

    def record(self) -> None:
        """Count one event now (the caller checked ``delay_needed()``)."""
        self._events.append(self._clock())

    async def acquire(self) -> float:
        """Wait until an event is allowed, count it, and return the seconds waited."""
        waited = 0.0
        while (delay := self.delay_needed()) > 0:
            await asyncio.sleep(delay)
            waited += delay
        self.record()
        return waited
