"""Time travel on ``raw_trades``: pick a snapshot, stage its trades as an ordered stream of Parquet files.

Runs on the driver of ``coattail-stream-job reprocess``, with pyiceberg. A snapshot is
chosen by id or as the one current at a time (the latest committed at or before it).
``stage_snapshot`` reads the snapshot one time range at a time (one day of trade time when
``raw_trades`` is partitioned by ``day(timestamp)``, as the stream job creates it; the
whole snapshot otherwise), sorts the trades by trade time and writes them as numbered
Parquet files of about ``rows_per_file`` trades each. Trades sharing a trade time never
straddle two files, so no trade of one instant can fall behind a watermark its own
instant moved. Files are named and stamped in order: Spark's file source, read with
``maxFilesPerTrigger=1``, turns them into micro-batches in trade-time order.

The folder may be local or ``s3://`` (pyarrow's file systems; on S3 the order rests on
sequential uploads and names). ``pinned`` tags the snapshot while it is staged, so the
stream job's snapshot expiry cannot remove it halfway.

Example::

    table = catalog.load_table(("coattail", "raw_trades"))
    snapshot = resolve_snapshot(table, as_of=datetime(2024, 8, 9, tzinfo=timezone.utc))
    staged = stage_snapshot(table, snapshot.snapshot_id, "/tmp/reprocess/input", rows_per_file=10_000)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, LessThan
from pyiceberg.transforms import DayTransform

from coattail_framework.errors import CoattailError
from coattail_framework.iceberg import to_arrow_schema
from coattail_framework.schemas import EVENT_TIME_COLUMN, UNIFIED_TRADE_EVENT
from coattail_framework.sinks.iceberg import COMMIT_ATTEMPTS, commit_retrying

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

SORT_KEYS = [
    (EVENT_TIME_COLUMN, "ascending"),
    ("exchange", "ascending"),
    ("symbol", "ascending"),
    ("event_id", "ascending"),
]
FILE_STAMP_BASE = 1_000_000_000
"""Modification time (seconds since the epoch) of the first staged file; each next file gets one more."""


class TimeTravelError(CoattailError):
    """The requested snapshot does not exist or the table cannot be read as of it."""


@dataclass(frozen=True)
class StagedSnapshot:
    """What ``stage_snapshot`` wrote: files, trades and the trade-time range (UTC; None when empty)."""

    folder: str
    files: int
    rows: int
    first_trade: datetime | None
    last_trade: datetime | None


def utc(millis: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def resolve_snapshot(table: Table, *, snapshot_id: int | None = None, as_of: datetime | None = None) -> Snapshot:
    """The snapshot with ``snapshot_id``, or the one current at ``as_of`` (aware; latest committed at or before it)."""
    name = ".".join(table.name())
    history = sorted(table.snapshots(), key=lambda snapshot: snapshot.timestamp_ms)
    if not history:
        raise TimeTravelError(f"Iceberg table {name} has no snapshot yet: the stream job has not written trades")
    known = ", ".join(f"{s.snapshot_id} ({utc(s.timestamp_ms).isoformat()})" for s in history[-5:])
    if snapshot_id is not None:
        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            raise TimeTravelError(f"Iceberg table {name} has no snapshot {snapshot_id}; the latest are: {known}")
        return snapshot
    if as_of is None:
        raise TimeTravelError("pass a snapshot id or a time to read the table as of")
    if as_of.tzinfo is None:
        raise TimeTravelError(f"time {as_of.isoformat()} has no time zone; give it in UTC, e.g. 2024-08-09T00:00:00Z")
    found = table.snapshot_as_of_timestamp(int(as_of.timestamp() * 1000))
    if found is None:
        first = utc(history[0].timestamp_ms).isoformat()
        raise TimeTravelError(
            f"Iceberg table {name} has no snapshot at or before {as_of.isoformat()}; its first was committed at {first}"
        )
    return found


def trade_days(table: Table, snapshot_id: int) -> list[date] | None:
    """The trade days a snapshot holds, from its partitions; None when the table is not partitioned by day."""
    source = table.schema().find_field(EVENT_TIME_COLUMN).field_id
    fields = [f for f in table.spec().fields if f.source_id == source and isinstance(f.transform, DayTransform)]
    if not fields:
        return None
    partitions = table.inspect.partitions(snapshot_id=snapshot_id).column("partition").to_pylist()
    return sorted({partition[fields[0].name] for partition in partitions if partition[fields[0].name] is not None})


def _ranges(table: Table, snapshot_id: int) -> list[BooleanExpression]:
    days = trade_days(table, snapshot_id)
    if days is None:
        return [AlwaysTrue()]
    ranges: list[BooleanExpression] = []
    for day in days:
        start = datetime.combine(day, time(), tzinfo=UTC)
        ranges.append(
            And(
                GreaterThanOrEqual(term=EVENT_TIME_COLUMN, value=start.isoformat()),
                LessThan(term=EVENT_TIME_COLUMN, value=(start + timedelta(days=1)).isoformat()),
            )
        )
    return ranges


def ordered_chunks(trades: pa.Table, rows_per_file: int) -> Iterator[pa.Table]:
    """``trades`` sorted by trade time, cut into pieces of about ``rows_per_file`` rows at trade-time changes."""
    ordered = trades.sort_by(SORT_KEYS)
    times = pc.cast(ordered.column(EVENT_TIME_COLUMN), pa.int64()).to_pylist()
    start, count = 0, len(times)
    while start < count:
        end = min(start + rows_per_file, count)
        while end < count and times[end] == times[end - 1]:
            end += 1
        yield ordered.slice(start, end - start)
        start = end


def _file_system(folder: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in folder:
        folder = str(Path(folder).resolve())
    file_system, path = pafs.FileSystem.from_uri(folder)
    return file_system, path


def stage_snapshot(table: Table, snapshot_id: int, folder: str, *, rows_per_file: int) -> StagedSnapshot:
    """Write the snapshot's trades under ``folder`` as ordered Parquet files (see the module docstring)."""
    if rows_per_file < 1:
        raise TimeTravelError(f"rows per file must be >= 1, got {rows_per_file}")
    file_system, base = _file_system(folder)
    file_system.create_dir(base, recursive=True)
    schema = to_arrow_schema(UNIFIED_TRADE_EVENT)
    files = rows = 0
    first: datetime | None = None
    last: datetime | None = None
    for time_range in _ranges(table, snapshot_id):
        trades = table.scan(row_filter=time_range, snapshot_id=snapshot_id).to_arrow()
        if trades.num_rows == 0:
            continue
        trades = trades.select(schema.names).cast(schema)
        for chunk in ordered_chunks(trades, rows_per_file):
            path = f"{base}/trades-{files:06d}.parquet"
            with file_system.open_output_stream(path) as out:
                pq.write_table(chunk, out)
            if isinstance(file_system, pafs.LocalFileSystem):
                os.utime(path, (FILE_STAMP_BASE + files, FILE_STAMP_BASE + files))
            files += 1
            rows += chunk.num_rows
            times = chunk.column(EVENT_TIME_COLUMN)
            first = first or times[0].as_py()
            last = times[-1].as_py()
    return StagedSnapshot(folder, files, rows, first, last)


@contextmanager
def pinned(table: Table, snapshot_id: int, *, tag: str) -> Iterator[None]:
    """Tag ``snapshot_id`` as ``tag`` while the block reads it (driver): expiry keeps tagged snapshots.

    The stream job expires ``raw_trades`` snapshots older than its retention
    (``iceberg.maintenance``) and deletes their manifest lists; ``stage_snapshot`` reads a
    snapshot one day at a time, so without the tag a long staging could lose its snapshot
    halfway. The tag is removed when the block ends; a process killed inside the block
    leaves it (remove it with ``table.manage_snapshots().remove_tag(tag).commit()``).
    """

    def create() -> None:
        if table.snapshot_by_id(snapshot_id) is None:  # checked again after a refresh
            raise TimeTravelError(f"snapshot {snapshot_id} no longer exists (expired); pick a later one")
        table.manage_snapshots().create_tag(snapshot_id, tag).commit()

    _commit_with_retries(table, create)
    try:
        yield
    finally:
        _commit_with_retries(table, lambda: table.manage_snapshots().remove_tag(tag).commit())


def _commit_with_retries(table: Table, commit: Callable[[], None]) -> None:
    """Run ``commit``; when a concurrent commit (an append) won, refresh ``table`` and run it again.

    The sink's ``commit_retrying``: ``table.refresh()`` updates ``table`` in place, which ``commit`` uses.
    """
    commit_retrying(
        table,
        lambda _table, _refreshed: commit(),
        what=f"tag commit on {table.name()}",
        gave_up=f"could not commit a tag on {table.name()} in {COMMIT_ATTEMPTS} attempts: too many writers",
    )


def remove_folder(folder: str) -> None:
    """Delete a staging folder and everything under it (local or ``s3://``)."""
    file_system, base = _file_system(folder)
    if file_system.get_file_info(base).type != pafs.FileType.NotFound:
        file_system.delete_dir(base)
