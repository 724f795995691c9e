"""``load-history`` parts on their own: checkpoint arithmetic and progress display (REST: connector tests)."""

from __future__ import annotations

import io
import logging

import pytest
from pydantic import ValidationError

from coattail_stream_job.history.checkpoint import IdRange, LoadCheckpoint
from coattail_stream_job.history.progress import LoadStats, LogProgress, TerminalProgress, default_reporter

START_MS = 1_723_161_600_000


def test_checkpoint_merges_ranges_and_skips_stored_ids() -> None:
    checkpoint = LoadCheckpoint(symbol="BTCUSDT")
    for first, last in [(100, 199), (300, 399), (200, 249), (380, 450)]:
        checkpoint = checkpoint.with_pending(["some/file.parquet"]).with_stored(IdRange(first=first, last=last))
    assert checkpoint.stored == [IdRange(first=100, last=249), IdRange(first=300, last=450)]
    assert checkpoint.pending == []
    assert (checkpoint.last_stored_id, checkpoint.stored_count) == (450, 150 + 151)
    assert [checkpoint.skip_stored(i) for i in (99, 100, 249, 250, 300, 451)] == [99, 250, 250, 250, 451, 451]
    assert [checkpoint.next_stored_after(i) for i in (50, 250, 450)] == [100, 300, None]
    assert LoadCheckpoint.model_validate_json(checkpoint.model_dump_json()) == checkpoint
    with pytest.raises(ValidationError, match="first <= last"):
        IdRange(first=5, last=4)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_bar_and_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    stats = LoadStats(symbol="BTCUSDT", start_ms=START_MS, end_ms=START_MS + 60_000, pages=3, trades_fetched=3_000)
    stats.last_trade_ms = START_MS + 15_000
    terminal = FakeTerminal()
    bar = default_reporter(terminal)
    assert isinstance(bar, TerminalProgress)
    bar.update(stats)
    bar.close(stats)
    lines = terminal.getvalue()
    assert lines.startswith("\rBTCUSDT [######..................]  25.0% 3,000 trades 3 pages")
    assert "ETA 0:00:0" in lines
    assert lines.endswith("\n")

    assert isinstance(default_reporter(io.StringIO()), LogProgress)
    log = LogProgress(interval_s=0.0)
    with caplog.at_level(logging.INFO, logger="coattail_stream_job.history.progress"):
        log.update(stats)
        log.close(stats)
    assert "BTCUSDT: 25.0% 3000 trades, 3 pages" in caplog.messages[0]
    assert "at 2024-08-09T00:00:15.000Z" in caplog.messages[0]
    assert caplog.messages[1].startswith("BTCUSDT: 0 trades stored in 0 file(s) from 3 page(s), 0 rejected")
