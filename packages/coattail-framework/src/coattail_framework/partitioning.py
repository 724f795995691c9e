"""How a detector declares the Iceberg partition spec of its output table.

Pure declarations: ``coattail_framework.iceberg`` turns them into Spark SQL DDL and into
pyiceberg ``PartitionSpec`` objects, so one declaration serves Glue/EMR and the local
catalog alike.

Example::

    >>> spec = (day("detected_at"), identity("symbol"))
    >>> [field.sql() for field in spec]
    ['days(detected_at)', 'symbol']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Transform = Literal["identity", "year", "month", "day", "hour", "bucket", "truncate"]


@dataclass(frozen=True)
class PartitionField:
    """One partition field: a transform applied to a top-level source column."""

    source: str
    transform: Transform = "identity"
    width: int | None = None
    """Bucket count for ``bucket``, width for ``truncate``; unused otherwise."""

    def __post_init__(self) -> None:
        needs_width = self.transform in ("bucket", "truncate")
        if needs_width and (self.width is None or self.width <= 0):
            raise ValueError(f"partition {self.transform}({self.source}) needs a positive width")
        if not needs_width and self.width is not None:
            raise ValueError(f"partition {self.transform}({self.source}) takes no width")

    @property
    def name(self) -> str:
        """The partition field's name, as Iceberg's Spark DDL would derive it."""
        return self.source if self.transform == "identity" else f"{self.source}_{self.transform}"

    def sql(self) -> str:
        """The field as written in ``PARTITIONED BY (...)`` of Iceberg's Spark DDL."""
        if self.transform == "identity":
            return self.source
        if self.transform in ("bucket", "truncate"):
            return f"{self.transform}({self.width}, {self.source})"
        return f"{self.transform}s({self.source})"


def identity(source: str) -> PartitionField:
    """Partition by the column's value."""
    return PartitionField(source, "identity")


def day(source: str) -> PartitionField:
    """Partition a timestamp column by UTC day."""
    return PartitionField(source, "day")


def hour(source: str) -> PartitionField:
    """Partition a timestamp column by UTC hour."""
    return PartitionField(source, "hour")


def month(source: str) -> PartitionField:
    """Partition a timestamp column by UTC month."""
    return PartitionField(source, "month")


def bucket(source: str, buckets: int) -> PartitionField:
    """Partition by a hash of the column into ``buckets`` buckets."""
    return PartitionField(source, "bucket", buckets)


def truncate(source: str, width: int) -> PartitionField:
    """Partition by the column truncated to ``width`` (characters or units)."""
    return PartitionField(source, "truncate", width)
