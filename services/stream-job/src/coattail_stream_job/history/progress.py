"""Progress of a history load: counters, and a bar on a terminal or log lines elsewhere.

``LoadStats`` is what the loader knows after each page; a ``ProgressReporter`` shows it.
On a terminal (``isatty``) a one-line bar is redrawn on stderr (trades, pages, trades/s, ETA);
otherwise a log line is written at most every ``interval_s`` seconds, so CI and EMR logs stay
readable. Progress is measured in trade time: how far the last fetched trade is between
``--start`` and ``--end``. Runs in the loader's process.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TextIO

LOG = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BAR_WIDTH = 24


@dataclass
class LoadStats:
    """Counters of one run of the loader (this run only, not earlier ones)."""

    symbol: str
    start_ms: int
    end_ms: int
    pages: int = 0
    trades_fetched: int = 0
    trades_stored: int = 0
    """Trades written to Parquet and committed by this run."""
    rejected: int = 0
    """Records normalize() refused, kept under ``_rejected/`` with the reason."""
    already_stored: int = 0
    """Ids in the range that earlier runs had stored (skipped, not fetched again)."""
    files: list[str] = field(default_factory=list)
    """Objects committed by this run, relative to the destination root."""
    last_id: int | None = None
    """The last trade id fetched (Binance: aggregate id)."""
    last_trade_ms: int | None = None
    reached_latest: bool = False
    """The exchange had no trade after ``last_id`` yet (``--end`` lies ahead of the market)."""
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        """Trades fetched per second of wall time."""
        return self.trades_fetched / self.elapsed_s

    @property
    def fraction(self) -> float:
        """How far into ``[start, end)`` the last fetched trade is, 0..1."""
        if self.last_trade_ms is None:
            return 0.0
        return min(1.0, max(0.0, (self.last_trade_ms - self.start_ms) / max(self.end_ms - self.start_ms, 1)))

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current pace, or None before the first page."""
        done = self.fraction
        return None if done <= 0 else self.elapsed_s * (1.0 - done) / done

    def summary(self) -> str:
        """One line: what this run fetched and stored."""
        position = "" if self.last_trade_ms is None else f", last trade {utc_text(self.last_trade_ms)}"
        return (
            f"{self.symbol}: {self.trades_stored:,} trades stored in {len(self.files)} file(s) from {self.pages:,} "
            f"page(s), {self.rejected:,} rejected, {self.already_stored:,} already stored, last id {self.last_id}"
            f"{position}, {self.elapsed_s:.1f} s ({self.rate:,.0f} trades/s)"
        )


class ProgressReporter(Protocol):
    """Receives the loader's counters after every page and once at the end."""

    def update(self, stats: LoadStats) -> None: ...

    def close(self, stats: LoadStats) -> None: ...


class TerminalProgress:
    """A bar redrawn in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def update(self, stats: LoadStats) -> None:
        done = stats.fraction
        filled = int(done * _BAR_WIDTH)
        eta = stats.eta_s
        line = (
            f"\r{stats.symbol} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done:6.1%} "
            f"{stats.trades_fetched:,} trades {stats.pages:,} pages {stats.rate:,.0f}/s "
            f"ETA {'--' if eta is None else _duration(eta)}"
        )
        self._stream.write(line)
        self._stream.flush()

    def close(self, stats: LoadStats) -> None:
        self.update(stats)
        self._stream.write("\n")
        self._stream.flush()


class LogProgress:
    """A log line at most every ``interval_s`` seconds."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self._interval_s = interval_s
        self._last = time.monotonic()

    def update(self, stats: LoadStats) -> None:
        now = time.monotonic()
        if now - self._last < self._interval_s:
            return
        self._last = now
        eta = stats.eta_s
        LOG.info(
            "%s: %.1f%% %d trades, %d pages, %.0f trades/s, at %s, ETA %s",
            stats.symbol,
            100 * stats.fraction,
            stats.trades_fetched,
            stats.pages,
            stats.rate,
            "-" if stats.last_trade_ms is None else utc_text(stats.last_trade_ms),
            "-" if eta is None else _duration(eta),
        )

    def close(self, stats: LoadStats) -> None:
        LOG.info("%s", stats.summary())


def default_reporter(stream: TextIO | None = None) -> ProgressReporter:
    """A bar when ``stream`` (default stderr) is a terminal, else log lines."""
    stream = sys.stderr if stream is None else stream
    return TerminalProgress(stream) if stream.isatty() else LogProgress()


def utc_text(ms: int) -> str:
    """``ms`` since the epoch as ISO 8601 UTC with milliseconds (``2024-08-08T23:54:00.000Z``)."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
