"""Cold storage: micro-batches appended to Iceberg tables, exactly once per (writer, batch id).

Runs on the Spark driver, inside ``foreachBatch``. ``IcebergSink`` is what the router and
the pipeline call; tables live in ``iceberg.database`` and are created on first write from
the declared Spark schema and partition fields (``coattail_framework.iceberg``). The sink
picks one ``TableWriter`` when it is built, from ``iceberg.writer``:

- ``pyiceberg`` (default): ``pyiceberg_writer.PyIcebergWriter``, the batch collected to
  Arrow on the driver and appended with ``Table.append`` (SQLite catalog or Glue + S3).
- ``spark``: ``spark_writer.SparkIcebergWriter``, Spark's own Iceberg writer (EMR); without
  the Iceberg runtime it raises ``IcebergRuntimeMissingError``.

The parts, one concern each:

- ``table_writer``: the ``TableWriter`` protocol, ``AppendTarget``, ``AppendOutcome``, the errors.
- ``idempotency``: the snapshot properties (``coattail.writer``, ``coattail.batch-id``,
  ``coattail.checkpoint-id``) and the skip decision (ADR-028). The writer's checkpoint is
  registered with ``use_checkpoint`` (the stream job's ``PipelineRunner`` does it at start);
  a writer with no registered checkpoint (tests, ``reprocess``) compares with its latest
  snapshot whatever its checkpoint.
- ``maintenance``: lost commit races retried (``commit_retrying``, at most
  ``COMMIT_ATTEMPTS`` tries), snapshot expiry after appends (``iceberg.maintenance``, at
  most every ``expire_every_seconds`` per table; a failed expiry never fails the batch),
  compaction.

Example (driver)::

    sink = IcebergSink(config)
    outcome = sink.append("raw_trades", UNIFIED_TRADE_EVENT, (day("timestamp"), identity("exchange")),
                          valid_trades, batch_id=batch_id, writer="ingest")
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
from pyiceberg.expressions import BooleanExpression
from pyspark.sql import DataFrame
from pyspark.sql.types import StructType

from coattail_framework.partitioning import PartitionField
from coattail_framework.sinks.iceberg.idempotency import (
    BATCH_ID_PROPERTY,
    CHECKPOINT_ID_PROPERTY,
    CheckpointIdentity,
    checkpoint_batches,
    latest_batch_id,
)
from coattail_framework.sinks.iceberg.maintenance import (
    COMMIT_ATTEMPTS,
    COMMIT_MAX_DELAY_S,
    CompactionResult,
    commit_retrying,
)
from coattail_framework.sinks.iceberg.pyiceberg_writer import (
    LazyCatalog,
    PyIcebergWriter,
    collect_arrow,
    to_table_arrow,
)
from coattail_framework.sinks.iceberg.spark_writer import (
    SparkIcebergWriter,
    spark_snapshot_summaries,
    spark_table_ddl,
    spark_table_name,
)
from coattail_framework.sinks.iceberg.table_writer import (
    AppendOutcome,
    AppendTarget,
    IcebergRuntimeMissingError,
    IcebergWriteError,
    TableWriter,
)
from coattail_framework.sinks.retention import ExpiryResult

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from coattail_framework.config.model import CoattailConfig, IcebergConfig

__all__ = [
    "BATCH_ID_PROPERTY",
    "CHECKPOINT_ID_PROPERTY",
    "COMMIT_ATTEMPTS",
    "COMMIT_MAX_DELAY_S",
    "AppendOutcome",
    "AppendTarget",
    "CheckpointIdentity",
    "CompactionResult",
    "IcebergRuntimeMissingError",
    "IcebergSink",
    "IcebergWriteError",
    "PyIcebergWriter",
    "SparkIcebergWriter",
    "TableWriter",
    "checkpoint_batches",
    "collect_arrow",
    "commit_retrying",
    "latest_batch_id",
    "spark_snapshot_summaries",
    "to_table_arrow",
]


def choose_writer(config: CoattailConfig, catalog: LazyCatalog) -> TableWriter:
    """The writer ``iceberg.writer`` names: ``spark`` -> ``SparkIcebergWriter``, else ``PyIcebergWriter``."""
    if config.iceberg.writer == "spark":
        return SparkIcebergWriter(config.iceberg)
    return PyIcebergWriter(config.iceberg, catalog)


class IcebergSink:
    """Appends micro-batches to the configured catalog (driver; safe to share across queries)."""

    def __init__(self, config: CoattailConfig) -> None:
        self._config = config
        self._catalog = LazyCatalog(config)
        self._writer = choose_writer(config, self._catalog)
        self._lock = threading.Lock()
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
        return self._catalog.get()

    def spark_table_name(self, table: str) -> str:
        """``catalog.database.table`` as Spark's Iceberg catalog names it."""
        return spark_table_name(self.iceberg, table)

    def spark_ddl(self, table: str, schema: StructType, partition: Sequence[PartitionField]) -> str:
        """The ``CREATE TABLE IF NOT EXISTS`` the ``spark`` writer runs once per table."""
        return spark_table_ddl(self.iceberg, table, schema, partition)

    def ensure(self, table: str, schema: StructType, partition: Sequence[PartitionField]) -> None:
        """Create ``table`` from its declaration if it does not exist (driver): before a query reads it."""
        self._writer.ensure(table, schema, partition)

    def append(
        self,
        table: str,
        schema: StructType,
        partition: Sequence[PartitionField],
        rows: DataFrame | pa.Table | Callable[[], pa.Table],
        *,
        batch_id: int,
        writer: str,
    ) -> AppendOutcome:
        """Append ``rows`` to ``table`` as ``writer``'s batch ``batch_id``, unless that batch is already committed.

        A DataFrame holds exactly ``schema``'s columns (any ``iceberg.writer``). Arrow rows, or
        a callable that collects them (called only when the batch is not committed), hold at
        least the declared columns, cast to the table's schema; they need the ``pyiceberg``
        writer (``IcebergWriteError`` with ``spark``). The table is created on first write.
        """
        target = AppendTarget(table, schema, tuple(partition), batch_id, writer, self.checkpoint_of(writer))
        if isinstance(rows, DataFrame):
            return self._writer.write_batch(target, rows)
        if isinstance(rows, pa.Table) or callable(rows):
            return self._writer.write_arrow(target, rows)
        raise IcebergWriteError(
            f"Iceberg {table}: {writer} batch {batch_id}: rows must be a Spark DataFrame, a pyarrow Table or a "
            f"callable returning one, not {type(rows).__name__}"
        )

    @property
    def collects_to_driver(self) -> bool:
        """True with the ``pyiceberg`` writer: every append collects its rows to the driver."""
        return self._writer.collects_to_driver

    def expire_snapshots(self, table: str, *, now: datetime | None = None) -> ExpiryResult:
        """Expire ``table``'s snapshots its retention does not keep at ``now`` (UTC; default: now). Driver.

        The retention is ``iceberg.maintenance.retention_for(table)``; a commit that loses a
        race to an append is retried on the refreshed table. With ``iceberg.writer: spark``
        run Iceberg's ``expire_snapshots`` procedure on EMR instead (the error says how).
        """
        return self._writer.expire_snapshots(table, now or datetime.now(UTC))

    def committed_batch(self, table: str, writer: str) -> int | None:
        """The batch id of the latest snapshot ``writer`` committed to ``table`` from its registered checkpoint.

        None when there is none (or no table). Without a registered checkpoint: the writer's latest snapshot's.
        """
        return latest_batch_id(self._writer.summaries(table, writer), writer, self.checkpoint_of(writer))

    def checkpoint_batches(self, table: str, writer: str) -> dict[str | None, int]:
        """Each checkpoint id ``writer`` committed to ``table`` from -> its latest batch id (driver).

        None stands for snapshots written before checkpoint ids; empty when the table does not exist.
        """
        return checkpoint_batches(self._writer.summaries(table, writer), writer)

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
        return self._writer.compact(table, where, min_files)
