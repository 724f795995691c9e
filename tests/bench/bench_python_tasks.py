"""Cost of a small Spark job with Python tasks: workers from ``worker_daemon`` vs ``pyspark.daemon``.

Each run is a fresh local[2] session in a child process (the daemon module is fixed when
Spark starts) that runs ``JOBS`` jobs of two Python tasks each (``mapInArrow`` over 200
rows in 2 partitions: the shape of the early query's per-batch jobs) after ``WARMUP``
jobs. Figures per job: wall milliseconds on the driver, and CPU milliseconds of the Python
worker processes under this run's Spark JVM (utime + stime from ``/proc``, Linux). The baseline is Spark's own
``pyspark.daemon``; runs alternate (baseline, ours, baseline, ours) and the median of the
rounds is reported, because this machine's speed drifts within minutes.

    python tests/bench/bench_python_tasks.py     # prints JSON
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

from procmem import PROC, spark_processes

JOBS = int(os.environ.get("BENCH_PYTHON_TASK_JOBS", "60"))
WARMUP = 5
ROUNDS = 2
BASELINE_DAEMON = "pyspark.daemon"
CHILD_FLAG = "--child"


def _worker_cpu_seconds() -> float:
    """CPU seconds (user + system) of the Python workers of this process's Spark JVM, from ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in spark_processes()[1]:
        try:
            fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def measure(daemon_module: str | None) -> dict[str, float]:
    """Per-job wall and worker CPU milliseconds in this process (``daemon_module`` None: the platform's)."""
    import pyarrow as pa

    from coattail_framework.spark import local_session

    conf = {} if daemon_module is None else {"spark.python.daemon.module": daemon_module}
    spark = local_session("bench-python-tasks", **conf)

    def identity(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        yield from batches

    frame = spark.range(0, 200, 1, numPartitions=2).mapInArrow(identity, "id long")
    for _ in range(WARMUP):
        frame.collect()
    cpu, started = _worker_cpu_seconds(), time.perf_counter()
    for _ in range(JOBS):
        frame.collect()
    wall, cpu = time.perf_counter() - started, _worker_cpu_seconds() - cpu
    spark.stop()
    return {"wall_ms_per_job": round(wall / JOBS * 1000, 1), "worker_cpu_ms_per_job": round(cpu / JOBS * 1000, 1)}


def _in_child(daemon_module: str | None) -> dict[str, float]:
    args = [sys.executable, __file__, CHILD_FLAG, daemon_module or ""]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run() -> dict[str, Any]:
    """Alternating rounds of both daemons; the median per figure and every round."""
    rounds: dict[str, list[dict[str, float]]] = {"pyspark_daemon": [], "worker_daemon": []}
    for _ in range(ROUNDS):
        rounds["pyspark_daemon"].append(_in_child(BASELINE_DAEMON))
        rounds["worker_daemon"].append(_in_child(None))
    medians = {
        name: {key: round(statistics.median(r[key] for r in runs), 1) for key in runs[0]}
        for name, runs in rounds.items()
    }
    return {"jobs": JOBS, "tasks_per_job": 2, "rounds": rounds, **medians}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD_FLAG:
        print(json.dumps(measure(sys.argv[2] or None)))
    else:
        print(json.dumps(run(), indent=2))
