"""The dead-letter path: invalid rows kept as JSON under ``{raw_zone}/dlq/{reason}/dt={date}/``.

Runs on the driver for one static batch (the stream job calls it from ``foreachBatch``);
Spark writes the files. ``date`` is the trade date (UTC), else the ingestion date, else
today's date (UTC, fixed once per call) for rows with neither. With a ``batch_id`` every
batch writes its own ``batch={id}`` folder in overwrite mode, so a replayed batch replaces
its own files instead of adding a second copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_framework.quality.checker import REASON

DLQ_FOLDER = "dlq"


def dead_letter_path(raw_zone: str, reason: str, date: str) -> str:
    """``{raw_zone}/dlq/{reason}/dt={date}`` (``raw_zone`` a local path or URI)."""
    return f"{raw_zone.rstrip('/')}/{DLQ_FOLDER}/{reason}/dt={date}"


def today_utc() -> str:
    """Today's date in UTC, ``YYYY-MM-DD`` (the ``dt`` of rows with no time at all)."""
    return datetime.now(UTC).date().isoformat()


def dead_letter_date(today: str) -> Column:
    """The ``dt`` folder of a row: its trade date (UTC), else its ingestion date, else ``today``."""
    return F.coalesce(
        F.date_format(F.coalesce(F.col("timestamp"), F.col("ingestion_timestamp")), "yyyy-MM-dd"), F.lit(today)
    )


def write_dead_letters(
    invalid: DataFrame,
    raw_zone: str,
    batch_id: int | None = None,
    *,
    counted: tuple[str, Mapping[tuple[str, str], int]] | None = None,
) -> dict[str, int]:
    """Write ``invalid`` (rows from ``DataQualityChecker.validate``); returns rows per reason.

    ``counted``: ``(today, rows per (reason, dt))`` when the caller already counted the rows
    with ``dead_letter_date(today)`` (saves a Spark job); an empty count writes nothing.
    """
    if counted is not None and not counted[1]:
        return {}
    today, groups = counted if counted is not None else (today_utc(), None)
    dated = invalid.withColumn("_dlq_date", dead_letter_date(today)).persist()
    try:
        if groups is None:
            groups = {
                (row[REASON], row["_dlq_date"]): int(row["count"])
                for row in dated.groupBy(REASON, "_dlq_date").count().collect()
            }
        written: dict[str, int] = {}
        for (reason, date), count in sorted(groups.items()):
            path = dead_letter_path(raw_zone, reason, date)
            rows = dated.where((F.col(REASON) == reason) & (F.col("_dlq_date") == date)).drop("_dlq_date")
            if batch_id is None:
                rows.write.mode("append").json(path)
            else:
                rows.write.mode("overwrite").json(f"{path}/batch={batch_id}")
            written[reason] = written.get(reason, 0) + count
        return written
    finally:
        dated.unpersist()
