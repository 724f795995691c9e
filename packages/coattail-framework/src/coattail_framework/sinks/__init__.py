"""Where micro-batches go: DynamoDB (hot alerts) and Iceberg (everything, cold).

- ``AlertRouter``: alerts to DynamoDB from the executors and to the Iceberg ``alerts``
  table; module outputs to their own Iceberg tables.
- ``IcebergSink``: idempotent appends per (writer, batch id), pyiceberg or Spark's writer.
- ``DynamoAlertWriter``: conditional puts with throttling retries, run on executors.
"""

from coattail_framework.sinks.dynamodb import AlertWriteError, DynamoAlertWriter, WriteCounts
from coattail_framework.sinks.iceberg import (
    AppendOutcome,
    CompactionResult,
    IcebergRuntimeMissingError,
    IcebergSink,
    IcebergWriteError,
)
from coattail_framework.sinks.router import ALERTS_TABLE, AlertRouter, DetectorBatchResult, RouteResult

__all__ = [
    "ALERTS_TABLE",
    "AlertRouter",
    "AlertWriteError",
    "AppendOutcome",
    "CompactionResult",
    "DetectorBatchResult",
    "DynamoAlertWriter",
    "IcebergRuntimeMissingError",
    "IcebergSink",
    "IcebergWriteError",
    "RouteResult",
    "WriteCounts",
]
