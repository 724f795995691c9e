"""Malformed messages kept for inspection: a bounded in-memory deque plus an optional file.

A message the connector cannot use (invalid JSON, truncated frame, unknown shape, a trade
with an invalid field, an error reply) is never dropped silently: it is counted, logged at
most once per interval (with how many were not logged), kept in memory and, when a path is
configured, appended to a JSON-lines file (``{"at": ISO-8601 UTC, "reason", "raw"}``).
Runs in the producer process.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class MalformedMessage:
    """One kept message: why it was rejected, the raw text and when it arrived (UTC)."""

    reason: str
    raw: str
    received_at: datetime


class Quarantine:
    """Keeps the last ``keep`` malformed messages and appends all of them to ``path`` if set."""

    def __init__(self, *, keep: int, path: Path | None, log_interval_s: float, source: str) -> None:
        self.messages: deque[MalformedMessage] = deque(maxlen=keep)
        self.path = path
        self._log_interval_s = log_interval_s
        self._source = source
        self._last_log = float("-inf")
        self._unlogged = 0

    def keep(self, reason: str, raw: str, received_at: datetime) -> None:
        """Record one malformed message."""
        message = MalformedMessage(reason, raw, received_at)
        self.messages.append(message)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                record = {"at": received_at.isoformat(), "source": self._source, "reason": reason, "raw": raw}
                handle.write(json.dumps(record) + "\n")
        now = time.monotonic()
        if now - self._last_log >= self._log_interval_s:
            LOG.warning(
                "%s: kept a malformed message (%s; %d more since the last report): %.200s",
                self._source,
                reason,
                self._unlogged,
                raw,
            )
            self._last_log = now
            self._unlogged = 0
        else:
            self._unlogged += 1
