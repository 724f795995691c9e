"""Run one detector on lists of events as a stream and collect what it emits.

Runs on the driver of a (test) SparkSession. Each list becomes one Parquet file and one
micro-batch (``maxFilesPerTrigger=1``, ``availableNow``), in order, so a test controls
exactly which events share a batch and how the watermark advances between batches.
Spark runs a final no-data batch when the watermark moved, so windows the last watermark
closed are emitted; state the watermark has not passed yet stays unemitted, as in
production.

Example::

    run = run_detector_stream(spark, detector, [[trade(...), trade(...)], [trade(...)]], tmp_path)
    assert [row.notional for row in run.outputs] == [847_000.0]
    assert run.alerts[0].severity == "high"
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from coattail_framework.events import TradeEvent
from coattail_framework.iceberg import to_arrow_schema
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

if TYPE_CHECKING:
    from coattail_framework.detector import BaseDetector

EventLike = TradeEvent | Mapping[str, Any]
"""A ``TradeEvent`` or a raw row (for invalid or null fields) keyed by column name."""


@dataclass
class DetectorRun:
    """What one run emitted: module output rows and alert rows, per micro-batch and in total."""

    outputs_by_batch: dict[int, list[Row]] = field(default_factory=dict)
    alerts_by_batch: dict[int, list[Row]] = field(default_factory=dict)

    @property
    def outputs(self) -> list[Row]:
        """Every output row, in batch order."""
        return [row for batch in sorted(self.outputs_by_batch) for row in self.outputs_by_batch[batch]]

    @property
    def alerts(self) -> list[Row]:
        """Every alert row, in batch order."""
        return [row for batch in sorted(self.alerts_by_batch) for row in self.alerts_by_batch[batch]]


def _row(event: EventLike) -> dict[str, Any]:
    if isinstance(event, TradeEvent):
        values = event.model_dump()
        for name in ("price", "quantity", "quote_volume"):
            values[name] = float(values[name])
        return values
    return {name: event.get(name) for name in UNIFIED_TRADE_EVENT.fieldNames()}


def write_event_batches(batches: Sequence[Sequence[EventLike]], folder: Path) -> Path:
    """One Parquet file of ``UNIFIED_TRADE_EVENT`` rows per batch, ordered by name and mtime."""
    folder.mkdir(parents=True, exist_ok=True)
    schema = to_arrow_schema(UNIFIED_TRADE_EVENT)
    for index, batch in enumerate(batches):
        path = folder / f"batch-{index:05d}.parquet"
        table = pa.Table.from_pylist([_row(event) for event in batch], schema=schema)
        pq.write_table(table, path)
        stamp = 1_000_000_000 + index
        os.utime(path, (stamp, stamp))
    return folder


def event_stream(spark: SparkSession, folder: Path) -> DataFrame:
    """A streaming DataFrame over the batch files, one file per micro-batch."""
    return spark.readStream.schema(UNIFIED_TRADE_EVENT).option("maxFilesPerTrigger", 1).parquet(str(folder))


def run_detector_stream(
    spark: SparkSession,
    detector: BaseDetector[Any],
    batches: Sequence[Sequence[EventLike]],
    workdir: Path,
) -> DetectorRun:
    """Stream ``batches`` through ``detector.process`` then ``build_alerts`` per micro-batch."""
    events = event_stream(spark, write_event_batches(batches, workdir / "input"))
    run = DetectorRun()

    def collect(batch: DataFrame, batch_id: int) -> None:
        batch = batch.persist()
        run.outputs_by_batch[batch_id] = batch.collect()
        run.alerts_by_batch[batch_id] = detector.build_alerts(batch).collect()
        batch.unpersist()

    query = (
        detector.process(events)
        .writeStream.outputMode("append")
        .foreachBatch(collect)
        .trigger(availableNow=True)
        .option("checkpointLocation", str(workdir / "checkpoint"))
        .start()
    )
    return _finish(query, detector, run)


def run_early_stream(
    spark: SparkSession,
    detector: BaseDetector[Any],
    batches: Sequence[Sequence[EventLike]],
    workdir: Path,
) -> DetectorRun:
    """Stream ``batches`` through the job's early-query handler; collects the alerts it would put.

    The carry between batches is the job's own (``EarlyAlertHandler``). ``alerts_by_batch``
    holds one entry per put, in batch order (the handler puts once per batch when the
    detector has an early path); ``outputs_by_batch`` stays empty (no module rows).
    """
    from coattail_framework.pipeline.early import EarlyAlertHandler
    from coattail_framework.sinks.dynamodb import WriteCounts

    events = event_stream(spark, write_event_batches(batches, workdir / "input"))
    run = DetectorRun()
    batch_ids = iter(range(len(batches)))

    def collect(alerts: DataFrame) -> WriteCounts:
        rows = alerts.collect()
        run.alerts_by_batch[next(batch_ids)] = rows
        return WriteCounts(written=len(rows))

    query = (
        events.writeStream.foreachBatch(EarlyAlertHandler(spark, detector, collect))
        .trigger(availableNow=True)
        .option("checkpointLocation", str(workdir / "checkpoint"))
        .start()
    )
    return _finish(query, detector, run)


def _finish(query: StreamingQuery, detector: BaseDetector[Any], run: DetectorRun) -> DetectorRun:
    query.awaitTermination()
    if (error := query.exception()) is not None:
        raise RuntimeError(f"detector {detector.module_name} stream failed: {error}")
    return run
