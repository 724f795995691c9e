"""Reprocessing over Iceberg time travel: events/s of ``coattail-stream-job reprocess`` (goal: 20,000 over 1M rows).

One process, one local[2] SparkSession, no AWS (reprocessing reads and writes Iceberg only: SQLite
catalog and warehouse under a temporary folder). ``raw_trades`` is filled with
``BENCH_REPROCESS_ROWS`` synthetic trades (10 symbols on Binance and Coinbase, trade times
10 ms apart, 1 % whale-sized: ``bench_pipeline.synthetic_trades``, generated here 50,000 at a
time) through the live ingest's writer, ``IcebergSink.append(raw_trades, ..., writer="ingest")``,
one commit per 50,000 rows; the fill is timed apart and is not part of any figure. Each run
is the CLI itself, ``reprocess.main`` as ``coattail-stream-job reprocess --as-of-snapshot ID
--config FILE --local --root ROOT --rows-per-batch N --json`` over the table's current
snapshot, with ``feature_tier: large`` (every built detector). Seconds are its whole wall
time: staging (``timetravel.stage_snapshot``: read the snapshot, sort by trade time, write
the Parquet files), the detectors' streaming queries (``reprocess.stream_detectors``, one
micro-batch per staged file, Iceberg appends included) and the rest (configuration,
plugins, the snapshot's pin, the comparison); events/s = rows / seconds. The ``*_reprocessed``
tables of an earlier run are dropped before each run, outside its time. A streaming-query
listener sums each micro-batch's ``durationMs`` phases over the detector queries (they run
concurrently, so the sums exceed the wall time); ``staging_profile`` times the read and the
sort of the default run's snapshot again on their own.

Runs, each with its own staging and checkpoint folders: ``default`` (the code's
``DEFAULT_ROWS_PER_BATCH``, read at run time) and the baseline, ``baseline``: the
pre-change default of 10,000 rows per batch over only the first
``BENCH_REPROCESS_BASELINE_ROWS`` trades (its own catalog), because it is slow. ``default``
runs first, in a session that has run only a warm-up query, so it pays the detectors' first
start-up (Python workers, code generation).

    python tests/bench/bench_reprocess.py     # prints JSON
    BENCH_REPROCESS_ROWS=60000 BENCH_REPROCESS_BASELINE_ROWS=20000 python tests/bench/bench_reprocess.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import T0, bench_config

ROWS = int(os.environ.get("BENCH_REPROCESS_ROWS", "1000000"))
BASELINE_ROWS = int(os.environ.get("BENCH_REPROCESS_BASELINE_ROWS", "100000"))
SYMBOLS = 10
COMMIT_ROWS = 50_000
"""Rows per ``raw_trades`` commit of the fill."""
BASELINE_ROWS_PER_BATCH = 10_000
"""The ``--rows-per-batch`` default before the change under test."""
GOAL_EVENTS_PER_S = 20_000
ENDPOINT = "http://127.0.0.1"
"""Never contacted: reprocessing touches no AWS service; ``local_config`` wants an endpoint."""
NOISY_LOGGERS = ("py4j", "pyiceberg", "coattail_framework", "coattail_stream_job", "coattail_devstack", "werkzeug")


def trade_chunks(symbols: int, count: int, size: int, seed: int = 7) -> Iterator[Any]:
    """``bench_pipeline.synthetic_trades(symbols, count, seed)`` as Arrow tables of ``size`` rows (raw_trades' schema).

    The same trades, value for value (same random sequence), built column-wise a chunk at a
    time so ``count`` TradeEvent objects are never held at once. Decimal amounts become
    doubles, times UTC microseconds, as the ingest writes them.
    """
    import pyarrow as pa

    from coattail_framework.iceberg import to_arrow_schema
    from coattail_framework.schemas import UNIFIED_TRADE_EVENT

    schema = to_arrow_schema(UNIFIED_TRADE_EVENT)
    rng = random.Random(seed)
    start = int(T0.timestamp()) * 1_000_000
    for first in range(0, count, size):
        columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        for n in range(first, min(first + size, count)):
            venue = "binance" if n % 2 == 0 else "coinbase"
            number = rng.randrange(symbols)
            symbol = f"S{number:02d}USDT" if venue == "binance" else f"S{number:02d}-USD"
            price = Decimal(100 + number) + Decimal(rng.randrange(-50, 50)) / 100
            quantity = Decimal(2000 if n % 100 == 50 else rng.randrange(1, 500)) / 10
            at = start + 10_000 * n
            columns["event_id"].append(f"{venue}:{symbol}:{n}")
            columns["exchange"].append(venue)
            columns["symbol"].append(symbol)
            columns["price"].append(float(price))
            columns["quantity"].append(float(quantity))
            columns["quote_volume"].append(float(price * quantity))
            columns["side"].append("buy" if rng.random() < 0.5 else "sell")
            columns["timestamp"].append(at)
            columns["ingestion_timestamp"].append(at + 300_000)
            columns["trade_id"].append(str(n))
            columns["taker_order_id"].append(None)
        yield pa.Table.from_pydict(columns, schema=schema)


def fill_raw_trades(config: Any, rows: int) -> float:
    """Fill ``raw_trades`` with ``rows`` trades by the ingest's writer, a commit per ``COMMIT_ROWS``; seconds."""
    from coattail_framework.pipeline.ingest import INGEST_QUERY, RAW_TRADES_PARTITION, RAW_TRADES_TABLE
    from coattail_framework.schemas import UNIFIED_TRADE_EVENT
    from coattail_framework.sinks import IcebergSink

    sink = IcebergSink(config)
    started = time.perf_counter()
    written = 0
    for batch_id, chunk in enumerate(trade_chunks(SYMBOLS, rows, COMMIT_ROWS)):
        written += sink.append(
            RAW_TRADES_TABLE, UNIFIED_TRADE_EVENT, RAW_TRADES_PARTITION, chunk, batch_id=batch_id, writer=INGEST_QUERY
        ).rows
    if written != rows:
        raise RuntimeError(f"raw_trades received {written} rows of {rows}")
    return time.perf_counter() - started


def raw_trades(config: Any) -> Any:
    """The pyiceberg ``raw_trades`` table of ``config``'s catalog."""
    from coattail_framework.iceberg import open_catalog
    from coattail_framework.pipeline.ingest import RAW_TRADES_TABLE

    return open_catalog(config.iceberg, config.aws).load_table((config.iceberg.database, RAW_TRADES_TABLE))


def drop_reprocessed(config: Any) -> None:
    """Drop every ``*_reprocessed`` table an earlier run left in ``config``'s catalog (outside the timed run)."""
    from coattail_framework.iceberg import open_catalog
    from coattail_stream_job.reprocess import TABLE_SUFFIX, replace_tables

    catalog = open_catalog(config.iceberg, config.aws)
    database = config.iceberg.database
    if database not in {namespace[0] for namespace in catalog.list_namespaces()}:
        return
    names = [name for _, name in catalog.list_tables(database) if name.endswith(TABLE_SUFFIX)]
    replace_tables(catalog, database, names)


class StageClock:
    """Wall seconds spent in named functions, summed over calls (any thread)."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def wrap(self, stage: str, function: Callable[..., Any], before: Callable[[], None] | None) -> Callable[..., Any]:
        """``function`` with its calls timed under ``stage``; ``before`` (if any) runs first, inside the time."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            if before is not None:
                before()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[stage] += time.perf_counter() - started
                    self.calls[stage] += 1

        return timed

    @contextlib.contextmanager
    def timing(
        self, stages: dict[str, tuple[ModuleType, str]], before: dict[str, Callable[[], None]] | None = None
    ) -> Iterator[None]:
        """Time ``module.attribute`` as ``stage`` in the block (``reprocess.main`` looks both up at call time)."""
        originals = [(module, attribute, getattr(module, attribute)) for module, attribute in stages.values()]
        for stage, (module, attribute) in stages.items():
            setattr(module, attribute, self.wrap(stage, getattr(module, attribute), (before or {}).get(stage)))
        try:
            yield
        finally:
            for module, attribute, original in originals:
                setattr(module, attribute, original)


def progress_listener(prefix: str) -> Any:
    """A streaming-query listener summing the ``durationMs`` phases of queries named ``prefix``*."""
    from pyspark.sql.streaming.listener import (
        QueryIdleEvent,
        QueryProgressEvent,
        QueryStartedEvent,
        QueryTerminatedEvent,
        StreamingQueryListener,
    )

    class ProgressTotals(StreamingQueryListener):
        def __init__(self) -> None:
            self.duration_ms: Counter[str] = Counter()
            self.add_batch_ms: Counter[str] = Counter()
            self.batches = 0
            self.data_batches = 0
            self.last_event = time.monotonic()
            self.lock = threading.Lock()

        def onQueryStarted(self, event: QueryStartedEvent) -> None:  # noqa: N802 - Spark's callback name
            return None

        def onQueryProgress(self, event: QueryProgressEvent) -> None:  # noqa: N802 - Spark's callback name
            progress = event.progress
            name = progress.name or ""
            if not name.startswith(prefix):
                return
            with self.lock:
                self.duration_ms.update({key: int(value) for key, value in progress.durationMs.items()})
                self.add_batch_ms[name.removeprefix(prefix)] += int(progress.durationMs.get("addBatch", 0))
                self.batches += 1
                self.data_batches += int(progress.numInputRows > 0)
                self.last_event = time.monotonic()

        def onQueryIdle(self, event: QueryIdleEvent) -> None:  # noqa: N802 - Spark's callback name
            return None

        def onQueryTerminated(self, event: QueryTerminatedEvent) -> None:  # noqa: N802 - Spark's callback name
            return None

        def settle(self, quiet_s: float = 1.0, limit_s: float = 10.0) -> None:
            """Wait until no progress came for ``quiet_s`` (the listener bus is asynchronous), at most ``limit_s``."""
            deadline = time.monotonic() + limit_s
            while time.monotonic() < deadline and time.monotonic() - self.last_event < quiet_s:
                time.sleep(0.1)

        def totals(self) -> dict[str, Any]:
            with self.lock:
                return {
                    "query_batches": self.batches,
                    "query_batches_with_data": self.data_batches,
                    "duration_ms_summed_over_queries": dict(self.duration_ms.most_common()),
                    "add_batch_ms_by_query": dict(self.add_batch_ms.most_common()),
                }

    return ProgressTotals()


def reprocess(
    spark: Any, config_file: Path, root: Path, snapshot_id: int, rows: int, rows_per_batch: int
) -> dict[str, Any]:
    """``coattail-stream-job reprocess --local --root root --as-of-snapshot ... --json``, timed by stage."""
    from coattail_stream_job import reprocess as command
    from coattail_stream_job import timetravel

    args = argparse.Namespace(
        as_of_snapshot=snapshot_id,
        as_of_time=None,
        config=str(config_file),
        local=True,
        root=root,
        rows_per_batch=rows_per_batch,
        all_original=False,
        json=True,
    )
    clock = StageClock()

    def quiet() -> None:
        spark.sparkContext.setLogLevel("ERROR")  # the command's session call set WARN: one line per query start

    listener = progress_listener("reprocess-")
    spark.streams.addListener(listener)
    out = io.StringIO()
    try:
        stages = {"staging": (timetravel, "stage_snapshot"), "detectors": (command, "stream_detectors")}
        with clock.timing(stages, before={"detectors": quiet}):
            started = time.perf_counter()
            with contextlib.redirect_stdout(out):
                code = command.main(args)
            seconds = time.perf_counter() - started
        listener.settle()
    finally:
        spark.streams.removeListener(listener)
    if code != 0:
        raise RuntimeError(f"reprocess exited with {code}: {out.getvalue()[-2000:]}")
    result = json.loads(out.getvalue())
    if result["snapshot"]["trades"] != rows or clock.calls["staging"] != 1 or clock.calls["detectors"] != 1:
        raise RuntimeError(f"reprocess did not stage {rows} trades once and stream them once: {json.dumps(result)}")
    staging, detectors = clock.seconds["staging"], clock.seconds["detectors"]
    batches = result["snapshot"]["micro_batches"]
    return {
        "rows": rows,
        "rows_per_batch": rows_per_batch,
        "seconds": round(seconds, 2),
        "events_per_s": round(rows / seconds),
        "staging_seconds": round(staging, 2),
        "detector_seconds": round(detectors, 2),
        "other_seconds": round(seconds - staging - detectors, 2),
        "micro_batches": batches,
        "detector_ms_per_micro_batch": round(1000 * detectors / batches) if batches else None,
        "table_rows": result["table_rows"],
        "modules": result["modules"],
        **listener.totals(),
    }


def staging_profile(config: Any, snapshot_id: int) -> dict[str, float]:
    """The staging's read (one scan per trade day) and trade-time sort of ``snapshot_id`` again, on their own."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from coattail_framework.schemas import EVENT_TIME_COLUMN
    from coattail_stream_job.timetravel import SORT_KEYS, _ranges

    table = raw_trades(config)
    started = time.perf_counter()
    parts = [table.scan(row_filter=where, snapshot_id=snapshot_id).to_arrow() for where in _ranges(table, snapshot_id)]
    read = time.perf_counter()
    ordered = [part.sort_by(SORT_KEYS) for part in parts]
    sorted_at = time.perf_counter()
    for part in ordered:
        pc.cast(part.column(EVENT_TIME_COLUMN), pa.int64()).to_pylist()
    listed = time.perf_counter()
    return {
        "read_seconds": round(read - started, 2),
        "sort_seconds": round(sorted_at - read, 2),
        "trade_times_to_python_seconds": round(listed - sorted_at, 2),
    }


def run() -> dict[str, Any]:
    """Fill, reprocess with each batch size; returns the figures (see the module docstring)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")  # pandas, in the detectors' Python workers
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    import pyspark
    import yaml

    from coattail_devstack.localstack import local_config
    from coattail_framework.spark import local_session
    from coattail_stream_job.reprocess import DEFAULT_ROWS_PER_BATCH

    base = bench_config(SYMBOLS, 2, "reprocess", tier="large")
    results: dict[str, Any] = {"rows": ROWS, "goal_events_per_s": GOAL_EVENTS_PER_S}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        config_file = folder / "features.yaml"
        config_file.write_text(yaml.safe_dump(base.model_dump(mode="json", exclude_none=True)))
        full_root, baseline_root = folder / "full", folder / "baseline"
        full, baseline = local_config(base, full_root, ENDPOINT), local_config(base, baseline_root, ENDPOINT)

        results["fill_seconds"] = round(fill_raw_trades(full, ROWS), 2)
        print(f"bench_reprocess: filled {ROWS} rows in {results['fill_seconds']} s", file=sys.stderr, flush=True)
        baseline_fill = fill_raw_trades(baseline, BASELINE_ROWS)
        snapshot = raw_trades(full).current_snapshot().snapshot_id
        baseline_snapshot = raw_trades(baseline).current_snapshot().snapshot_id

        spark = local_session("coattail-bench-reprocess")
        spark.sparkContext.setLogLevel("ERROR")
        spark.range(1000).selectExpr("sum(id)").collect()
        runs = [("default", full, full_root, snapshot, ROWS, DEFAULT_ROWS_PER_BATCH)]
        runs.append(("baseline", baseline, baseline_root, baseline_snapshot, BASELINE_ROWS, BASELINE_ROWS_PER_BATCH))
        for name, config, root, snapshot_id, rows, per_batch in runs:
            drop_reprocessed(config)
            figures = reprocess(spark, config_file, root, snapshot_id, rows, per_batch)
            results["modules"] = figures.pop("modules")
            if name == "default":
                figures["staging_profile"] = staging_profile(config, snapshot_id)
            if name == "baseline":
                figures["fill_seconds"] = round(baseline_fill, 2)
            results[name] = figures
            print(f"bench_reprocess: {name}: {figures['events_per_s']} events/s", file=sys.stderr, flush=True)
        spark.stop()
    results["pyspark"] = pyspark.__version__
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
