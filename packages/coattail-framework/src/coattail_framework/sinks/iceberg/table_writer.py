"""``TableWriter``: what ``IcebergSink`` asks of an Iceberg writer, and what both writers share.

One writer per sink, chosen once from ``iceberg.writer`` (``PyIcebergWriter`` for
``pyiceberg``, ``SparkIcebergWriter`` for ``spark``). Every method runs on the Spark
driver, inside ``foreachBatch`` or from a batch command; none is sent to executors.
Times passed in (``now``) are UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from coattail_framework.errors import CoattailError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.expressions import BooleanExpression
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from coattail_framework.partitioning import PartitionField
    from coattail_framework.sinks.iceberg.idempotency import CheckpointIdentity
    from coattail_framework.sinks.iceberg.maintenance import CompactionResult
    from coattail_framework.sinks.retention import ExpiryResult


class IcebergWriteError(CoattailError):
    """A batch could not be appended (bad columns, nulls in required columns, lost commits)."""


class IcebergRuntimeMissingError(CoattailError):
    """``iceberg.writer: spark`` was chosen but this Spark session has no Iceberg runtime."""


@dataclass(frozen=True)
class AppendTarget:
    """Where one micro-batch goes and who appends it: what makes the append create its table and run once.

    ``table`` is created on first write from ``schema`` and ``partition``; ``writer`` is the
    streaming query's name and ``checkpoint`` the identity registered for it (None: the
    writer's snapshots match on its name alone); ``batch_id`` is the micro-batch's id.
    """

    table: str
    schema: StructType
    partition: Sequence[PartitionField]
    batch_id: int
    writer: str
    checkpoint: CheckpointIdentity | None = None


@dataclass(frozen=True)
class AppendOutcome:
    """Rows appended by one call, and whether the (writer, batch id) was already committed."""

    rows: int
    skipped: bool


class TableWriter(Protocol):
    """Appends micro-batches to Iceberg tables exactly once per (writer, checkpoint, batch id). Driver only.

    Each append names its ``AppendTarget``: the table (created on first write) and the
    (writer, checkpoint, batch id) whose snapshot it would be.
    """

    @property
    def collects_to_driver(self) -> bool:
        """True when every append collects its rows to the driver (Arrow), false when Spark writes them."""
        ...

    def ensure(self, table: str, schema: StructType, partition: Sequence[PartitionField]) -> None:
        """Create ``table`` from its declaration if it does not exist (driver)."""
        ...

    def write_batch(self, target: AppendTarget, rows: DataFrame) -> AppendOutcome:
        """Append ``rows`` (exactly the target schema's columns) unless the batch is already committed."""
        ...

    def write_arrow(self, target: AppendTarget, rows: pa.Table | Callable[[], pa.Table]) -> AppendOutcome:
        """Append Arrow ``rows`` (or what the callable collects, only when needed); pyiceberg only."""
        ...

    def summaries(self, table: str, writer: str) -> list[Mapping[str, str | None]]:
        """``table``'s snapshot summaries (writer, batch and checkpoint ids), oldest first; [] without a table."""
        ...

    def expire_snapshots(self, table: str, now: datetime) -> ExpiryResult:
        """Expire ``table``'s snapshots its retention does not keep at ``now`` (UTC)."""
        ...

    def compact(self, table: str, where: BooleanExpression | str | None, min_files: int) -> CompactionResult:
        """Rewrite the rows matching ``where`` (None: all) into as few files as the writer makes."""
        ...


def select_declared_columns(table: str, schema: StructType, rows: DataFrame) -> DataFrame:
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
