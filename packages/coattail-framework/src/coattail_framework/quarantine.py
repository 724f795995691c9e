"""Frames a connector rejected: counted per reason and kept for inspection, bounded in count and bytes.

The one home for rejected frames of every connector (invalid JSON, numbers or times outside
the exchange's format, an exception raised while handling one frame). Runs in the producer
process, on its event loop; not thread-safe. The newest frames stay in memory within
``max_frames`` and ``max_bytes`` (each payload cut to ``max_frame_bytes``); counts per
reason cover every frame since start. With ``path`` set, every frame is also appended to a
JSON-lines file. Warnings are logged at most once per ``log_interval_s``, with the number
not logged since the previous one.

The record, the one format of every connector (``QuarantinedFrame.as_dict()``; a file line
adds ``source``):

- ``source``: who rejected the frame, e.g. ``"binance"`` or ``"coinbase connector"``.
- ``received_at``: when the frame arrived, ISO-8601 with offset, always UTC
  (``2024-08-08T09:00:00.123456+00:00``); taken from the connector's wall clock, so a
  replay dates frames with the recording's receive times.
- ``reason``: short and machine-readable (``json``, ``number_format``, ``time_window``,
  ``symbol``, ``handler_error:RecursionError``, ...); counts and metrics group by it.
- ``detail``: human-readable explanation, at most ``MAX_DETAIL_CHARS`` characters ("" if none).
- ``size_bytes``: the frame's original size in bytes (UTF-8), before any cut.
- ``payload``: the frame as text, cut to ``max_frame_bytes`` UTF-8 bytes; bytes that were
  not UTF-8 (and lone surrogates) appear as U+FFFD.

Example::

    quarantine = Quarantine(max_frames=100, max_bytes=1024 * 1024, source="binance")
    quarantine.add('{"e":"trade","p":"1E+999999999"}', "number_format", detail="p is not a decimal")
    quarantine.counts        # {"number_format": 1}
    quarantine.as_dict()     # JSON-ready: totals, counts and the held frames
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

MAX_REASONS = 100
"""Distinct reasons counted; beyond them frames are counted under ``OTHER_REASON`` (bounds the counts)."""
OTHER_REASON = "other"
MAX_DETAIL_CHARS = 500
"""Longest ``detail`` kept (an error message can quote the whole frame)."""


def utc_now() -> datetime:
    """The current time, UTC, timezone-aware."""
    return datetime.now(UTC)


def cut_text(payload: str | bytes, max_bytes: int) -> tuple[str, int]:
    """``payload`` as valid text of at most ``max_bytes`` UTF-8 bytes, and its original size in bytes.

    Invalid UTF-8 and lone surrogates become U+FFFD, so the result always encodes and
    serialises. A ``str`` is measured as UTF-8 (surrogates as the 3 bytes they would take).

    >>> cut_text("caf\\u00e9", 4)
    ('caf', 5)
    >>> cut_text("a\\ud800b", 100)
    ('a\\ufffd\\ufffd\\ufffdb', 5)
    """
    raw = payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogatepass")
    text = raw[:max_bytes].decode("utf-8", "replace")
    encoded = text.encode("utf-8")
    if len(encoded) > max_bytes:
        text = encoded[:max_bytes].decode("utf-8", "ignore")
    return text, len(raw)


@dataclass(frozen=True)
class QuarantinedFrame:
    """One rejected frame: when it arrived (UTC), why, its text (maybe cut) and original size."""

    received_at: datetime
    reason: str
    """Short and machine-readable, from a small fixed set: ``json``, ``number_format``,
    ``time_window``, ``handler_error:RecursionError``."""
    payload: str
    size_bytes: int
    detail: str = ""
    """Human-readable explanation (an error message), at most ``MAX_DETAIL_CHARS``."""

    @property
    def held_bytes(self) -> int:
        """What this frame counts against ``Quarantine.max_bytes``: payload and detail as UTF-8."""
        return len(self.payload.encode("utf-8")) + len(self.detail.encode("utf-8"))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``received_at`` as ISO-8601 UTC (an aware time in another zone is converted)."""
        return {
            "received_at": self.received_at.astimezone(UTC).isoformat(),
            "reason": self.reason,
            "detail": self.detail,
            "size_bytes": self.size_bytes,
            "payload": self.payload,
        }


class Quarantine:
    """Rejected frames of one connector: the newest held within both ``max_frames`` and ``max_bytes``."""

    def __init__(
        self,
        *,
        max_frames: int = 1000,
        max_bytes: int = 8 * 1024 * 1024,
        max_frame_bytes: int = 64 * 1024,
        clock: Callable[[], datetime] = utc_now,
        source: str = "connector",
        path: Path | None = None,
        log_interval_s: float = 10.0,
    ) -> None:
        if max_frames < 1:
            raise ValueError(f"Quarantine max_frames must be >= 1, got {max_frames}")
        if max_frame_bytes < 1:
            raise ValueError(f"Quarantine max_frame_bytes must be >= 1, got {max_frame_bytes}")
        if max_bytes < max_frame_bytes + 4 * MAX_DETAIL_CHARS:
            raise ValueError(
                f"Quarantine max_bytes must hold one whole frame: >= max_frame_bytes + {4 * MAX_DETAIL_CHARS} "
                f"= {max_frame_bytes + 4 * MAX_DETAIL_CHARS}, got {max_bytes}"
            )
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.max_frame_bytes = max_frame_bytes
        self.source = source
        self.path = path
        self.log_interval_s = log_interval_s
        self._clock = clock
        self._frames: deque[QuarantinedFrame] = deque()
        self._counts: Counter[str] = Counter()
        self.total = 0
        """Frames quarantined since start (evicted ones included)."""
        self.bytes_held = 0
        """``held_bytes`` of the frames held now."""
        self.file_errors = 0
        """Frames that could not be appended to ``path`` (the first failure is logged)."""
        self._last_log: datetime | None = None
        self._unlogged = 0

    @property
    def counts(self) -> Mapping[str, int]:
        """Frames quarantined per reason since start (evicted ones included)."""
        return dict(self._counts)

    def frames(self) -> list[QuarantinedFrame]:
        """The held frames, oldest first."""
        return list(self._frames)

    def add(self, payload: str | bytes, reason: str, *, detail: str = "") -> QuarantinedFrame:
        """Quarantine one frame: count it, hold it (evicting the oldest), append it to ``path``, log."""
        if reason not in self._counts and len(self._counts) >= MAX_REASONS:
            detail = f"{reason}: {detail}" if detail else reason
            reason = OTHER_REASON
        text, size = cut_text(payload, self.max_frame_bytes)
        detail_text, _ = cut_text(detail[:MAX_DETAIL_CHARS], 4 * MAX_DETAIL_CHARS)
        frame = QuarantinedFrame(self._clock(), reason, text, size, detail_text)
        self._counts[reason] += 1
        self.total += 1
        self._frames.append(frame)
        self.bytes_held += frame.held_bytes
        while len(self._frames) > self.max_frames or self.bytes_held > self.max_bytes:
            self.bytes_held -= self._frames.popleft().held_bytes
        if self.path is not None:
            self._append(frame)
        self._log(frame)
        return frame

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary for inspection: totals, counts per reason and the held frames."""
        return {
            "source": self.source,
            "total": self.total,
            "counts": self.counts,
            "bytes_held": self.bytes_held,
            "frames": [frame.as_dict() for frame in self._frames],
        }

    def _append(self, frame: QuarantinedFrame) -> None:
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"source": self.source, **frame.as_dict()}) + "\n")
        except OSError as error:
            self.file_errors += 1
            if self.file_errors == 1:
                LOG.error("%s: cannot append quarantined frames to %s (memory only): %s", self.source, self.path, error)

    def _log(self, frame: QuarantinedFrame) -> None:
        last = self._last_log
        if last is not None and (frame.received_at - last).total_seconds() < self.log_interval_s:
            self._unlogged += 1
            return
        LOG.warning(
            "%s: quarantined a frame (%s%s; %d more since the last report): %.200s",
            self.source,
            frame.reason,
            f": {frame.detail}" if frame.detail else "",
            self._unlogged,
            frame.payload,
        )
        self._last_log = frame.received_at
        self._unlogged = 0
