"""``SparkIcebergWriter`` (``iceberg.writer: spark``): batches appended by Spark's own Iceberg writer (EMR).

Runs on the Spark driver, inside ``foreachBatch``; the rows are written by the executors
(``DataFrame.writeTo(...).append()``), after ``CREATE TABLE IF NOT EXISTS`` once per table.
Needs the Iceberg Spark runtime and a Spark catalog named ``iceberg.catalog_name`` (EMR);
without them the writer raises ``IcebergRuntimeMissingError``. The exactly-once check reads
Iceberg's ``<table>.snapshots`` metadata table, ordered by ``committed_at`` (UTC). Snapshot
expiry and compaction are not done here: run Iceberg's ``expire_snapshots`` and
``rewrite_data_files`` procedures on EMR.

Example (driver, EMR)::

    writer = SparkIcebergWriter(config.iceberg)
    writer.write_batch(AppendTarget("alerts", BASE_ALERT_RECORD, (day("detected_at"),), 7, "detector-whale"), alerts)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from coattail_framework.iceberg import create_table_ddl
from coattail_framework.partitioning import PartitionField
from coattail_framework.sinks.iceberg.idempotency import (
    BATCH_ID_PROPERTY,
    CHECKPOINT_ID_PROPERTY,
    already_committed,
    snapshot_properties,
)
from coattail_framework.sinks.iceberg.table_writer import (
    AppendOutcome,
    AppendTarget,
    IcebergRuntimeMissingError,
    IcebergWriteError,
    select_declared_columns,
)
from coattail_framework.sinks.retention import WRITER_PROPERTY

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.expressions import BooleanExpression

    from coattail_framework.config.model import IcebergConfig

_MISSING_RUNTIME = ("Cannot find catalog plugin class", "CATALOG_PLUGIN_CLASS_NOT_FOUND", "ClassNotFoundException")
"""Markers of Spark's errors when the Iceberg catalog class is not on the classpath."""


def spark_table_name(iceberg: IcebergConfig, table: str) -> str:
    """``catalog.database.table`` as Spark's Iceberg catalog names it."""
    return f"{iceberg.catalog_name}.{iceberg.database}.{table}"


def spark_table_ddl(iceberg: IcebergConfig, table: str, schema: StructType, partition: Sequence[PartitionField]) -> str:
    """The ``CREATE TABLE IF NOT EXISTS`` of ``table`` in Spark's Iceberg catalog (run once per table)."""
    return create_table_ddl(spark_table_name(iceberg, table), schema, partition)


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


def active_session() -> SparkSession:
    """This process's active SparkSession; ``IcebergRuntimeMissingError`` when there is none."""
    session = SparkSession.getActiveSession()
    if session is None:
        raise IcebergRuntimeMissingError("iceberg.writer is 'spark' but no SparkSession is active in this process")
    return session


class SparkIcebergWriter:
    """``TableWriter`` appending with Spark's Iceberg runtime (driver; safe to share across queries)."""

    collects_to_driver = False

    def __init__(self, iceberg: IcebergConfig) -> None:
        self._iceberg = iceberg
        self._created: set[str] = set()
        self._lock = threading.Lock()

    def write_batch(self, target: AppendTarget, rows: DataFrame) -> AppendOutcome:
        """Append ``rows`` with ``writeTo(...).append()`` and the batch's snapshot properties, unless committed."""
        table, writer, batch_id, checkpoint = target.table, target.writer, target.batch_id, target.checkpoint
        spark = rows.sparkSession
        name = spark_table_name(self._iceberg, table)
        self._ensure_table(spark, table, target.schema, target.partition)
        if already_committed(self._summaries(spark, name, writer), writer, batch_id, checkpoint):
            return AppendOutcome(0, skipped=True)
        selected = select_declared_columns(table, target.schema, rows).persist()
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

    def write_arrow(self, target: AppendTarget, rows: pa.Table | Callable[[], pa.Table]) -> NoReturn:
        """Refused: Arrow rows are appended with pyiceberg."""
        raise IcebergWriteError(
            f"Iceberg {target.table}: {target.writer} batch {target.batch_id}: Arrow rows are appended with "
            "pyiceberg and iceberg.writer is 'spark'; append a Spark DataFrame"
        )

    def summaries(self, table: str, writer: str) -> list[Mapping[str, str | None]]:
        """``writer``'s snapshot summaries of ``table`` in the active session, oldest first; [] without a table."""
        spark = active_session()
        name = spark_table_name(self._iceberg, table)
        self._require_catalog(spark)
        if not spark.catalog.tableExists(name):
            return []
        return list(self._summaries(spark, name, writer))

    def expire_snapshots(self, table: str, now: datetime) -> NoReturn:
        """Refused: expiry commits with pyiceberg; the error names the EMR procedure to run instead."""
        raise IcebergWriteError(
            f"expire_snapshots() commits with pyiceberg; with iceberg.writer: spark run "
            f"CALL {self._iceberg.catalog_name}.system.expire_snapshots(table => '{self._iceberg.database}.{table}', "
            "retain_last => 1) on EMR"
        )

    def compact(self, table: str, where: BooleanExpression | str | None, min_files: int) -> NoReturn:
        """Refused: compaction rewrites with pyiceberg; the error names the EMR procedure to run instead."""
        raise IcebergWriteError(
            f"compact() rewrites with pyiceberg; with iceberg.writer: spark run "
            f"CALL {self._iceberg.catalog_name}.system.rewrite_data_files(table => "
            f"'{self._iceberg.database}.{table}') on EMR"
        )

    def _unavailable(self) -> str:
        catalog = self._iceberg.catalog_name
        return (
            f"iceberg.writer is 'spark' but this Spark session has no Iceberg catalog {catalog!r}: run on EMR "
            f"with the Iceberg runtime and spark.sql.catalog.{catalog}=org.apache.iceberg.spark.SparkCatalog "
            "(plus its catalog-impl/warehouse settings), or set iceberg.writer: pyiceberg"
        )

    def ensure(self, table: str, schema: StructType, partition: Sequence[PartitionField]) -> None:
        """Create ``table`` from its declaration if it does not exist (driver; Spark's Iceberg runtime)."""
        self._ensure_table(active_session(), table, schema, partition)

    def _require_catalog(self, spark: SparkSession) -> None:
        if not spark.conf.get(f"spark.sql.catalog.{self._iceberg.catalog_name}", None):
            raise IcebergRuntimeMissingError(self._unavailable())

    def _ensure_table(
        self, spark: SparkSession, table: str, schema: StructType, partition: Sequence[PartitionField]
    ) -> None:
        unavailable = self._unavailable()
        self._require_catalog(spark)
        with self._lock:
            if table in self._created:
                return
            try:
                spark.sql(spark_table_ddl(self._iceberg, table, schema, partition))
            except Exception as error:
                reason = next(
                    (line.strip() for line in str(error).splitlines() if any(m in line for m in _MISSING_RUNTIME)), None
                )
                if reason is not None:
                    raise IcebergRuntimeMissingError(f"{unavailable} ({reason})") from error
                raise
            self._created.add(table)

    @staticmethod
    def _summaries(spark: SparkSession, name: str, writer: str) -> list[dict[str, str | None]]:
        """``writer``'s snapshot summaries of Spark's Iceberg table ``name``, oldest first."""
        return spark_snapshot_summaries(spark.table(f"{name}.snapshots"), writer)
