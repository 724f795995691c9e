"""Cold storage: micro-batches appended to Iceberg tables, exactly once per (writer, batch id).

Runs on the driver, inside ``foreachBatch``. Tables live in ``iceberg.database`` and are
created on first write from the declared Spark schema and partition fields
(``coattail_framework.iceberg``). Two writers, chosen by ``iceberg.writer``:

- ``pyiceberg`` (default): the batch is collected to Arrow on the driver, cast to the
  table's Arrow schema (Spark timestamps become ``timestamp[us, tz=UTC]``, required
  columns non-nullable) and appended with ``Table.append``. Works with the embedded
  SQLite catalog and with Glue + S3.
- ``spark``: Spark's own Iceberg writer (``DataFrame.writeTo(...).append()``), after
  ``CREATE TABLE IF NOT EXISTS`` once per table. Needs the Iceberg Spark runtime and a
  Spark catalog named ``iceberg.catalog_name`` (EMR); without them the sink raises
  ``IcebergRuntimeMissingError``.

Idempotency: every snapshot a writer commits records ``coattail.writer`` (the streaming
query's name), ``coattail.batch-id`` and, once the writer's checkpoint is known
(``use_checkpoint``: the stream job's ``PipelineRunner`` registers it at start),
``coattail.checkpoint-id`` in its summary. A batch is skipped when the latest snapshot of
the same writer AND the same checkpoint already has a batch id >= this one, so a
micro-batch replayed after a crash between the Iceberg commit and Spark's commit log never
lands twice, and a new or reset checkpoint, whose batch ids start again at 0, skips nothing
(ADR-028). Snapshots written before checkpoint ids existed (no ``coattail.checkpoint-id``)
count as the writer's checkpoint only when that checkpoint is marked ``legacy`` (it already
ran batches when it got its id); a writer with no registered checkpoint (tests,
``reprocess``) compares with its latest snapshot whatever its checkpoint, as before. Several
queries may append to one table (``alerts`` receives every detector's alerts): pyiceberg
first retries a commit that lost a race itself (table property
``commit.retry.num-retries``, reusing the written files); when those retries run out
(``CommitFailedException``) the sink refreshes the table, re-checks idempotency and
appends again with capped, jittered backoff (``commit_retrying``, at most ``COMMIT_ATTEMPTS``
tries; expiry and compaction retry the same way). Compaction snapshots carry no writer, so
they do not disturb the check.

Snapshot expiry (``iceberg.maintenance``, ``sinks.retention``): after a successful append,
at most every ``expire_every_seconds`` per table, the snapshots the table's retention does
not keep are expired (each writer's latest always stays), so a commit's cost is bounded by
the snapshots the retention keeps, not by the table's age. A failed expiry is logged and
retried later; it never fails the batch, whose rows are committed.

Example (driver)::

    sink = IcebergSink(config)
    sink.append("raw_trades", UNIFIED_TRADE_EVENT, (day("timestamp"), identity("exchange")),
                valid_trades, batch_id=batch_id, writer="ingest")
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from coattail_framework.errors import CoattailError
from coattail_framework.iceberg import create_table_ddl, ensure_table, open_catalog, to_arrow_schema
from coattail_framework.partitioning import PartitionField
from coattail_framework.resilience import Backoff, RetryExhaustedError, retry
from coattail_framework.sinks.retention import WRITER_PROPERTY, ExpiryResult, expire_table_snapshots

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from coattail_framework.config.model import CoattailConfig, IcebergConfig

BATCH_ID_PROPERTY = "coattail.batch-id"
CHECKPOINT_ID_PROPERTY = "coattail.checkpoint-id"
"""Snapshot summary key: the id of the checkpoint (``CheckpointIdentity``) whose batch the snapshot holds."""
OPERATION_PROPERTY = "coattail.operation"
COMMIT_ATTEMPTS = 10
"""Commits (append, expiry, compaction) a lost race is retried up to, each on the refreshed table."""
COMMIT_BASE_DELAY_S = 0.05
COMMIT_MAX_DELAY_S = 2.0
"""Waits between lost commit races: full jitter, growing from ``COMMIT_BASE_DELAY_S`` to this cap."""

T = TypeVar("T")

_MISSING_RUNTIME = ("Cannot find catalog plugin class", "CATALOG_PLUGIN_CLASS_NOT_FOUND", "ClassNotFoundException")
"""Markers of Spark's errors when the Iceberg catalog class is not on the classpath."""

log = logging.getLogger(__name__)


class IcebergWriteError(CoattailError):
    """A batch could not be appended (bad columns, nulls in required columns, lost commits)."""


class IcebergRuntimeMissingError(CoattailError):
    """``iceberg.writer: spark`` was chosen but this Spark session has no Iceberg runtime."""


@dataclass(frozen=True)
class AppendOutcome:
    """Rows appended by one call, and whether the (writer, batch id) was already committed."""

    rows: int
    skipped: bool


@dataclass(frozen=True)
class CheckpointIdentity:
    """Who a writer's batch ids belong to: one streaming checkpoint (its batch ids start at 0).

    ``checkpoint_id`` is a UUID minted when the checkpoint is created (``pipeline.checkpoints``).
    ``legacy`` is true for a checkpoint that had already run batches when it got its id
    (written by a job before checkpoint ids): the writer's snapshots without a checkpoint id
    are then its own.
    """

    checkpoint_id: str
    legacy: bool = False

    def owns(self, snapshot_checkpoint: str | None) -> bool:
        """True when a snapshot recording ``snapshot_checkpoint`` (None: none) holds a batch of this checkpoint."""
        if snapshot_checkpoint is None:
            return self.legacy
        return snapshot_checkpoint == self.checkpoint_id


@dataclass(frozen=True)
class CompactionResult:
    """Data files matching the filter before and after a compaction, and the rows rewritten."""

    files_before: int
    files_after: int
    rows: int


def latest_batch_id(
    summaries: Sequence[Mapping[str, str | None]], writer: str, checkpoint: CheckpointIdentity | None = None
) -> int | None:
    """The batch id of the latest snapshot of ``writer`` and ``checkpoint``, given snapshot summaries oldest first.

    ``checkpoint`` None matches every snapshot of ``writer`` (a writer without checkpoint identity).
    """
    for summary in reversed(summaries):
        batch_id = summary.get(BATCH_ID_PROPERTY)
        if summary.get(WRITER_PROPERTY) != writer or batch_id is None:
            continue
        if checkpoint is None or checkpoint.owns(summary.get(CHECKPOINT_ID_PROPERTY)):
            return int(batch_id)
    return None


def checkpoint_batches(summaries: Sequence[Mapping[str, str | None]], writer: str) -> dict[str | None, int]:
    """Each checkpoint id that committed for ``writer`` (None: snapshots without one) -> its latest batch id.

    ``summaries`` oldest first; insertion order of the result is the order of each id's first commit.
    """
    batches: dict[str | None, int] = {}
    for summary in summaries:
        batch_id = summary.get(BATCH_ID_PROPERTY)
        if summary.get(WRITER_PROPERTY) == writer and batch_id is not None:
            batches[summary.get(CHECKPOINT_ID_PROPERTY)] = int(batch_id)
    return batches


def snapshot_properties(writer: str, batch_id: int, checkpoint: CheckpointIdentity | None) -> dict[str, str]:
    """The summary properties of ``writer``'s commit of ``batch_id`` (with the checkpoint id when known)."""
    properties = {WRITER_PROPERTY: writer, BATCH_ID_PROPERTY: str(batch_id)}
    if checkpoint is not None:
        properties[CHECKPOINT_ID_PROPERTY] = checkpoint.checkpoint_id
    return properties


def spark_snapshot_summaries(snapshots: DataFrame, writer: str) -> list[dict[str, str | None]]:
    """``writer``'s summaries (writer, batch id, checkpoint id) from Iceberg's ``<table>.snapshots``, oldest first.

    ``snapshots`` has the columns of Spark's Iceberg ``snapshots`` metadata table
    (``committed_at`` timestamp, ``summary`` map<string,string>, ...); it has no sequence
    number, so snapshots are ordered by commit time (then batch id). One Spark job, on the driver.
    """
    summary = F.col("summary")
    rows = (
        snapshots.where(summary[WRITER_PROPERTY] == F.lit(writer))
        .select(
            F.col("committed_at"),
            summary[BATCH_ID_PROPERTY].alias("batch_id"),
            summary[CHECKPOINT_ID_PROPERTY].alias("checkpoint_id"),
        )
        .orderBy(F.col("committed_at").asc(), F.col("batch_id").cast("long").asc())
        .collect()
    )
    return [
        {WRITER_PROPERTY: writer, BATCH_ID_PROPERTY: row["batch_id"], CHECKPOINT_ID_PROPERTY: row["checkpoint_id"]}
        for row in rows
    ]


def _check_columns(table: str, schema: StructType, rows: DataFrame) -> DataFrame:
    """``rows`` with exactly the declared columns, in order; raises naming missing or extra ones."""
    declared, present = schema.fieldNames(), rows.columns
    missing = [name for name in declared if name not in present]
    extra = [name for name in present if name not in declared]
    if missing or extra:
        raise IcebergWriteError(
            f"rows for Iceberg table {table!r} do not match its declared schema: missing {missing}, "
            f"undeclared {extra}; select exactly the declared columns before appending"
        )
    return rows.select(*declared)


def collect_arrow(rows: DataFrame) -> pa.Table:
    """``rows`` collected to the driver as Arrow (one Spark job)."""
    if hasattr(rows, "toArrow"):
        collected: pa.Table = rows.toArrow()
        return collected
    # PySpark 3.5 (EMR 7.x) has no DataFrame.toArrow.
    return pa.Table.from_pandas(rows.toPandas(), preserve_index=False)


def conform_arrow(table: str, schema: StructType, collected: pa.Table) -> pa.Table:
    """``collected`` cast to the table's Arrow schema (driver).

    Raises ``IcebergWriteError`` when a column declared non-nullable holds nulls.
    """
    target = to_arrow_schema(schema)
    for field in target:
        if not field.nullable and collected.column(field.name).null_count:
            raise IcebergWriteError(
                f"column {field.name!r} of Iceberg table {table!r} is required but "
                f"{collected.column(field.name).null_count} rows hold null; fix the producer of these rows"
            )
    columns = [collected.column(field.name).cast(field.type) for field in target]
    return pa.Table.from_arrays(columns, schema=target)


def to_table_arrow(table: str, schema: StructType, rows: DataFrame) -> pa.Table:
    """Collect ``rows`` to the driver as Arrow in the table's Arrow schema (driver); see ``conform_arrow``."""
    return conform_arrow(table, schema, collect_arrow(_check_columns(table, schema, rows)))


class IcebergSink:
    """Appends micro-batches to the configured catalog (driver; safe to share across queries)."""

    def __init__(self, config: CoattailConfig) -> None:
        self._config = config
        self._catalog: Catalog | None = None
        self._spark_tables: set[str] = set()
        self._lock = threading.Lock()
        self._expiry_checked_at: dict[str, float] = {}
        self._checkpoints: dict[str, CheckpointIdentity] = {}

    def use_checkpoint(self, writer: str, checkpoint: CheckpointIdentity) -> None:
        """From now on ``writer``'s commits record ``checkpoint`` and skip only its own committed batches (driver)."""
        with self._lock:
            self._checkpoints[writer] = checkpoint

    def checkpoint_of(self, writer: str) -> CheckpointIdentity | None:
        """The checkpoint registered for ``writer`` (None: none, the writer matches on its name alone)."""
        with self._lock:
            return self._checkpoints.get(writer)

    @property
    def iceberg(self) -> IcebergConfig:
        """The Iceberg section in use."""
        return self._config.iceberg

    @property
    def catalog(self) -> Catalog:
        """The pyiceberg catalog, opened on first use (Glue warehouse defaults to ``s3://<bucket>/warehouse``)."""
        with self._lock:
            if self._catalog is None:
                iceberg = self.iceberg
                if iceberg.catalog_type == "glue" and not iceberg.warehouse.startswith("s3://"):
                    iceberg = iceberg.model_copy(
                        update={"warehouse": f"s3://{self._config.storage.s3_bucket}/warehouse"}
                    )
                self._catalog = open_catalog(iceberg, self._config.aws)
            return self._catalog

    def spark_table_name(self, table: str) -> str:
        """``catalog.database.table`` as Spark's Iceberg catalog names it."""
        return f"{self.iceberg.catalog_name}.{self.iceberg.database}.{table}"

    def spark_ddl(self, table: str, schema: StructType, partition: Sequence[PartitionField]) -> str:
        """The ``CREATE TABLE IF NOT EXISTS`` the ``spark`` writer runs once per table."""
        return create_table_ddl(self.spark_table_name(table), schema, partition)

    def append(
        self,
        table: str,
        schema: StructType,
        partition: Sequence[PartitionField],
        rows: DataFrame,
        *,
        batch_id: int,
        writer: str,
    ) -> int:
        """Append ``rows`` (exactly ``schema``'s columns) to ``table``; 0 when already committed."""
        return self.write_batch(table, schema, partition, rows, batch_id=batch_id, writer=writer).rows

    @property
    def collects_to_driver(self) -> bool:
        """True with the ``pyiceberg`` writer: every append collects its rows to the driver."""
        return self.iceberg.writer != "spark"

    def write_batch(
        self,
        table: str,
        schema: StructType,
        partition: Sequence[PartitionField],
        rows: DataFrame,
        *,
        batch_id: int,
        writer: str,
    ) -> AppendOutcome:
        """``append``, also telling whether the batch was skipped as already committed."""
        if self.iceberg.writer == "spark":
            return self._spark_append(table, schema, partition, rows, batch_id=batch_id, writer=writer)
        return self.write_arrow(
            table, schema, partition, lambda: to_table_arrow(table, schema, rows), batch_id=batch_id, writer=writer
        )

    def write_arrow(
        self,
        table: str,
        schema: StructType,
        partition: Sequence[PartitionField],
        rows: pa.Table | Callable[[], pa.Table],
        *,
        batch_id: int,
        writer: str,
    ) -> AppendOutcome:
        """Append Arrow ``rows`` (or what the callable collects, only when needed) with pyiceberg (driver).

        ``rows`` holds at least the declared columns; they are cast to the table's schema.
        """
        if not self.collects_to_driver:
            raise IcebergWriteError("write_arrow appends with pyiceberg; iceberg.writer is 'spark': use write_batch")
        iceberg_table = self._load_or_create(table, schema, partition)
        if self._already_committed(iceberg_table, writer, batch_id):
            return AppendOutcome(0, skipped=True)
        arrow = rows() if callable(rows) else conform_arrow(table, schema, rows)
        if arrow.num_rows == 0:
            return AppendOutcome(0, skipped=False)
        properties = snapshot_properties(writer, batch_id, self.checkpoint_of(writer))

        def append(current: Table, refreshed: bool) -> AppendOutcome:
            if refreshed and self._already_committed(current, writer, batch_id):
                return AppendOutcome(0, skipped=True)  # the race was lost to a replay of this very batch
            current.append(arrow, snapshot_properties=properties)
            self._expire_if_due(table, current)
            return AppendOutcome(arrow.num_rows, skipped=False)

        return commit_retrying(
            iceberg_table,
            append,
            what=f"Iceberg {table}: commit of {writer} batch {batch_id}",
            gave_up=(
                f"Iceberg table {self.iceberg.database}.{table}: {writer} batch {batch_id} lost {COMMIT_ATTEMPTS} "
                "commit races in a row (each after pyiceberg's own commit.retry.num-retries); too many writers append "
                "to this table at once: reduce them or lengthen the trigger"
            ),
        )

    def expire_snapshots(self, table: str, *, now: datetime | None = None) -> ExpiryResult:
        """Expire ``table``'s snapshots its retention does not keep at ``now`` (UTC; default: now). Driver.

        The retention is ``iceberg.maintenance.retention_for(table)``; a commit that loses a
        race to an append is retried on the refreshed table. With ``iceberg.writer: spark``
        run Iceberg's ``expire_snapshots`` procedure on EMR instead.
        """
        if not self.collects_to_driver:
            raise IcebergWriteError(
                f"expire_snapshots() commits with pyiceberg; with iceberg.writer: spark run "
                f"CALL {self.iceberg.catalog_name}.system.expire_snapshots(table => '{self.iceberg.database}.{table}', "
                "retain_last => 1) on EMR"
            )
        iceberg_table = self.catalog.load_table((self.iceberg.database, table))
        return self._expire(table, iceberg_table, now or datetime.now(timezone.utc))

    def _expire(self, table: str, iceberg_table: Table, now: datetime) -> ExpiryResult:
        retention = self.iceberg.maintenance.retention_for(table)
        return commit_retrying(
            iceberg_table,
            lambda current, _refreshed: expire_table_snapshots(current, retention, now=now),
            what=f"Iceberg {table}: snapshot expiry",
            gave_up=(
                f"Iceberg table {self.iceberg.database}.{table}: snapshot expiry lost {COMMIT_ATTEMPTS} commit races "
                "to concurrent appends"
            ),
        )

    def _expire_if_due(self, table: str, iceberg_table: Table) -> None:
        """After an append: expire ``table``'s snapshots if its last check is ``expire_every_seconds`` old."""
        maintenance = self.iceberg.maintenance
        if not maintenance.enabled:
            return
        checked_now = time.monotonic()
        with self._lock:
            checked = self._expiry_checked_at.get(table)
            if checked is not None and checked_now - checked < maintenance.expire_every_seconds:
                return
            self._expiry_checked_at[table] = checked_now
        try:
            result = self._expire(table, iceberg_table, datetime.now(timezone.utc))
        except Exception as error:  # noqa: BLE001 - the batch is committed; the next check retries
            log.warning("Iceberg %s: snapshot expiry failed (%s); retried after the next append", table, error)
            with self._lock:
                self._expiry_checked_at.pop(table, None)
            return
        if result.expired:
            log.info(
                "Iceberg %s: expired %d snapshots, kept %d (%d manifest lists deleted)",
                table,
                result.expired,
                result.kept,
                result.manifest_lists_deleted,
            )

    def committed_batch(self, table: str, writer: str) -> int | None:
        """The batch id of the latest snapshot ``writer`` committed to ``table`` from its registered checkpoint.

        None when there is none (or no table). Without a registered checkpoint: the writer's latest snapshot's.
        """
        return latest_batch_id(self._summaries(table, writer), writer, self.checkpoint_of(writer))

    def checkpoint_batches(self, table: str, writer: str) -> dict[str | None, int]:
        """Each checkpoint id ``writer`` committed to ``table`` from -> its latest batch id (driver).

        None stands for snapshots written before checkpoint ids; empty when the table does not exist.
        """
        return checkpoint_batches(self._summaries(table, writer), writer)

    def _summaries(self, table: str, writer: str) -> list[Mapping[str, str | None]]:
        """``table``'s snapshot summaries (writer, batch and checkpoint ids), oldest first; [] without a table."""
        if self.iceberg.writer == "spark":
            spark = _active_session()
            name = self.spark_table_name(table)
            self._require_spark_catalog(spark)
            if not spark.catalog.tableExists(name):
                return []
            return list(self._spark_summaries(spark, name, writer))
        from pyiceberg.exceptions import NoSuchTableError

        try:
            iceberg_table = self.catalog.load_table((self.iceberg.database, table))
        except NoSuchTableError:
            return []
        return _summaries(iceberg_table)

    def compact(
        self, table: str, where: BooleanExpression | str | None = None, *, min_files: int = 2
    ) -> CompactionResult:
        """Rewrite the rows matching ``where`` (default: all) into as few files as the writer makes (driver).

        pyiceberg 0.12 has no ``rewrite_data_files``; this is a copy-on-write overwrite of
        the matching rows in one commit (it retries when a concurrent append wins). Scope
        it to closed partitions (e.g. ``"timestamp < '2024-08-09T00:00:00+00:00'"``) so it
        rewrites no more than needed; the rows are held in driver memory. Skipped when
        fewer than ``min_files`` data files match. On EMR (``iceberg.writer: spark``) use
        ``CALL <catalog>.system.rewrite_data_files(table => 'db.table')`` instead.
        """
        if self.iceberg.writer == "spark":
            raise IcebergWriteError(
                f"compact() rewrites with pyiceberg; with iceberg.writer: spark run "
                f"CALL {self.iceberg.catalog_name}.system.rewrite_data_files(table => "
                f"'{self.iceberg.database}.{table}') on EMR"
            )
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
            self.catalog.load_table((self.iceberg.database, table)),
            rewrite,
            what=f"Iceberg {table}: compaction",
            gave_up=(
                f"Iceberg table {self.iceberg.database}.{table}: compaction lost {COMMIT_ATTEMPTS} commit races to "
                "concurrent appends; run it on partitions no query writes any more"
            ),
        )

    def _load_or_create(self, table: str, schema: StructType, partition: Sequence[PartitionField]) -> Table:
        """The table, created from the declaration if missing (loading first: creating writes metadata)."""
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.catalog.load_table((self.iceberg.database, table))
        except NoSuchTableError:
            return ensure_table(self.catalog, (self.iceberg.database, table), schema, partition)

    def _already_committed(self, iceberg_table: Table, writer: str, batch_id: int) -> bool:
        committed = latest_batch_id(_summaries(iceberg_table), writer, self.checkpoint_of(writer))
        return committed is not None and committed >= batch_id

    def _spark_append(
        self,
        table: str,
        schema: StructType,
        partition: Sequence[PartitionField],
        rows: DataFrame,
        *,
        batch_id: int,
        writer: str,
    ) -> AppendOutcome:
        spark = rows.sparkSession
        name = self.spark_table_name(table)
        self._ensure_spark_table(spark, table, schema, partition)
        checkpoint = self.checkpoint_of(writer)
        committed = latest_batch_id(self._spark_summaries(spark, name, writer), writer, checkpoint)
        if committed is not None and committed >= batch_id:
            return AppendOutcome(0, skipped=True)
        selected = _check_columns(table, schema, rows).persist()
        try:
            count = selected.count()
            if count:
                append = selected.writeTo(name)
                for key, value in snapshot_properties(writer, batch_id, checkpoint).items():
                    append = append.option(f"snapshot-property.{key}", value)
                append.append()
        finally:
            selected.unpersist()
        return AppendOutcome(count, skipped=False)

    def _spark_unavailable(self) -> str:
        catalog = self.iceberg.catalog_name
        return (
            f"iceberg.writer is 'spark' but this Spark session has no Iceberg catalog {catalog!r}: run on EMR "
            f"with the Iceberg runtime and spark.sql.catalog.{catalog}=org.apache.iceberg.spark.SparkCatalog "
            "(plus its catalog-impl/warehouse settings), or set iceberg.writer: pyiceberg"
        )

    def _require_spark_catalog(self, spark: SparkSession) -> None:
        if not spark.conf.get(f"spark.sql.catalog.{self.iceberg.catalog_name}", None):
            raise IcebergRuntimeMissingError(self._spark_unavailable())

    def _ensure_spark_table(
        self, spark: SparkSession, table: str, schema: StructType, partition: Sequence[PartitionField]
    ) -> None:
        unavailable = self._spark_unavailable()
        self._require_spark_catalog(spark)
        with self._lock:
            if table in self._spark_tables:
                return
            try:
                spark.sql(self.spark_ddl(table, schema, partition))
            except Exception as error:
                reason = next(
                    (line.strip() for line in str(error).splitlines() if any(m in line for m in _MISSING_RUNTIME)), None
                )
                if reason is not None:
                    raise IcebergRuntimeMissingError(f"{unavailable} ({reason})") from error
                raise
            self._spark_tables.add(table)

    @staticmethod
    def _spark_summaries(spark: SparkSession, name: str, writer: str) -> list[dict[str, str | None]]:
        """``writer``'s snapshot summaries of Spark's Iceberg table ``name``, oldest first."""
        return spark_snapshot_summaries(spark.table(f"{name}.snapshots"), writer)


_SUMMARY_KEYS = (WRITER_PROPERTY, BATCH_ID_PROPERTY, CHECKPOINT_ID_PROPERTY)


def _summaries(iceberg_table: Table) -> list[Mapping[str, str | None]]:
    """The writer, batch and checkpoint ids of every snapshot of ``iceberg_table``, oldest (sequence number) first."""
    return [
        {key: snapshot.summary.get(key) for key in _SUMMARY_KEYS} if snapshot.summary else {}
        for snapshot in sorted(iceberg_table.snapshots(), key=lambda snapshot: snapshot.sequence_number or 0)
    ]


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


def _active_session() -> SparkSession:
    session = SparkSession.getActiveSession()
    if session is None:
        raise IcebergRuntimeMissingError("iceberg.writer is 'spark' but no SparkSession is active in this process")
    return session
