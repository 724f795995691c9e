"""The dead-letter path: invalid rows kept as JSON under ``{raw_zone}/dlq/{reason}/dt={date}/``.

Runs on the driver for one static batch (the stream job calls it from ``foreachBatch``);
Spark writes the files. ``date`` is the trade date (UTC), else the ingestion date, else
today's date (UTC) for rows with neither. With a ``batch_id`` every batch writes its own
``batch={id}`` folder in overwrite mode, so a replayed batch replaces its own files
instead of adding a second copy.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from coattail_framework.quality.checker import REASON

DLQ_FOLDER = "dlq"


def dead_letter_path(raw_zone: str, reason: str, date: str) -> str:
    """``{raw_zone}/dlq/{reason}/dt={date}`` (``raw_zone`` a local path or URI)."""
    return f"{raw_zone.rstrip('/')}/{DLQ_FOLDER}/{reason}/dt={date}"


def write_dead_letters(invalid: DataFrame, raw_zone: str, batch_id: int | None = None) -> dict[str, int]:
    """Write ``invalid`` (rows from ``DataQualityChecker.validate``); returns rows per reason."""
    dated = invalid.withColumn(
        "_dlq_date",
        F.date_format(
            F.coalesce(F.col("timestamp"), F.col("ingestion_timestamp"), F.current_timestamp()), "yyyy-MM-dd"
        ),
    ).persist()
    try:
        groups = dated.groupBy(REASON, "_dlq_date").count().collect()
        written: dict[str, int] = {}
        for group in sorted(groups, key=lambda row: (row[REASON], row["_dlq_date"])):
            reason, date = group[REASON], group["_dlq_date"]
            path = dead_letter_path(raw_zone, reason, date)
            rows = dated.where((F.col(REASON) == reason) & (F.col("_dlq_date") == date)).drop("_dlq_date")
            if batch_id is None:
                rows.write.mode("append").json(path)
            else:
                rows.write.mode("overwrite").json(f"{path}/batch={batch_id}")
            written[reason] = written.get(reason, 0) + int(group["count"])
        return written
    finally:
        dated.unpersist()
