"""Ingest throughput: Kinesis source + parse + data quality + ``raw_trades`` (Iceberg), vs the same from files.

The figure issue 4 sets a goal for (5,000 events/s sustained on local[2]). One process,
one local[2] SparkSession; moto in a child process on 127.0.0.1 (``aws_process``). ``BENCH_INGEST_EVENTS``
synthetic trades (10 symbols on two venues, 1 % invalid: a negative price) are put into
a fresh 2-shard stream, then drained by ``PipelineRunner`` with no detector: only the
ingest query (parse, 12 quality rules, valid rows appended to ``raw_trades`` with
pyiceberg on the SQLite catalog, invalid rows to the DLQ), at most
``BENCH_INGEST_PER_TRIGGER`` records per trigger. The baseline runs the same ingest query
over the same records read from local JSON files (Spark's file source, same records per
trigger). Both run after a warm-up drain of ``WARMUP_EVENTS`` from Kinesis (not counted),
so neither pays for the JVM's first compilation of Spark's code.

Sustained events/s = rows of every batch after the first / the sum of those batches'
``triggerExecution`` times (Spark's progress): the rate once the query runs, without
start-up and the drain's idle triggers. Overall events/s = events / wall seconds of the
whole drain. Per-batch timings (Spark's ``durationMs``) are kept in the raw figures.

    python tests/bench/bench_ingest.py     # prints JSON
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_process import moto_in_child_process
from bench_pipeline import FAKE_AWS, bench_config, file_runner, put_trades, synthetic_trades, write_files

EVENTS = int(os.environ.get("BENCH_INGEST_EVENTS", "60000"))
PER_TRIGGER = int(os.environ.get("BENCH_INGEST_PER_TRIGGER", "10000"))
WARMUP_EVENTS = int(os.environ.get("BENCH_INGEST_WARMUP_EVENTS", "20000"))
"""Drained from Kinesis before the measured runs and not counted: the JVM compiles Spark's code meanwhile."""
SHARDS, SYMBOLS = 2, 10
INVALID_EVERY = 100
PHASES = ("latestOffset", "getBatch", "queryPlanning", "addBatch", "walCommit", "commitOffsets", "triggerExecution")


def with_invalid(trades: list[Any]) -> list[Any]:
    """``trades`` with every ``INVALID_EVERY``-th price made negative (the DLQ path runs too)."""
    return [
        t.model_copy(update={"price": -t.price}) if n % INVALID_EVERY == INVALID_EVERY - 1 else t
        for n, t in enumerate(trades)
    ]


def drain_ingest(spark: Any, config: Any, files: Path | None, events: int = EVENTS) -> dict[str, Any]:
    """Drain the stream (or ``files``) through the ingest query alone; rates and per-batch timings."""
    from coattail_framework.pipeline import PipelineRunner

    runner = (PipelineRunner if files is None else file_runner(files, PER_TRIGGER))(spark, config, detectors=[])
    started = time.perf_counter()
    stats = runner.run(drain=True, handle_signals=False).snapshot()
    seconds = time.perf_counter() - started
    valid = stats["table_rows"].get("raw_trades", 0)
    invalid = sum(stats["dead_letters"].values())
    if valid + invalid != events or invalid != events // INVALID_EVERY:
        raise RuntimeError(f"the drain did not account for every event: {json.dumps(stats)}")
    (query,) = runner.queries
    batches = [
        {"rows": int(p["numInputRows"]), **{phase: int(p["durationMs"].get(phase, 0)) for phase in PHASES}}
        for p in query.recentProgress
        if int(p["numInputRows"]) > 0
    ]
    steady = batches[1:] or batches
    steady_ms = sum(b["triggerExecution"] for b in steady)
    return {
        "events": events,
        "raw_trades_rows": valid,
        "dead_letters": invalid,
        "seconds": round(seconds, 2),
        "overall_events_per_s": round(events / seconds),
        "sustained_events_per_s": round(sum(b["rows"] for b in steady) * 1000 / max(steady_ms, 1)),
        "batches": batches,
    }


def run() -> dict[str, Any]:
    """Kinesis and files runs of the ingest query; returns the figures (see the module docstring)."""
    os.environ.update(FAKE_AWS)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import pyspark

    from coattail_devstack.localstack import create_resources, local_config
    from coattail_framework.spark import local_session

    results: dict[str, Any] = {
        "events": EVENTS,
        "max_records_per_trigger": PER_TRIGGER,
        "shards": SHARDS,
        "symbols": SYMBOLS,
        "goal_events_per_s": 5000,
    }
    with (
        tempfile.TemporaryDirectory() as scratch,
        moto_in_child_process() as endpoint,
    ):
        root = Path(scratch)
        spark = local_session("coattail-bench-ingest")
        spark.sparkContext.setLogLevel("ERROR")
        trades = with_invalid(synthetic_trades(SYMBOLS, EVENTS))
        warmup = local_config(bench_config(SYMBOLS, SHARDS, "ingest-warmup"), root / "warmup", endpoint)
        create_resources(warmup)
        put_trades(endpoint, warmup.kinesis.stream_name, trades[:WARMUP_EVENTS])
        results["warmup_events"] = drain_ingest(spark, warmup, None, WARMUP_EVENTS)["events"]
        for name, from_files in (("kinesis", False), ("files", True)):
            base = bench_config(SYMBOLS, SHARDS, f"ingest-{name}")
            base = base.model_copy(
                update={"kinesis": base.kinesis.model_copy(update={"max_records_per_trigger": PER_TRIGGER})}
            )
            config = local_config(base, root / name, endpoint)
            create_resources(config)
            files = None
            if from_files:
                files = root / name / "records"
                write_files(files, trades)
            else:
                put_trades(endpoint, config.kinesis.stream_name, trades)
            results[name] = drain_ingest(spark, config, files)
            print(
                f"bench_ingest: {name}: {results[name]['sustained_events_per_s']} events/s sustained",
                file=sys.stderr,
                flush=True,
            )
        spark.stop()
    results["kinesis_vs_files"] = round(
        results["kinesis"]["sustained_events_per_s"] / max(results["files"]["sustained_events_per_s"], 1), 2
    )
    results["pyspark"] = pyspark.__version__
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
