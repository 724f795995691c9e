"""Iceberg table maintenance for the pyiceberg writer: lost commit races retried, snapshot expiry, compaction.

Runs on the Spark driver: inside ``foreachBatch`` (after an append) or from a batch command
(``IcebergSink.compact``, ``IcebergSink.expire_snapshots``, ``coattail-stream-job reprocess``).
Waits are in seconds, snapshot times UTC; the "at most every ``expire_every_seconds``"
check uses the driver's monotonic clock.

- ``commit_retrying``: a commit (append, expiry, compaction) that loses a race to another
  writer (``CommitFailedException``, after pyiceberg's own ``commit.retry.num-retries``)
  is tried again on the refreshed table, with capped, jittered backoff, at most
  ``COMMIT_ATTEMPTS`` times.
- ``SnapshotExpiry`` (``iceberg.maintenance``, ``sinks.retention``): after a successful
  append, at most every ``expire_every_seconds`` per table, the snapshots the table's
  retention does not keep are expired (each writer's latest always stays), so a commit's
  cost is bounded by the snapshots the retention keeps, not by the table's age. A failed
  expiry is logged and retried after the next append; it never fails the batch.
- ``compact_table``: a copy-on-write rewrite of the matching rows in one commit (pyiceberg
  0.12 has no ``rewrite_data_files``). Its snapshot carries no writer, so the exactly-once
  check does not see it.

Example (driver)::

    result = commit_retrying(table, lambda current, refreshed: current.append(rows),
                             what="Iceberg t: append", gave_up="Iceberg t: too many writers")
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue, BooleanExpression

from coattail_framework.resilience import Backoff, RetryExhaustedError, retry
from coattail_framework.sinks.iceberg.table_writer import IcebergWriteError
from coattail_framework.sinks.retention import ExpiryResult, expire_table_snapshots

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from coattail_framework.config.model import IcebergConfig

OPERATION_PROPERTY = "coattail.operation"
COMMIT_ATTEMPTS = 10
"""Commits (append, expiry, compaction) a lost race is retried up to, each on the refreshed table."""
COMMIT_BASE_DELAY_S = 0.05
COMMIT_MAX_DELAY_S = 2.0
"""Waits between lost commit races: full jitter, growing from ``COMMIT_BASE_DELAY_S`` to this cap."""

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactionResult:
    """Data files matching the filter before and after a compaction, and the rows rewritten."""

    files_before: int
    files_after: int
    rows: int


def commit_retrying(
    iceberg_table: Table,
    commit: Callable[[Table, bool], T],
    *,
    what: str,
    gave_up: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``commit(table, refreshed)`` until it does not lose a commit race (``CommitFailedException``). Driver.

    After a lost race the wait follows ``coattail_framework.resilience.Backoff`` (``COMMIT_BASE_DELAY_S``
    to ``COMMIT_MAX_DELAY_S``, full jitter) and ``commit`` gets the refreshed table with ``refreshed=True``
    (to re-check idempotency or re-plan). After ``COMMIT_ATTEMPTS`` lost races: ``IcebergWriteError(gave_up)``.
    """
    current = iceberg_table
    lost = False

    def attempt() -> T:
        nonlocal current, lost
        if lost:
            current = current.refresh()
        refreshed, lost = lost, True
        return commit(current, refreshed)

    def note(attempts: int, error: BaseException, delay: float) -> None:
        log.info("%s lost race %d (%s); retrying in %.2f s", what, attempts, error, delay)

    try:
        return retry(
            attempt,
            what=what,
            retryable=lambda error: isinstance(error, CommitFailedException),
            backoff=Backoff(initial=COMMIT_BASE_DELAY_S, cap=COMMIT_MAX_DELAY_S),
            max_attempts=COMMIT_ATTEMPTS,
            on_retry=note,
            sleep=sleep,
        )
    except RetryExhaustedError as error:
        raise IcebergWriteError(gave_up) from error


class SnapshotExpiry:
    """Expires the snapshots each table's retention does not keep (driver; safe to share across queries)."""

    def __init__(self, iceberg: IcebergConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._iceberg = iceberg
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at: dict[str, float] = {}

    def expire(self, table: str, iceberg_table: Table, now: datetime) -> ExpiryResult:
        """Expire ``table``'s snapshots its retention (``iceberg.maintenance``) does not keep at ``now`` (UTC).

        A commit that loses a race to an append is retried on the refreshed table (``commit_retrying``).
        """
        retention = self._iceberg.maintenance.retention_for(table)
        return commit_retrying(
            iceberg_table,
            lambda current, _refreshed: expire_table_snapshots(current, retention, now=now),
            what=f"Iceberg {table}: snapshot expiry",
            gave_up=(
                f"Iceberg table {self._iceberg.database}.{table}: snapshot expiry lost {COMMIT_ATTEMPTS} commit races "
                "to concurrent appends"
            ),
        )

    def expire_if_due(self, table: str, iceberg_table: Table) -> None:
        """After an append: expire ``table``'s snapshots if its last check is ``expire_every_seconds`` old.

        Never raises: a failed expiry is logged and tried again after the next append.
        """
        maintenance = self._iceberg.maintenance
        if not maintenance.enabled:
            return
        checked_now = self._clock()
        with self._lock:
            checked = self._checked_at.get(table)
            if checked is not None and checked_now - checked < maintenance.expire_every_seconds:
                return
            self._checked_at[table] = checked_now
        try:
            result = self.expire(table, iceberg_table, datetime.now(UTC))
        except Exception as error:  # noqa: BLE001 - the batch is committed; the next check retries
            log.warning("Iceberg %s: snapshot expiry failed (%s); retried after the next append", table, error)
            with self._lock:
                self._checked_at.pop(table, None)
            return
        if result.expired:
            log.info(
                "Iceberg %s: expired %d snapshots, kept %d (%d manifest lists deleted)",
                table,
                result.expired,
                result.kept,
                result.manifest_lists_deleted,
            )


def compact_table(
    iceberg_table: Table, database: str, table: str, where: BooleanExpression | str | None = None, *, min_files: int = 2
) -> CompactionResult:
    """Rewrite the rows of ``iceberg_table`` (``database.table``) matching ``where`` (default: all). Driver.

    A copy-on-write overwrite of the matching rows in one commit, retried when a concurrent
    append wins; the rows are held in driver memory. Skipped when fewer than ``min_files``
    data files match.
    """
    condition = AlwaysTrue() if where is None else where

    def rewrite(current: Table, _refreshed: bool) -> CompactionResult:
        scan = current.scan(row_filter=condition)
        files_before = len(list(scan.plan_files()))
        if files_before < min_files:
            return CompactionResult(files_before, files_before, 0)
        rows = scan.to_arrow()
        current.overwrite(rows, overwrite_filter=condition, snapshot_properties={OPERATION_PROPERTY: "compact"})
        files_after = len(list(current.scan(row_filter=condition).plan_files()))
        return CompactionResult(files_before, files_after, rows.num_rows)

    return commit_retrying(
        iceberg_table,
        rewrite,
        what=f"Iceberg {table}: compaction",
        gave_up=(
            f"Iceberg table {database}.{table}: compaction lost {COMMIT_ATTEMPTS} commit races to "
            "concurrent appends; run it on partitions no query writes any more"
        ),
    )
