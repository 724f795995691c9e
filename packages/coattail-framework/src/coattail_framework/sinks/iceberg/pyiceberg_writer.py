"""``PyIcebergWriter`` (``iceberg.writer: pyiceberg``, the default): batches appended as Arrow with pyiceberg.

Runs on the Spark driver, inside ``foreachBatch``: the batch is collected to Arrow on the
driver (one Spark job), cast to the table's Arrow schema (Spark timestamps become
``timestamp[us, tz=UTC]``, required columns non-nullable) and appended with
``Table.append``. Works with the embedded SQLite catalog and with Glue + S3.

Several queries may append to one table (``alerts`` receives every detector's alerts):
pyiceberg first retries a commit that lost a race itself (table property
``commit.retry.num-retries``, reusing the written files); when those retries run out the
writer refreshes the table, re-checks idempotency and appends again (``commit_retrying``).
After a successful append the table's snapshots are expired when due (``SnapshotExpiry``).

Example (driver)::

    writer = PyIcebergWriter(config.iceberg, LazyCatalog(config))
    writer.write_arrow(AppendTarget("orders", ORDERS, (), batch_id=7, writer="detector-whale"), arrow_rows)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa
from pyiceberg.expressions import BooleanExpression
from pyspark.sql import DataFrame
from pyspark.sql.types import StructType

from coattail_framework.iceberg import ensure_table, open_catalog, to_arrow_schema
from coattail_framework.partitioning import PartitionField
from coattail_framework.sinks.iceberg.idempotency import (
    SUMMARY_KEYS,
    already_committed,
    snapshot_properties,
)
from coattail_framework.sinks.iceberg.maintenance import (
    COMMIT_ATTEMPTS,
    CompactionResult,
    SnapshotExpiry,
    commit_retrying,
    compact_table,
)
from coattail_framework.sinks.iceberg.table_writer import (
    AppendOutcome,
    AppendTarget,
    IcebergWriteError,
    select_declared_columns,
)
from coattail_framework.sinks.retention import ExpiryResult

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from coattail_framework.config.model import CoattailConfig, IcebergConfig


class LazyCatalog:
    """The configuration's pyiceberg catalog, opened on first use (driver; thread-safe).

    A Glue catalog whose ``iceberg.warehouse`` is not an ``s3://`` URI gets ``s3://<storage.s3_bucket>/warehouse``.
    """

    def __init__(self, config: CoattailConfig) -> None:
        self._config = config
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()

    def get(self) -> Catalog:
        """The catalog, opened now if this is its first use."""
        with self._lock:
            if self._catalog is None:
                iceberg = self._config.iceberg
                if iceberg.catalog_type == "glue" and not iceberg.warehouse.startswith("s3://"):
                    iceberg = iceberg.model_copy(
                        update={"warehouse": f"s3://{self._config.storage.s3_bucket}/warehouse"}
                    )
                self._catalog = open_catalog(iceberg, self._config.aws)
            return self._catalog


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
    return conform_arrow(table, schema, collect_arrow(select_declared_columns(table, schema, rows)))


def table_summaries(iceberg_table: Table) -> list[Mapping[str, str | None]]:
    """The writer, batch and checkpoint ids of every snapshot of ``iceberg_table``, oldest (sequence number) first."""
    return [
        {key: snapshot.summary.get(key) for key in SUMMARY_KEYS} if snapshot.summary else {}
        for snapshot in sorted(iceberg_table.snapshots(), key=lambda snapshot: snapshot.sequence_number or 0)
    ]


class PyIcebergWriter:
    """``TableWriter`` appending Arrow batches with pyiceberg (driver; safe to share across queries)."""

    collects_to_driver = True

    def __init__(self, iceberg: IcebergConfig, catalog: LazyCatalog) -> None:
        self._iceberg = iceberg
        self._catalog = catalog
        self._expiry = SnapshotExpiry(iceberg)

    def write_batch(self, target: AppendTarget, rows: DataFrame) -> AppendOutcome:
        """``write_arrow`` of ``rows`` collected to the driver, only once the batch is known not to be committed."""
        return self.write_arrow(target, lambda: to_table_arrow(target.table, target.schema, rows))

    def write_arrow(self, target: AppendTarget, rows: pa.Table | Callable[[], pa.Table]) -> AppendOutcome:
        """Append Arrow ``rows`` (at least the declared columns, cast to the table's schema).

        A callable instead of rows is called only once the batch is known not to be committed.
        """
        table, writer, batch_id, checkpoint = target.table, target.writer, target.batch_id, target.checkpoint
        iceberg_table = self._load_or_create(table, target.schema, target.partition)
        if already_committed(table_summaries(iceberg_table), writer, batch_id, checkpoint):
            return AppendOutcome(0, skipped=True)
        arrow = rows() if callable(rows) else conform_arrow(table, target.schema, rows)
        if arrow.num_rows == 0:
            return AppendOutcome(0, skipped=False)
        properties = snapshot_properties(writer, batch_id, checkpoint)

        def append(current: Table, refreshed: bool) -> AppendOutcome:
            if refreshed and already_committed(table_summaries(current), writer, batch_id, checkpoint):
                return AppendOutcome(0, skipped=True)  # the race was lost to a replay of this very batch
            current.append(arrow, snapshot_properties=properties)
            self._expiry.expire_if_due(table, current)
            return AppendOutcome(arrow.num_rows, skipped=False)

        return commit_retrying(
            iceberg_table,
            append,
            what=f"Iceberg {table}: commit of {writer} batch {batch_id}",
            gave_up=(
                f"Iceberg table {self._iceberg.database}.{table}: {writer} batch {batch_id} lost {COMMIT_ATTEMPTS} "
                "commit races in a row (each after pyiceberg's own commit.retry.num-retries); too many writers append "
                "to this table at once: reduce them or lengthen the trigger"
            ),
        )

    def summaries(self, table: str, writer: str) -> list[Mapping[str, str | None]]:
        """``table``'s snapshot summaries, oldest first; [] when the table does not exist."""
        from pyiceberg.exceptions import NoSuchTableError

        try:
            iceberg_table = self._catalog.get().load_table((self._iceberg.database, table))
        except NoSuchTableError:
            return []
        return table_summaries(iceberg_table)

    def expire_snapshots(self, table: str, now: datetime) -> ExpiryResult:
        """Expire ``table``'s snapshots its retention does not keep at ``now`` (UTC); see ``SnapshotExpiry``."""
        iceberg_table = self._catalog.get().load_table((self._iceberg.database, table))
        return self._expiry.expire(table, iceberg_table, now)

    def compact(self, table: str, where: BooleanExpression | str | None, min_files: int) -> CompactionResult:
        """Rewrite the rows matching ``where`` in one commit; see ``maintenance.compact_table``."""
        iceberg_table = self._catalog.get().load_table((self._iceberg.database, table))
        return compact_table(iceberg_table, self._iceberg.database, table, where, min_files=min_files)

    def ensure(self, table: str, schema: StructType, partition: Sequence[PartitionField]) -> None:
        """Create ``table`` from its declaration if it does not exist (driver)."""
        self._load_or_create(table, schema, partition)

    def _load_or_create(self, table: str, schema: StructType, partition: Sequence[PartitionField]) -> Table:
        """The table, created from the declaration if missing (loading first: creating writes metadata)."""
        from pyiceberg.exceptions import NoSuchTableError

        catalog = self._catalog.get()
        try:
            return catalog.load_table((self._iceberg.database, table))
        except NoSuchTableError:
            return ensure_table(catalog, (self._iceberg.database, table), schema, partition)
