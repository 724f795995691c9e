"""The whole stream job, every built detector, draining a large Kinesis backlog on local[2].

One process, one local[2] SparkSession; moto in a child process on 127.0.0.1 (``aws_process``).
``BENCH_WHOLE_JOB_EVENTS`` (default 1,000,000) synthetic trades (``bench_pipeline``'s: 10
symbols on Binance and Coinbase, event times 10 ms apart, 1 % whale-sized; generated lazily,
500 per ``PutRecords``) are put ONCE into a 2-shard stream. The stream is then drained three
times with ``PipelineRunner.run(drain=True)``, each drain with its own checkpoints, raw zone,
Iceberg catalog and DynamoDB table, so each starts at TRIM_HORIZON on empty tables:

* ``ingest_only``: the job's own ingest (quality, ``raw_trades``, DLQ), no detector: the baseline.
* ``whole_job``: ``feature_tier: large`` (volume-anomaly, whale, spread, flow-imbalance,
  split-order, whale-alpha, lead-lag) with ``streaming.detector_input: raw_trades`` (the
  default: the detectors read ingest's commits, ADR-041).
* ``kinesis_detectors``: the same modules with ``detector_input: kinesis`` (the layout before:
  each detector query reads, parses and checks the stream itself), for comparison; it drains
  only the first ``BENCH_WHOLE_JOB_OLD_EVENTS`` (default 100,000) of the same trades, put into a
  second stream of their own.

Kinesis is read with the SHIPPED pacing (``config/features.yaml``: ``max_records_per_trigger``,
``max_bytes_per_trigger``, ``min_poll_interval_ms``); a detector batch is one ingest commit.
Per drain: wall seconds of ``run()`` and events/s =
events / wall; start-up = from the ``run()`` call (UTC wall clock) to the start of the first
trigger of the LAST query to report one (the ``timestamp`` of each query's first
``recentProgress`` entry); sustained events/s = events / (wall - start-up). The session keeps
``spark.sql.streaming.numRecentProgressUpdates`` = 1000 progresses per query (Spark's default,
100, would drop the first ones in a 1M drain). Per query: batches, the first trigger's start
(seconds after ``run()``) and the summed ``durationMs`` of ``latestOffset`` (planning the batch
from the source), ``addBatch`` (running it and its sink) and ``triggerExecution`` over the batches
that read data, which shows where the time goes. Every drain checks that ingest read and
``raw_trades`` holds every event.

Memory, during ``whole_job`` only (``procmem``, sampled every 0.5 s): peak proportional set size
(MiB) of the driver, the JVM and the JVM's Python workers, the peak of their sum at one sample
(``total_mib``), and the most worker processes at once. A census every 0.5 s reads the command
lines of the processes ``procmem`` counts as workers and reports the most of each kind seen
(``worker_processes_by_kind``), the census of the sample with the most, and what each kind is
(``WORKER_KINDS``): one ``python_streaming_source_runner`` per query reading a Python source,
the worker daemon and the task workers it forks, PySpark's planning daemons.

    BENCH_WHOLE_JOB_EVENTS=20000 BENCH_WHOLE_JOB_OLD_EVENTS=10000 python tests/bench/bench_whole_job.py  # smoke
    python tests/bench/bench_whole_job.py     # prints JSON (1,000,000 events)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_process import moto_in_child_process
from bench_pipeline import FAKE_AWS, bench_config, iter_synthetic_trades, shipped_config
from procmem import MemorySampler, _children, _cmdline, spark_processes

EVENTS = int(os.environ.get("BENCH_WHOLE_JOB_EVENTS", "1000000"))
OLD_EVENTS = int(os.environ.get("BENCH_WHOLE_JOB_OLD_EVENTS", "100000"))
SHARDS, SYMBOLS = 2, 10
PUT_BATCH = 500
RECENT_PROGRESS = 1000
MEMORY_INTERVAL_S = 0.5
CENSUS_INTERVAL_S = 0.5
WORKER_KINDS = {
    "pyspark.sql.streaming.python_streaming_source_runner": (
        "one per streaming query reading a Python data source (coattail-kinesis, coattail-feed): "
        "plans its batches on the driver machine; started by the JVM without the daemon"
    ),
    "coattail_framework.worker_daemon": (
        "the UDF/pandas worker daemon (spark.python.daemon.module); its forked workers run the "
        "Python tasks (the sources' partition reads, pandas UDFs, applyInPandasWithState), "
        "one per concurrent task, kept for reuse"
    ),
    "pyspark.daemon": (
        "PySpark's own daemon for planning workers (data source lookup and creation, "
        "e.g. pyspark.sql.worker.create_data_source) and their forked workers"
    ),
}
"""What each kind of Python worker process is, by the module its command line runs."""


def put_trades(endpoint: str, stream: str, count: int) -> float:
    """Put the first ``count`` trades into ``stream``, ``PUT_BATCH`` per ``PutRecords``; seconds taken."""
    from coattail_framework.aws.clients import aws_client

    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint)
    started = time.perf_counter()
    events = iter_synthetic_trades(SYMBOLS, count)
    while batch := list(islice(events, PUT_BATCH)):
        records = [{"Data": t.to_json().encode(), "PartitionKey": t.partition_key} for t in batch]
        failed = kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"]
        if failed:
            raise RuntimeError(f"moto refused {failed} records while filling the benchmark stream {stream}")
    return time.perf_counter() - started


def _parse_time(stamp: str) -> datetime:
    """A progress ``timestamp`` ('2026-12-07T14:10:11.812Z') as an aware UTC datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)


def query_figures(query: Any, started_at: datetime) -> dict[str, Any]:
    """One query's first trigger (seconds after ``started_at``) and where its data batches spent their time."""
    progresses = list(query.recentProgress)
    data = [p for p in progresses if int(p["numInputRows"]) > 0]

    def total(key: str) -> int:
        return sum(int((p["durationMs"] or {}).get(key, 0)) for p in data)

    first = None if not progresses else (_parse_time(progresses[0]["timestamp"]) - started_at).total_seconds()
    return {
        "first_trigger_s": None if first is None else round(first, 2),
        "progresses": len(progresses),
        "data_batches": len(data),
        "input_rows": sum(int(p["numInputRows"]) for p in data),
        "latest_offset_ms": total("latestOffset"),
        "add_batch_ms": total("addBatch"),
        "trigger_execution_ms": total("triggerExecution"),
    }


def drain(spark: Any, config: Any, events: int, *, ingest_only: bool = False) -> dict[str, Any]:
    """Drain the configured stream (ingest alone, or with every active detector); figures per query."""
    from coattail_framework.pipeline import PipelineRunner

    runner = PipelineRunner(spark, config, detectors=[]) if ingest_only else PipelineRunner(spark, config)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    stats = runner.run(drain=True, handle_signals=False).snapshot()
    seconds = time.perf_counter() - started
    read, stored = stats["input_rows"].get("ingest", 0), stats["table_rows"].get("raw_trades", 0)
    if read != events or stored != events:
        raise RuntimeError(f"the drain did not ingest every event ({read} read, {stored} stored): {json.dumps(stats)}")
    queries = {query.name: query_figures(query, started_at) for query in runner.queries}
    firsts = [q["first_trigger_s"] for q in queries.values() if q["first_trigger_s"] is not None]
    startup = max(0.0, max(firsts, default=0.0))
    return {
        "modules": [detector.module_name for detector in runner.detectors],
        "detector_input": config.streaming.detector_input,
        "events": read,
        "seconds": round(seconds, 2),
        "events_per_s": round(read / seconds),
        "startup_seconds": round(startup, 2),
        "sustained_events_per_s": round(read / (seconds - startup)) if seconds > startup else None,
        "batches": stats["batches"],
        "alerts": stats["alerts"],
        "table_rows": stats["table_rows"],
        "queries": queries,
    }


def worker_kind(cmdline: str, forked: bool) -> str:
    """A Python worker's kind: the module its command line runs (and its worker module), forked or not."""
    args = cmdline.split()
    if "-m" in args:
        at = args.index("-m")
        kind = " ".join(args[at + 1 : at + 3])
    else:
        kind = " ".join(Path(arg).name for arg in args[1:3]) or "unknown"
    return f"{kind} (forked worker)" if forked else kind


def worker_census(root: int | None = None) -> Counter[str]:
    """The Python workers ``procmem`` counts under ``root``'s JVM (default: this process), by kind.

    A worker whose parent is the JVM was started by it (a daemon or a simple worker); one whose
    parent is another worker was forked by a daemon.
    """
    jvms, workers = spark_processes(root)
    tree = _children()
    parents = {child: parent for parent, children in tree.items() for child in children}
    return Counter(worker_kind(_cmdline(pid), parents.get(pid) not in jvms) for pid in workers)


class WorkerCensus:
    """``worker_census`` every ``interval`` seconds from a thread: the most processes of each kind
    seen, and the census of the sample with the most processes."""

    def __init__(self, interval: float = CENSUS_INTERVAL_S) -> None:
        self.interval = interval
        self.most: Counter[str] = Counter()
        self.at_peak: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-census", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            counts = worker_census()
            self.samples += 1
            for kind, count in counts.items():
                self.most[kind] = max(self.most[kind], count)
            if counts.total() > self.at_peak.total():
                self.at_peak = counts
            self._stop.wait(self.interval)

    def __enter__(self) -> WorkerCensus:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def explained(self) -> dict[str, str]:
        """What each kind seen is (``WORKER_KINDS``, by the module it runs)."""
        return {
            kind: next((text for module, text in WORKER_KINDS.items() if kind.startswith(module)), "not classified")
            for kind in sorted(self.most)
        }

    def figures(self) -> dict[str, Any]:
        """The census's figures for the report."""
        return {
            "worker_processes_by_kind": dict(sorted(self.most.items())),
            "worker_processes_at_peak": dict(sorted(self.at_peak.items())),
            "worker_kinds": self.explained(),
            "worker_census_samples": self.samples,
        }


def report(name: str, figures: dict[str, Any]) -> None:
    """One drain's headline figures on stderr (stdout is the JSON)."""
    print(
        f"bench_whole_job: {name}: {figures['events_per_s']} events/s, start-up {figures['startup_seconds']} s, "
        f"sustained {figures['sustained_events_per_s']} events/s",
        file=sys.stderr,
        flush=True,
    )


def run() -> dict[str, Any]:
    """Put the trades, run the three drains; returns the figures (see the module docstring)."""
    os.environ.update(FAKE_AWS)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import pyspark

    from coattail_devstack.localstack import create_resources, local_config
    from coattail_framework.spark import local_session

    shipped = shipped_config()
    base = bench_config(symbols=SYMBOLS, shards=SHARDS, name="whole-job", tier="large")
    base = base.model_copy(
        update={
            "kinesis": base.kinesis.model_copy(
                update={
                    "max_records_per_trigger": shipped.kinesis.max_records_per_trigger,
                    "max_bytes_per_trigger": shipped.kinesis.max_bytes_per_trigger,
                }
            ),
        }
    )
    old_events = min(OLD_EVENTS, EVENTS)
    results: dict[str, Any] = {
        "events": EVENTS,
        "shards": SHARDS,
        "symbols": SYMBOLS,
        "max_records_per_trigger": base.kinesis.max_records_per_trigger,
        "max_bytes_per_trigger": base.kinesis.max_bytes_per_trigger,
        "min_poll_interval_ms": base.kinesis.min_poll_interval_ms,
    }

    def configured(name: str, root: Path, endpoint: str, detector_input: str, stream: str) -> Any:
        streaming = base.streaming.model_copy(
            update={
                "detector_input": detector_input,
            }
        )
        config = base.model_copy(
            update={
                "streaming": streaming,
                "kinesis": base.kinesis.model_copy(update={"stream_name": stream}),
                "dynamodb": base.dynamodb.model_copy(update={"table_name": f"bench-{name}"}),
            }
        )
        config = local_config(config, root / name, endpoint)
        create_resources(config)
        return config

    with tempfile.TemporaryDirectory() as scratch, moto_in_child_process() as endpoint:
        root = Path(scratch)
        stream, old_stream = base.kinesis.stream_name, f"{base.kinesis.stream_name}-old"
        configs = {
            "ingest_only": configured("ingest-only", root, endpoint, "raw_trades", stream),
            "whole_job": configured("whole-job", root, endpoint, "raw_trades", stream),
            "kinesis_detectors": configured("kinesis-detectors", root, endpoint, "kinesis", old_stream),
        }
        results["put_seconds"] = round(put_trades(endpoint, stream, EVENTS), 1)
        put_trades(endpoint, old_stream, old_events)
        print(f"bench_whole_job: put {EVENTS} events in {results['put_seconds']} s", file=sys.stderr, flush=True)

        spark = local_session("coattail-bench")
        spark.sparkContext.setLogLevel("ERROR")
        spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", str(RECENT_PROGRESS))
        results["ingest_only"] = drain(spark, configs["ingest_only"], EVENTS, ingest_only=True)
        report("ingest_only", results["ingest_only"])
        with MemorySampler(interval=MEMORY_INTERVAL_S) as memory, WorkerCensus() as census:
            whole = drain(spark, configs["whole_job"], EVENTS)
        whole["memory_peak_mib"] = memory.peaks()
        whole.update(census.figures())
        results["whole_job"] = whole
        report("whole_job", whole)
        results["kinesis_detectors"] = drain(spark, configs["kinesis_detectors"], old_events)
        report("kinesis_detectors", results["kinesis_detectors"])
        spark.stop()
    results["pyspark"] = pyspark.__version__
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
