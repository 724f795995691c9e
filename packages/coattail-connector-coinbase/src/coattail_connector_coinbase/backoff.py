"""Reconnect delays: exponential growth with jitter and a cap, reset after a healthy connection.

A pure policy object (its randomness comes from an injectable ``random.Random``), used by
the connector on the producer's event loop.

Example::

    >>> import random
    >>> policy = Backoff(BackoffSettings(initial=1, maximum=8, jitter=0), random.Random(7))
    >>> [policy.next_delay() for _ in range(5)]
    [1.0, 2.0, 4.0, 8.0, 8.0]
"""

from __future__ import annotations

import random

from coattail_connector_coinbase.settings import BackoffSettings


class Backoff:
    """Delay (seconds) before the next reconnect attempt."""

    def __init__(self, settings: BackoffSettings, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._rng = rng or random.Random()
        self.attempt = 0

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter for the given 0-based attempt: grows, then stays at the cap."""
        settings = self._settings
        growth = settings.multiplier ** min(attempt, 64)
        return min(settings.maximum, settings.initial * growth)

    def next_delay(self) -> float:
        """The next delay: the ceiling minus a random share of up to ``jitter`` of it."""
        ceiling = self.ceiling(self.attempt)
        self.attempt += 1
        return ceiling * (1.0 - self._settings.jitter * self._rng.random())

    def reset(self) -> None:
        """Start again from ``initial`` (after a connection proved healthy)."""
        self.attempt = 0

    def connection_ended(self, subscribed_for: float | None) -> None:
        """Reset when the connection that just ended stayed subscribed for ``healthy_after``."""
        if subscribed_for is not None and subscribed_for >= self._settings.healthy_after:
            self.reset()
