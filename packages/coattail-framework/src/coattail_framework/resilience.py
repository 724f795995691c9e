"""One policy for retries and waits: exponential backoff with jitter and a cap, bounded retries, polling.

Every retry loop of the platform (connectors' reconnects and REST calls, the sinks' commits
and writes, the producer's puts, the batch jobs' history client) uses these, so "how long
do we keep trying, and how do we space it" has one answer, one set of tests and one place
to change. Pure Python, no I/O of its own: the clock, the sleep and the randomness are
injectable so tests run without real waiting. Runs in whichever process calls it (the
producer's event loop, the Spark driver, a Lambda, a test).

- ``Backoff``: delay ``n`` (0-based) is ``min(cap, initial * multiplier**n)`` scaled by a
  random factor in ``[1 - jitter, 1]``. ``jitter=1`` (the default) is AWS's "full jitter":
  uniform in ``[0, ceiling]``, which spreads reconnect storms best.
- ``retry`` / ``retry_async``: call until success, a non-retryable error (re-raised as it
  is), ``max_attempts`` calls or ``deadline_s`` seconds, whichever first; then
  ``RetryExhaustedError`` names what failed, how often and for how long, chaining the last error.
  No unbounded retry: one of ``max_attempts`` and ``deadline_s`` is required.
- ``wait_until`` / ``wait_until_async``: poll a condition until it holds or a timeout passes;
  returns whether it held (the caller decides what a timeout means).

Example::

    >>> import random
    >>> Backoff(initial=1.0, cap=5.0, jitter=0.0).delays(5)
    [1.0, 2.0, 4.0, 5.0, 5.0]
    >>> calls = []
    >>> def flaky() -> str:
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise ConnectionError("reset")
    ...     return "ok"
    >>> retry(flaky, what="GET /ping", retryable=lambda e: isinstance(e, ConnectionError),
    ...       backoff=Backoff(initial=0.1, cap=1.0, rng=random.Random(1)), max_attempts=5, sleep=lambda s: None)
    'ok'
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Clock = Callable[[], float]
"""Monotonic seconds."""
RetryHook = Callable[[int, BaseException, float], None]
"""Called before each wait: (failed attempts so far, the error, the delay in seconds)."""


class Backoff:
    """Delays in seconds before successive attempts: exponential, capped, jittered; ``reset`` starts over."""

    def __init__(
        self,
        *,
        initial: float,
        cap: float,
        multiplier: float = 2.0,
        jitter: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        if not (initial > 0 and cap > 0 and multiplier >= 1 and 0 <= jitter <= 1):
            raise ValueError(
                "backoff needs initial > 0, cap > 0, multiplier >= 1 and 0 <= jitter <= 1, "
                f"got initial={initial}, cap={cap}, multiplier={multiplier}, jitter={jitter}"
            )
        self.initial = initial
        self.cap = cap
        self.multiplier = multiplier
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.attempt = 0
        """Delays handed out since the last ``reset`` (failed attempts)."""

    def ceiling(self, attempt: int) -> float:
        """The largest delay of 0-based ``attempt``: grows from ``initial``, then stays at ``cap``."""
        return min(self.cap, self.initial * self.multiplier ** min(attempt, 64))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one failed attempt."""
        ceiling = self.ceiling(self.attempt)
        self.attempt += 1
        return ceiling * (1.0 - self.jitter * self._rng.random())

    def delays(self, count: int) -> list[float]:
        """The next ``count`` delays (advances the policy like ``count`` calls of ``next_delay``)."""
        return [self.next_delay() for _ in range(count)]

    def reset(self) -> None:
        """Start over from ``initial`` (after a success or a connection that proved healthy)."""
        self.attempt = 0


class RetryExhaustedError(RuntimeError):
    """``retry`` gave up: ``what`` failed ``attempts`` times over ``elapsed_s`` seconds (last error chained)."""

    def __init__(self, what: str, attempts: int, elapsed_s: float, last: BaseException, reason: str) -> None:
        super().__init__(
            f"{what} failed {attempts} time(s) in {elapsed_s:.1f} s ({reason}); last error: "
            f"{type(last).__name__}: {last}"
        )
        self.what = what
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.last = last


class _Attempts:
    """The bookkeeping ``retry`` and ``retry_async`` share: count failures, decide to wait or give up."""

    def __init__(
        self,
        what: str,
        retryable: Callable[[BaseException], bool],
        backoff: Backoff,
        max_attempts: int | None,
        deadline_s: float | None,
        on_retry: RetryHook | None,
        clock: Clock,
    ) -> None:
        if max_attempts is None and deadline_s is None:
            raise ValueError("retry needs max_attempts or deadline_s: an unbounded retry loop is not allowed")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if deadline_s is not None and deadline_s < 0:
            raise ValueError(f"deadline_s must be >= 0, got {deadline_s}")
        self._what, self._retryable, self._backoff = what, retryable, backoff
        self._max_attempts, self._deadline_s, self._on_retry, self._clock = max_attempts, deadline_s, on_retry, clock
        backoff.reset()
        self._started = clock()
        self._failed = 0

    def delay_after(self, error: Exception) -> float:
        """Seconds to wait before the next call; raises ``error`` itself or ``RetryExhaustedError`` to stop."""
        if not self._retryable(error):
            raise error
        self._failed += 1
        delay = self._backoff.next_delay()
        elapsed = self._clock() - self._started
        if self._max_attempts is not None and self._failed >= self._max_attempts:
            reason = f"max_attempts={self._max_attempts}"
        elif self._deadline_s is not None and elapsed + delay > self._deadline_s:
            reason = f"deadline {self._deadline_s:g} s"
        else:
            if self._on_retry is not None:
                self._on_retry(self._failed, error, delay)
            return delay
        raise RetryExhaustedError(self._what, self._failed, elapsed, error, reason) from error


def retry(
    call: Callable[[], T],
    *,
    what: str,
    retryable: Callable[[BaseException], bool],
    backoff: Backoff,
    max_attempts: int | None = None,
    deadline_s: float | None = None,
    on_retry: RetryHook | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = time.monotonic,
) -> T:
    """``call()`` until it succeeds; see the module docstring. ``what`` names the operation in errors.

    A wait that would end past ``deadline_s`` (seconds from the first call) is not started.
    ``backoff`` is reset first, so one policy object can serve successive operations.
    """
    attempts = _Attempts(what, retryable, backoff, max_attempts, deadline_s, on_retry, clock)
    while True:
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - delay_after re-raises what is not retryable
            sleep(attempts.delay_after(error))


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    retryable: Callable[[BaseException], bool],
    backoff: Backoff,
    max_attempts: int | None = None,
    deadline_s: float | None = None,
    on_retry: RetryHook | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> T:
    """``await call()`` until it succeeds: ``retry`` for coroutines (cancellation is never retried)."""
    attempts = _Attempts(what, retryable, backoff, max_attempts, deadline_s, on_retry, clock)
    while True:
        try:
            return await call()
        except Exception as error:  # noqa: BLE001 - as in retry; CancelledError is a BaseException, never caught
            await sleep(attempts.delay_after(error))


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    *,
    interval_s: float = 0.01,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = time.monotonic,
) -> bool:
    """Poll ``condition`` every ``interval_s`` until it holds (True) or ``timeout_s`` passed (False).

    The condition is checked once more at the deadline, so a timeout of 0 is one check.
    """
    deadline = clock() + timeout_s
    while not condition():
        remaining = deadline - clock()
        if remaining <= 0:
            return bool(condition())
        sleep(min(interval_s, remaining))
    return True


async def wait_until_async(
    condition: Callable[[], bool],
    timeout_s: float,
    *,
    interval_s: float = 0.01,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> bool:
    """``wait_until`` on an event loop: other tasks run while it waits."""
    deadline = clock() + timeout_s
    while not condition():
        remaining = deadline - clock()
        if remaining <= 0:
            return bool(condition())
        await sleep(min(interval_s, remaining))
    return True
