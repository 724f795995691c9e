"""The ingest query's micro-batch: valid trades to Iceberg ``raw_trades``, invalid rows to the dead-letter path.

Runs on the Spark driver, in the ingest query's ``foreachBatch`` (``PipelineRunner``). The
batch arrives parsed and quality-flagged (``dq_failed_rules``); a row is invalid when it
failed an error rule, and its first failed rule is its ``dq_reason``. With the
``pyiceberg`` writer the batch is collected to Arrow once (valid rows, plus the reason and
``dt`` of invalid ones) and split on the driver (``split_collected``): one Spark job, and the
DLQ writes run only when the batch holds invalid rows. With the ``spark`` writer the valid
rows are appended by Spark and the dead letters counted by Spark. ``dt`` is a row's trade
date in UTC (else its ingestion date, else the driver's UTC date when the batch ran).

Example (driver, inside ``foreachBatch``)::

    write_ingest_batch(flagged_batch, batch_id, sink=router.sink, raw_zone=config.storage.raw_zone, stats=stats)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from coattail_framework.partitioning import PartitionField, day, identity
from coattail_framework.pipeline.listener import PipelineStats
from coattail_framework.pipeline.parse import trade_columns
from coattail_framework.quality import DataQualityChecker, write_dead_letters
from coattail_framework.quality.checker import FAILED_RULES, REASON
from coattail_framework.quality.dlq import dead_letter_date, today_utc
from coattail_framework.schemas import UNIFIED_TRADE_EVENT
from coattail_framework.sinks.iceberg import IcebergSink, collect_arrow

INGEST_QUERY = "ingest"
"""The ingest query's name: also its checkpoint folder, its sink writer and its trigger key."""
RAW_TRADES_TABLE = "raw_trades"
RAW_TRADES_PARTITION: Sequence[PartitionField] = (day("timestamp"), identity("exchange"))
DeadLetterCounts = tuple[str, dict[tuple[str, str], int]]
"""``(today, rows per (reason, dt))`` of a batch's invalid rows (see ``write_dead_letters``)."""
_INVALID = "_dq_invalid"
_DLQ_DATE = "_dlq_date"


@dataclass(frozen=True)
class CollectedBatch:
    """One ingest batch collected to the driver: its valid rows (Arrow) and its invalid rows counted."""

    valid: pa.Table
    """The valid rows: at least the ``UNIFIED_TRADE_EVENT`` columns."""
    dead_letters: DeadLetterCounts


def split_collected(flagged: DataFrame) -> CollectedBatch:
    """Collect ``flagged`` once (one Spark job) and split it into valid rows and dead-letter counts per (reason, dt)."""
    today = today_utc()
    is_invalid = F.size(F.col(FAILED_RULES)) > 0
    collected = collect_arrow(
        flagged.select(
            *UNIFIED_TRADE_EVENT.fieldNames(),
            is_invalid.alias(_INVALID),
            F.when(is_invalid, F.col(FAILED_RULES)[0]).alias(REASON),
            F.when(is_invalid, dead_letter_date(today)).alias(_DLQ_DATE),
        )
    )
    invalid_mask = collected.column(_INVALID)
    groups = collected.filter(invalid_mask).group_by([REASON, _DLQ_DATE]).aggregate([(REASON, "count")])
    counts = {
        (reason, date): int(count)
        for reason, date, count in zip(
            groups.column(REASON).to_pylist(),
            groups.column(_DLQ_DATE).to_pylist(),
            groups.column(f"{REASON}_count").to_pylist(),
            strict=True,
        )
    }
    return CollectedBatch(collected.filter(pc.invert(invalid_mask)), (today, counts))


def write_ingest_batch(
    batch: DataFrame, batch_id: int, *, sink: IcebergSink, raw_zone: str, stats: PipelineStats
) -> None:
    """Valid rows of ``batch`` to ``raw_trades``, invalid rows to the DLQ under ``raw_zone``; counted in ``stats``.

    Idempotent per batch id: the sink skips a batch ``ingest`` already committed, and each
    batch overwrites its own ``batch={id}`` dead-letter folder.
    """
    batch = batch.persist()
    try:
        valid, invalid = DataQualityChecker.split(batch)
        counted: DeadLetterCounts | None = None
        rows: DataFrame | pa.Table
        if sink.collects_to_driver:
            collected = split_collected(batch)
            rows, counted = collected.valid, collected.dead_letters
        else:
            rows = trade_columns(valid)
        written = sink.append(
            RAW_TRADES_TABLE, UNIFIED_TRADE_EVENT, RAW_TRADES_PARTITION, rows, batch_id=batch_id, writer=INGEST_QUERY
        ).rows
        stats.add("table_rows", RAW_TRADES_TABLE, written)
        dead = invalid.select(*UNIFIED_TRADE_EVENT.fieldNames(), "raw", "dq_failed_rules", "dq_warnings", REASON)
        for reason, count in write_dead_letters(dead, raw_zone, batch_id=batch_id, counted=counted).items():
            stats.add("dead_letters", reason, count)
    finally:
        batch.unpersist()
