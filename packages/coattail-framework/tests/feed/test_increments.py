"""Which raw_trades files a feed reader has not read: planned from real pyiceberg metadata on SQLite."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pyiceberg.expressions import LessThan
from pyiceberg.table import Table

from coattail_framework.feed.increments import (
    FeedRewriteError,
    current_sequence_number,
    next_commit,
    pending_files,
    split_evenly,
)
from coattail_framework.sinks.iceberg.maintenance import compact_table

Commit = Callable[[list[str]], None]
RawTrades = Callable[..., Table]


def test_files_after_a_position_are_the_later_commits_in_order(raw_trades: RawTrades, commit: Commit) -> None:
    commit(["1", "2"])
    commit(["3"])
    commit(["4", "5", "6"])
    table = raw_trades()

    assert current_sequence_number(table) == 3
    assert [f.sequence_number for f in pending_files(table, 0)] == [1, 2, 3]
    assert [(f.sequence_number, f.rows) for f in pending_files(table, 1)] == [(2, 1), (3, 3)]
    assert [f.sequence_number for f in pending_files(table, 1, up_to=2)] == [2]
    assert pending_files(table, 3) == []


def test_an_empty_table_has_nothing_pending(raw_trades: RawTrades) -> None:
    table = raw_trades()

    assert current_sequence_number(table) == 0
    assert pending_files(table, 0) == []


def test_a_batch_is_the_next_commit_whatever_else_is_pending(raw_trades: RawTrades, commit: Commit) -> None:
    commit([str(n) for n in range(1, 4)])  # 3 rows
    commit([str(n) for n in range(4, 6)])  # 2 rows
    commit([str(n) for n in range(6, 16)])  # 10 rows
    files = pending_files(raw_trades(), 0)

    assert next_commit(files, 0) == 1
    assert next_commit([f for f in files if f.sequence_number > 1], 1) == 2
    assert next_commit(pending_files(raw_trades(), 2), 2) == 3
    assert next_commit([], 7) == 7


def test_merged_manifests_keep_each_files_commit(raw_trades: RawTrades, commit: Commit) -> None:
    raw_trades(**{"commit.manifest.min-count-to-merge": "2", "commit.manifest-merge.enabled": "true"})
    for n in range(1, 7):
        commit([str(n)])
    table = raw_trades()
    manifests = table.current_snapshot().manifests(table.io)  # type: ignore[union-attr]

    assert len(manifests) < 6  # merged
    assert [(f.sequence_number, f.rows) for f in pending_files(table, 4)] == [(5, 1), (6, 1)]


def test_split_evenly_balances_rows_and_keeps_every_file_once(raw_trades: RawTrades, commit: Commit) -> None:
    for size in (8, 1, 1, 1, 1, 4):
        first = len(pending_files(raw_trades(), 0)) * 100
        commit([str(first + k) for k in range(size)])
    files = pending_files(raw_trades(), 0)

    groups = split_evenly(files, 2)

    assert sorted(f.data_file.file_path for g in groups for f in g) == sorted(f.data_file.file_path for f in files)
    assert sorted(sum(f.rows for f in g) for g in groups) == [8, 8]
    assert all([f.sequence_number for f in g] == sorted(f.sequence_number for f in g) for g in groups)
    assert len(split_evenly(files[:1], 4)) == 1


def test_a_compaction_of_read_files_is_skipped(raw_trades: RawTrades, commit: Commit) -> None:
    commit(["1"])
    commit(["2"])
    commit(["50"])
    result = compact_table(raw_trades(), "coattail", "raw_trades", LessThan("trade_id", "3"))  # commits 1, 2: read
    commit(["60"])
    table = raw_trades()

    pending = pending_files(table, 3)

    assert (result.files_before, result.rows) == (2, 2)
    assert current_sequence_number(table) == 6  # the compaction committed a delete (4) and an append (5)
    assert [(f.sequence_number, f.rows) for f in pending] == [(6, 1)]


def test_a_compaction_of_unread_files_fails_naming_it(raw_trades: RawTrades, commit: Commit) -> None:
    commit(["1"])
    commit(["2"])
    compact_table(raw_trades(), "coattail", "raw_trades")  # rewrites commit 2, which a reader at 1 has not read

    with pytest.raises(
        FeedRewriteError, match=r"coattail.raw_trades: snapshot \d+ \(delete, compact\) rewrote .*number 2,"
    ):
        pending_files(raw_trades(), 1)
