"""Snapshot expiry: an appended-to Iceberg table's metadata, and so its commits, stop growing.

Runs on the driver: ``IcebergSink`` calls ``expire_table_snapshots`` after a successful
append (at most every ``iceberg.maintenance.expire_every_seconds`` per table) and from
``IcebergSink.expire_snapshots``. Only the ``pyiceberg`` writer uses it.

Why: every pyiceberg commit rewrites the table metadata, which lists every snapshot, and
deep-copies it several times on the way. Measured here (SQLite catalog, 50-row appends):
a commit took 22 ms on a new table and 277 ms after 300 commits; after expiring all but
the current snapshot, 28-36 ms again. The stream job commits to its detectors' tables and
``alerts`` about once a second, so without expiry its hot path would slow by about a
second per commit every quarter hour (an estimate from that slope; measured on the live
job over 8.5 minutes, ADR-023).

What stays (``SnapshotRetention``): every snapshot younger than ``keep_all_minutes``; of
the older ones younger than ``keep_hourly_days``, the last one of each UTC hour; always the
current snapshot, branch and tag heads, and each writer's latest snapshot (the sink's
exactly-once check reads its batch id). What goes: the other snapshots' entries in the
metadata (pyiceberg's ``ExpireSnapshots``), then their manifest lists (one file per
snapshot, read by no other). Data files and manifests stay: on an append-only table the
current snapshot still reads every data file; manifests merged away
(``commit.manifest-merge.enabled``) and files a compaction replaced are left to a
remove-orphan-files job.

Example (driver)::

    table = catalog.load_table(("coattail", "alerts"))
    result = expire_table_snapshots(table, SnapshotRetention(keep_all_minutes=5), now=datetime.now(timezone.utc))
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from coattail_framework.config.model import SnapshotRetention

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.table import Table

WRITER_PROPERTY = "coattail.writer"
"""Snapshot summary key naming the query (writer) that committed it; see ``sinks.iceberg``."""
MS_PER_MINUTE = 60_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotFacts:
    """What the selection needs of one snapshot; ``timestamp_ms`` is its commit time (UTC epoch ms)."""

    snapshot_id: int
    sequence_number: int
    timestamp_ms: int
    writer: str | None

    @classmethod
    def of(cls, snapshot: Any) -> SnapshotFacts:
        """The facts of a pyiceberg ``Snapshot``."""
        summary = snapshot.summary
        return cls(
            snapshot_id=snapshot.snapshot_id,
            sequence_number=snapshot.sequence_number or 0,
            timestamp_ms=snapshot.timestamp_ms,
            writer=summary.get(WRITER_PROPERTY) if summary is not None else None,
        )


@dataclass(frozen=True)
class ExpiryResult:
    """Snapshots expired and kept by one expiry, and manifest lists deleted after it."""

    expired: int
    kept: int
    manifest_lists_deleted: int


def snapshots_to_expire(
    snapshots: Sequence[SnapshotFacts], retention: SnapshotRetention, *, now_ms: int, protected: Collection[int] = ()
) -> list[int]:
    """Ids of the snapshots ``retention`` does not keep at ``now_ms`` (UTC epoch ms), oldest first.

    ``protected`` (branch and tag heads) are always kept, as are the latest snapshot (by
    sequence number) and each writer's latest.
    """
    if not snapshots:
        return []
    ordered = sorted(snapshots, key=lambda s: (s.sequence_number, s.timestamp_ms))
    keep = set(protected) | {ordered[-1].snapshot_id}
    latest_by_writer = {s.writer: s.snapshot_id for s in ordered if s.writer is not None}
    keep.update(latest_by_writer.values())
    keep_all_from = now_ms - retention.keep_all_minutes * MS_PER_MINUTE
    hourly_from = now_ms - retention.keep_hourly_days * MS_PER_DAY
    last_of_hour: dict[int, int] = {}
    for snapshot in ordered:
        if snapshot.timestamp_ms >= keep_all_from:
            keep.add(snapshot.snapshot_id)
        elif snapshot.timestamp_ms >= hourly_from:
            last_of_hour[snapshot.timestamp_ms // MS_PER_HOUR] = snapshot.snapshot_id
    keep.update(last_of_hour.values())
    return [s.snapshot_id for s in ordered if s.snapshot_id not in keep]


def expire_table_snapshots(table: Table, retention: SnapshotRetention, *, now: datetime) -> ExpiryResult:
    """Expire ``table``'s snapshots that ``retention`` does not keep at ``now`` (aware), in one commit.

    Raises pyiceberg's ``CommitFailedException`` when a concurrent commit won (the caller
    refreshes the table and calls again). Manifest lists that cannot be deleted are logged
    and left (orphans, nothing reads them).
    """
    snapshots = table.snapshots()
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    facts = [SnapshotFacts.of(snapshot) for snapshot in snapshots]
    expired = snapshots_to_expire(facts, retention, now_ms=int(now.timestamp() * 1000), protected=protected)
    if not expired:
        return ExpiryResult(expired=0, kept=len(facts), manifest_lists_deleted=0)
    chosen = set(expired)
    manifest_lists = [s.manifest_list for s in snapshots if s.snapshot_id in chosen and s.manifest_list]
    update = table.maintenance.expire_snapshots()
    # One assignment instead of by_ids(): by_id re-derives (deep-copies) the table metadata for
    # every id, quadratic in the snapshots (4.7 s for 300 here). An instance attribute also
    # sidesteps pyiceberg 0.10's class-level set, shared by every ExpireSnapshots.
    update._snapshot_ids_to_expire = chosen
    update.commit()
    deleted = _delete_files(table.io, manifest_lists)
    return ExpiryResult(expired=len(expired), kept=len(facts) - len(expired), manifest_lists_deleted=deleted)


def _delete_files(io: FileIO, paths: Sequence[str]) -> int:
    """Delete ``paths`` with the table's FileIO; how many were deleted (failures are logged)."""
    deleted = 0
    for path in paths:
        try:
            io.delete(path)
            deleted += 1
        except Exception as error:  # noqa: BLE001 - an orphan file is harmless; the expiry committed
            log.warning("could not delete the manifest list %s of an expired snapshot: %s", path, error)
    return deleted
