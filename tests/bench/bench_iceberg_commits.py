"""Iceberg commit time as a table ages: the sink with snapshot expiry vs the same appends without it.

One process, no Spark: ``IcebergSink.append`` of Arrow rows (pyiceberg, SQLite catalog, local
warehouse) appends ``COMMITS`` batches of ``ROWS`` rows, one after another, to a table as
a streaming query does (load the table, check the writer's last batch id, append). The
run "with expiry" uses ``iceberg.maintenance`` as the stream job does, with the retention
window scaled to this benchmark's commit rate (``KEEP_ALL_MINUTES``, checked every
``EXPIRE_EVERY_SECONDS``): the table keeps a few seconds of commits, as the shipped 2
minutes keep at about one commit per second. The baseline is the same appends with
maintenance off (every snapshot stays, as before expiry existed). Figures: median wall
milliseconds per append (expiry included when it ran) over the first and the last
``WINDOW`` appends, and the snapshots the table holds at the end.

    python tests/bench/bench_iceberg_commits.py     # prints JSON
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

COMMITS = int(os.environ.get("BENCH_ICEBERG_COMMITS", "300"))
ROWS = 50
WINDOW = 50
KEEP_ALL_MINUTES = 0.05
"""3 s of commits: 40-50 snapshots at this benchmark's 15 or so commits/s."""
EXPIRE_EVERY_SECONDS = 1.0


def _batch(first: int) -> Any:
    import pyarrow as pa

    start = datetime(2024, 8, 8, 12, tzinfo=UTC)
    return pa.table(
        {
            "symbol": [f"S{n % 10}" for n in range(first, first + ROWS)],
            "trade_time": [start + timedelta(milliseconds=n) for n in range(first, first + ROWS)],
            "notional": [float(n) for n in range(first, first + ROWS)],
        }
    )


def appends(root: Path, *, expiry: bool) -> dict[str, Any]:
    """``COMMITS`` appends to a fresh table; per-append timings and the table's snapshots at the end."""
    from pyspark.sql import types as st

    from coattail_framework.config.model import CoattailConfig
    from coattail_framework.partitioning import day
    from coattail_framework.sinks import IcebergSink

    schema = st.StructType(
        [
            st.StructField("symbol", st.StringType(), nullable=False),
            st.StructField("trade_time", st.TimestampType(), nullable=False),
            st.StructField("notional", st.DoubleType(), nullable=True),
        ]
    )
    config = CoattailConfig.model_validate(
        {
            "iceberg": {
                "uri": f"sqlite:///{root}/catalog.db",
                "warehouse": str(root / "warehouse"),
                "maintenance": {
                    "enabled": expiry,
                    "expire_every_seconds": EXPIRE_EVERY_SECONDS,
                    "retention": {"keep_all_minutes": KEEP_ALL_MINUTES},
                },
            }
        }
    )
    sink = IcebergSink(config)
    times = []
    for batch_id in range(COMMITS):
        started = time.perf_counter()
        sink.append("orders", schema, (day("trade_time"),), _batch(batch_id * ROWS), batch_id=batch_id, writer="q")
        times.append(time.perf_counter() - started)
    table = sink.catalog.load_table(("coattail", "orders"))
    return {
        "first_median_ms": round(statistics.median(times[:WINDOW]) * 1000, 1),
        "last_median_ms": round(statistics.median(times[-WINDOW:]) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "seconds": round(sum(times), 2),
        "snapshots_at_end": len(table.snapshots()),
        "rows_at_end": table.scan().to_arrow().num_rows,
    }


def run() -> dict[str, Any]:
    """Both runs, each on its own catalog and warehouse."""
    with tempfile.TemporaryDirectory() as scratch:
        baseline = appends(Path(scratch) / "baseline", expiry=False)
        ours = appends(Path(scratch) / "expiry", expiry=True)
    return {
        "commits": COMMITS,
        "rows_per_commit": ROWS,
        "window": WINDOW,
        "keep_all_minutes": KEEP_ALL_MINUTES,
        "expire_every_seconds": EXPIRE_EVERY_SECONDS,
        "with_expiry": ours,
        "without_expiry": baseline,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
