"""Messages the connector could not use: kept for inspection, never dropped silently.

Runs in the producer process. Every rejected frame goes to a bounded in-memory deque and,
when a path is configured, to an append-only JSON-lines file
(``{"received_at": ISO UTC, "reason": ..., "payload": raw text}``). Warnings about them are
rate limited so a flood of garbage cannot flood the log; suppressed warnings are counted
and summarised in the next one that is logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class RejectedMessage:
    """One frame that was malformed, truncated, unknown or not a valid trade."""

    reason: str
    payload: str
    received_at: datetime


class RateLimitedLog:
    """At most ``limit`` warnings per ``interval`` seconds on ``logger``."""

    def __init__(
        self, logger: logging.Logger, limit: int, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._limit = limit
        self._interval = interval
        self._clock = clock
        self._window_start = clock()
        self._logged = 0
        self.suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        """Log, or count as suppressed when over the limit in the current window."""
        now = self._clock()
        if now - self._window_start >= self._interval:
            self._window_start, self._logged = now, 0
        if self._logged >= self._limit:
            self.suppressed += 1
            return
        self._logged += 1
        if self.suppressed:
            message += " (%d similar warnings suppressed before this one)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self._logger.warning(message, *args)


class RejectedMessages:
    """The rejected frames of one connector: the newest ``capacity`` in memory, all in the file."""

    def __init__(self, capacity: int, path: Path | None, log: RateLimitedLog) -> None:
        self._recent: deque[RejectedMessage] = deque(maxlen=capacity)
        self._path = path
        self._log = log
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, reason: str, payload: str, received_at: datetime) -> None:
        """Keep one rejected frame and log it (rate limited)."""
        self._recent.append(RejectedMessage(reason, payload, received_at))
        if self._path is not None:
            line = json.dumps({"received_at": received_at.isoformat(), "reason": reason, "payload": payload})
            with self._path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        self._log.warning("coinbase: rejected message (%s): %.200s", reason, payload)

    @property
    def recent(self) -> list[RejectedMessage]:
        """The newest rejected frames, oldest first."""
        return list(self._recent)
