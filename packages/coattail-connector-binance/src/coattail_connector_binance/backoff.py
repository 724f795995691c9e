"""Reconnect delays: exponential growth with jitter and a cap, reset after a healthy connection.

Pure policy object (the randomness comes from an injectable ``random.Random``), used by the
connector in the producer process. Delay ``n`` (0-based) is
``min(cap, initial * multiplier**n)`` scaled by a random factor in ``[1 - jitter, 1]``.

Example::

    >>> policy = ExponentialBackoff(initial=1.0, multiplier=2.0, cap=5.0, jitter=0.0)
    >>> [policy.next_delay() for _ in range(5)]
    [1.0, 2.0, 4.0, 5.0, 5.0]
    >>> policy.reset(); policy.next_delay()
    1.0
"""

from __future__ import annotations

import random


class ExponentialBackoff:
    """Delays in seconds before successive reconnect attempts."""

    def __init__(
        self,
        *,
        initial: float,
        multiplier: float,
        cap: float,
        jitter: float,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or cap <= 0 or multiplier < 1 or not 0 <= jitter <= 1:
            raise ValueError(
                "backoff needs initial > 0, cap > 0, multiplier >= 1 and 0 <= jitter <= 1, "
                f"got initial={initial}, cap={cap}, multiplier={multiplier}, jitter={jitter}"
            )
        self.initial = initial
        self.multiplier = multiplier
        self.cap = cap
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.attempt = 0

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt ``attempt`` (0-based) can get."""
        exponent = min(attempt, 1000)
        return min(self.cap, self.initial * self.multiplier**exponent)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one failed attempt."""
        ceiling = self.ceiling(self.attempt)
        self.attempt += 1
        return ceiling * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """Start over from ``initial`` (after a healthy connection)."""
        self.attempt = 0
