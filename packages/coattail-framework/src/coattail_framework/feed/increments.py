"""Which data files of an append-only Iceberg table a reader has not read yet (pyiceberg metadata only).

Runs wherever the ``coattail-feed`` source plans a micro-batch: in the Python worker Spark
keeps on the driver for each query. A reader's position is an Iceberg *data sequence
number*: every commit gets the next one, and each data file keeps the number of the commit
that added it, also after manifests are merged and after the snapshot that added it expired.
So "the files after position N" is a pure function of the table's current metadata, and a
batch (start, end] replayed after a crash reads exactly the same files.

Only new rows are read. A rewrite adds no new rows: a snapshot that is not an append, or an
append marked as a compaction (``coattail.operation=compact``: pyiceberg's overwrite commits a
delete and then an append of the rewritten rows), is skipped. If a rewrite removed a file the
reader had not read yet, those rows would reach the reader only inside the rewritten files, so
the plan fails (``FeedRewriteError``) instead of losing or doubling them: compact only
partitions every reader has passed (``IcebergSink.compact``). Delete files (merge-on-read
deletes) are refused the same way: ``raw_trades`` is append-only. A file whose snapshot has
expired is taken as an append: rewrites are rare operator actions on closed partitions, and
readers stay within minutes of the table's head.

Example::

    files = pending_files(table, after=41)
    end = next_commit(files, after=41)                   # the next batch: one whole commit
    batch = [f for f in files if f.sequence_number <= end]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coattail_framework.errors import CoattailError
from coattail_framework.sinks.iceberg.maintenance import OPERATION_PROPERTY

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

__all__ = [
    "FeedRewriteError",
    "PendingFile",
    "current_sequence_number",
    "next_commit",
    "pending_files",
    "split_evenly",
]

APPEND = "append"
COMPACT = "compact"


class FeedRewriteError(CoattailError, RuntimeError):
    """The table was rewritten (or got delete files) where a reader had not read yet; the message names both."""


@dataclass(frozen=True)
class PendingFile:
    """One data file a reader has not read: the commit (data sequence number) that added it."""

    sequence_number: int
    data_file: DataFile

    @property
    def rows(self) -> int:
        return int(self.data_file.record_count)


def current_sequence_number(table: Table) -> int:
    """The data sequence number of ``table``'s current snapshot (0 for a table without any)."""
    snapshot = table.current_snapshot()
    return 0 if snapshot is None or snapshot.sequence_number is None else int(snapshot.sequence_number)


def _name(table: Table) -> str:
    return ".".join(table.name())


def _rewrites(table: Table, after: int) -> dict[int, str]:
    """Snapshots newer than ``after`` that add no new rows (not appends, or compactions): id -> what they are."""
    found = {}
    for snapshot in table.snapshots():
        if (snapshot.sequence_number or 0) <= after or snapshot.summary is None:
            continue
        operation = snapshot.summary.operation.value
        if snapshot.summary.get(OPERATION_PROPERTY) == COMPACT:
            found[snapshot.snapshot_id] = f"{operation}, {COMPACT}"
        elif operation != APPEND:
            found[snapshot.snapshot_id] = operation
    return found


def _check_rewrite(table: Table, snapshot_id: int, operation: str, after: int) -> None:
    """Raise when the rewrite ``snapshot_id`` removed a file added after ``after`` (rows not read yet)."""
    snapshot = table.snapshot_by_id(snapshot_id)
    if snapshot is None:
        return
    for manifest in snapshot.manifests(table.io):
        if manifest.added_snapshot_id != snapshot_id:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
            if entry.status.name == "DELETED" and (entry.sequence_number or 0) > after:
                raise FeedRewriteError(
                    f"Iceberg table {_name(table)}: snapshot {snapshot_id} ({operation}) rewrote "
                    f"{entry.data_file.file_path}, added at sequence number {entry.sequence_number}, which a reader at "
                    f"{after} has not read; rewrite (compact) only partitions every reader has passed"
                )


def pending_files(table: Table, after: int, *, up_to: int | None = None) -> list[PendingFile]:
    """The live data files appended after sequence number ``after`` (and at most ``up_to``), oldest commit first.

    Reads the current snapshot's manifest list and only the manifests written after
    ``after`` (a manifest holds no file newer than itself). Raises ``FeedRewriteError``
    (see the module docstring).
    """
    snapshot = table.current_snapshot()
    if snapshot is None:
        return []
    rewrites = _rewrites(table, after)
    for snapshot_id, operation in rewrites.items():
        _check_rewrite(table, snapshot_id, operation, after)
    files = []
    for manifest in snapshot.manifests(table.io):
        if manifest.sequence_number is not None and manifest.sequence_number <= after:
            continue
        if manifest.content.name != "DATA":
            raise FeedRewriteError(
                f"Iceberg table {_name(table)}: delete manifest {manifest.manifest_path} (sequence number "
                f"{manifest.sequence_number}) after reader position {after}; the table must stay append-only"
            )
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            number = int(entry.sequence_number or 0)
            if number <= after or (up_to is not None and number > up_to) or entry.snapshot_id in rewrites:
                continue
            files.append(PendingFile(number, entry.data_file))
    return sorted(files, key=lambda f: (f.sequence_number, f.data_file.file_path))


def next_commit(files: Sequence[PendingFile], after: int) -> int:
    """The end (sequence number) of the next batch over ``files`` (from ``pending_files``): one whole commit.

    One commit, not as many as are there: which commits a trigger finds depends on timing, and
    a detector's batches decide how its watermark moves, so batches of several commits would
    make its output depend on timing (a batch after a restart would differ from the one the
    uninterrupted run had). One commit per batch makes each detector's batches those of ingest,
    which a backlog reads in big batches (``kinesis.max_records_per_trigger``). ``after`` when
    nothing is pending.
    """
    return min((pending.sequence_number for pending in files), default=after)


def split_evenly(files: Sequence[PendingFile], parts: int) -> list[list[PendingFile]]:
    """``files`` in at most ``parts`` groups of about equal rows, each group in commit order."""
    groups: list[list[PendingFile]] = [[] for _ in range(max(1, min(parts, len(files))))]
    loads = [0] * len(groups)
    for pending in sorted(files, key=lambda f: -f.rows):
        index = loads.index(min(loads))
        groups[index].append(pending)
        loads[index] += pending.rows
    return [sorted(group, key=lambda f: (f.sequence_number, f.data_file.file_path)) for group in groups if group]
