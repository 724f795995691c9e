"""The sink's one retry of lost Iceberg commit races (append, expiry, compaction), on a fake table, without Spark."""

from __future__ import annotations

from typing import Any

import pytest
from pyiceberg.exceptions import CommitFailedException

from coattail_framework.sinks.iceberg import (
    COMMIT_ATTEMPTS,
    COMMIT_MAX_DELAY_S,
    IcebergWriteError,
    commit_retrying,
)


class FakeTable:
    """Stands for a pyiceberg ``Table``: ``refresh()`` returns the next version."""

    def __init__(self, version: int = 0) -> None:
        self.version = version

    def refresh(self) -> FakeTable:
        return FakeTable(self.version + 1)


def test_a_lost_race_is_retried_on_the_refreshed_table_after_a_jittered_wait() -> None:
    seen: list[tuple[int, bool]] = []
    sleeps: list[float] = []

    def commit(table: Any, refreshed: bool) -> str:
        seen.append((table.version, refreshed))
        if len(seen) < 3:
            raise CommitFailedException("a concurrent append won")
        return "committed"

    result = commit_retrying(FakeTable(), commit, what="Iceberg t: append", gave_up="gave up", sleep=sleeps.append)

    assert result == "committed"
    assert seen == [(0, False), (1, True), (2, True)]
    assert len(sleeps) == 2
    assert all(0.0 <= delay <= COMMIT_MAX_DELAY_S for delay in sleeps)


def test_after_commit_attempts_lost_races_the_sink_gives_up_with_its_message() -> None:
    calls: list[int] = []

    def commit(table: Any, refreshed: bool) -> str:
        calls.append(table.version)
        raise CommitFailedException("a concurrent append won")

    with pytest.raises(IcebergWriteError, match="too many writers") as raised:
        commit_retrying(FakeTable(), commit, what="Iceberg t: append", gave_up="too many writers", sleep=lambda s: None)

    assert calls == list(range(COMMIT_ATTEMPTS))
    assert isinstance(raised.value.__cause__.__cause__, CommitFailedException)  # type: ignore[union-attr]


def test_other_errors_are_not_retried() -> None:
    def commit(table: Any, refreshed: bool) -> str:
        raise OSError("warehouse unreachable")

    with pytest.raises(OSError, match="warehouse unreachable"):
        commit_retrying(FakeTable(), commit, what="Iceberg t: expiry", gave_up="gave up", sleep=lambda s: None)
