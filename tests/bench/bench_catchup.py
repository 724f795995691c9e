"""Catch-up of the live stream job after an outage: a stream holding a backlog, then live trades.

Goal (issue text): after a 30-minute stop at 500 trades/s (900,000 records waiting), the job
is back within live latency (whale trade-to-alert p99 under 2 s, ``bench_latency``) in under
5 minutes.

Same job and configuration as ``bench_latency`` (moto in a child process with its DynamoDB put
log, local[2], all three Small-tier detectors, the triggers and read pacing of
``config/features.yaml``, whale watermark delay ``WHALE_WATERMARK_S``, a 1-shard stream as
there: ``BENCH_CATCHUP_SHARDS`` changes it), except that a backlog batch is bounded by the shipped
``kinesis.max_records_per_trigger`` and ``max_bytes_per_trigger`` (the settings a catch-up
reads with; ``bench_latency``'s live batches stay far below either). Before the job starts,
``BACKLOG`` trades are put (``put_records``, 500 a call) whose event times run from
``BACKLOG / RATE`` seconds ago up to now, ``1 / RATE`` apart, one in ``WHALE_EVERY`` a $250K
whale: the outage's records. Their Kinesis arrival is the put (moto stamps it), so
``timeliness_event_time`` accepts them (at most 86,400 s behind). Then
``PipelineRunner.start()`` (live, not a drain) and, at the same instant (``job start``), a
paced producer thread puts live trades with event time = now at ``RATE``/s for
``LIVE_SECONDS``, one in ``WHALE_EVERY`` a $250K whale, then ``TAIL_SECONDS`` more without
whales (so the last whales have later trades, which prove them to the early query and move the
whale watermark past them). The job is stopped once the early and stateful whale queries read
every trade sent (at most ``FINAL_WAIT_SECONDS`` after the producer ends).

Per live whale trade: latency = the time moto stored its alert's DynamoDB item - the trade's
Kinesis ``ApproximateArrivalTimestamp`` (both in moto's process, one clock; as in
``bench_latency``), and its offset = arrival - job start. Catch-up time = the offset of the
first live whale trade from which on every live whale trade's latency is below
``LIVE_LATENCY_S`` (2 s; a whale without an alert counts as above); None if the last one is
not. Also per query, the end (seconds after job start) of its last batch of at least
``BACKLOG_BATCH_ROWS`` input rows: where its backlog batches ended. Trade numbers (``trade_id``)
run on from the backlog into the live trades, as one exchange's would.

Baseline, same bench run: ``bench_latency`` (the same job at 500 trades/s without a backlog);
beside it here, the outage length ``BACKLOG / RATE`` (1800 s at the defaults).

    python tests/bench/bench_catchup.py     # prints JSON
    BENCH_CATCHUP_BACKLOG=20000 BENCH_CATCHUP_LIVE_SECONDS=60 python tests/bench/bench_catchup.py   # smoke
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_process import moto_in_child_process, put_log_queue
from bench_latency import (
    FAKE_AWS,
    WHALE_EVERY,
    arrivals,
    live_config,
    started_at,
    summary_ms,
    whale,
    whale_alert_times,
)
from bench_pipeline import shipped_config

BACKLOG = int(os.environ.get("BENCH_CATCHUP_BACKLOG", "900000"))
"""Records waiting when the job starts: 30 minutes at ``RATE``."""
RATE = int(os.environ.get("BENCH_CATCHUP_RATE", "500"))
"""Trades/s of the outage (the backlog's event times) and of the live producer."""
LIVE_SECONDS = int(os.environ.get("BENCH_CATCHUP_LIVE_SECONDS", "360"))
"""How long live trades (with whales) are put from job start: the goal's 5 minutes and some."""
SHARDS = int(os.environ.get("BENCH_CATCHUP_SHARDS", "1"))
"""Shards of the stream: 1, as ``bench_latency``."""
TAIL_SECONDS = 5
FINAL_WAIT_SECONDS = 60.0
LIVE_LATENCY_S = 2.0
"""Live latency goal: whale trade-to-alert under 2 s (``bench_latency``'s p99 goal), per trade here."""
GOAL_SECONDS = 300
BACKLOG_BATCH_ROWS = 10_000
"""A batch of at least this many input rows reads backlog (a live 10 s batch at 500/s holds 5,000)."""
PUT_BATCH = 500
MAX_SERIES_POINTS = 500
STREAM = "bench-catchup"
EARLY_QUERY, WHALE_QUERY = "early-whale", "detector-whale"


def trade_record(n: int, at: datetime, whale_sized: bool) -> dict[str, Any]:
    """Trade number ``n`` at ``at`` as a ``put_records`` entry, $250K when ``whale_sized`` (as ``bench_latency``'s)."""
    from coattail_framework.events import TradeEvent

    price, quantity = Decimal("60000") + n % 7, Decimal("4.1666") if whale_sized else Decimal("0.01")
    trade = TradeEvent(
        event_id=f"binance:BTCUSDT:{n}",
        exchange="binance",
        symbol="BTCUSDT",
        price=price,
        quantity=quantity,
        quote_volume=price * quantity,
        side="buy" if n % 2 else "sell",
        timestamp=at,
        ingestion_timestamp=at,
        trade_id=str(n),
    )
    return {"Data": trade.to_json().encode(), "PartitionKey": trade.partition_key}


def put_backlog(endpoint: str, stream: str, count: int, rate: int) -> float:
    """Put trades ``0 .. count-1``, event times ``1 / rate`` s apart ending now; returns the put's wall seconds.

    Built ``PUT_BATCH`` at a time, so the backlog is never in memory whole.
    """
    from coattail_framework.aws.clients import aws_client

    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint)
    first_at = datetime.now(UTC) - timedelta(seconds=count / rate)
    started = time.perf_counter()
    for first in range(0, count, PUT_BATCH):
        records = [
            trade_record(n, first_at + timedelta(seconds=n / rate), whale(n))
            for n in range(first, min(first + PUT_BATCH, count))
        ]
        if kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"]:
            raise RuntimeError(f"moto refused backlog records (put_records of trades {first}..)")
    return time.perf_counter() - started


@dataclass
class LiveTally:
    """What the live producer sent: trade count, the live whale trade ids, refused records, its error."""

    sent: int = 0
    whales: list[str] = field(default_factory=list)
    failed: int = 0
    error: BaseException | None = None


def produce_live(endpoint: str, stream: str, first: int, tally: LiveTally, stop: threading.Event) -> None:
    """Put trades ``first ..`` with event time = now, paced in 10 batches per second (``bench_latency.produce``).

    ``RATE``/s for ``LIVE_SECONDS`` with whales, then ``TAIL_SECONDS`` without; ends early when ``stop`` is set.
    """
    from coattail_framework.aws.clients import aws_client

    try:
        kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint)
        per_tick, live_ticks, started = RATE // 10, LIVE_SECONDS * 10, time.monotonic()
        n = first
        for tick in range(1, (LIVE_SECONDS + TAIL_SECONDS) * 10 + 1):
            if stop.is_set():
                return
            records = []
            for _ in range(per_tick):
                whale_sized = whale(n) and tick <= live_ticks
                if whale_sized:
                    tally.whales.append(str(n))
                records.append(trade_record(n, datetime.now(UTC), whale_sized))
                n += 1
            tally.failed += int(kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"])
            tally.sent = n - first
            time.sleep(max(0.0, started + tick / 10 - time.monotonic()))
    except Exception as error:  # re-raised by run() in the main thread
        tally.error = error


def catch_up(points: list[tuple[float, float | None]], limit: float) -> float | None:
    """Offset of the first point from which on every latency is below ``limit`` (None latency: above); None if none."""
    caught: float | None = None
    for offset, latency in reversed(points):
        if latency is None or latency >= limit:
            break
        caught = offset
    return caught


def series(points: list[tuple[float, float | None]]) -> tuple[list[list[float | None]], int]:
    """At most ``MAX_SERIES_POINTS`` of ``points``: per group of consecutive ones, the highest latency (None first).

    Returns ``[[offset_s, latency_s], ...]`` rounded to 0.01 s and the group size.
    """
    size = max(1, math.ceil(len(points) / MAX_SERIES_POINTS))
    kept: list[list[float | None]] = []
    for start in range(0, len(points), size):
        group = points[start : start + size]
        offset, latency = max(group, key=lambda p: math.inf if p[1] is None else p[1])
        kept.append([round(offset, 2), None if latency is None else round(latency, 2)])
    return kept, size


def backlog_ends(queries: list[Any], job_start: float) -> dict[str, float | None]:
    """Per query: seconds after ``job_start`` at which its last batch of ``BACKLOG_BATCH_ROWS``+ input rows ended."""
    ends: dict[str, float | None] = {}
    for query in queries:
        big = [p for p in query.recentProgress if int(p["numInputRows"]) >= BACKLOG_BATCH_ROWS]
        if not big:
            ends[query.name] = None
            continue
        last = big[-1]
        ended = started_at(last) + int(last["durationMs"].get("triggerExecution", 0)) / 1000
        ends[query.name] = round(ended - job_start, 1)
    return ends


def read_all(input_rows: Counter[str], name: str, total: int) -> bool:
    """Whether query ``name`` read ``total`` rows (``PipelineStats.input_rows``)."""
    return input_rows[name] >= total


def run() -> dict[str, Any]:
    """Fill the stream with the backlog, run the live job under the paced producer; returns the figures."""
    os.environ.update(FAKE_AWS)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import pyspark

    from coattail_devstack.localstack import create_resources, local_config
    from coattail_framework.pipeline import PipelineRunner
    from coattail_framework.resilience import wait_until as poll
    from coattail_framework.spark import local_session

    shipped = shipped_config()
    config = live_config(
        STREAM,
        shards=SHARDS,
        max_records_per_trigger=shipped.kinesis.max_records_per_trigger,
        max_bytes_per_trigger=shipped.kinesis.max_bytes_per_trigger,
    )
    put_log = put_log_queue()
    tally, stop = LiveTally(), threading.Event()
    with tempfile.TemporaryDirectory() as scratch, moto_in_child_process(put_log) as endpoint:
        job_config = local_config(config, Path(scratch), endpoint)
        create_resources(job_config)
        spark = local_session("coattail-bench-catchup")
        spark.sparkContext.setLogLevel("ERROR")
        spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", "2000")
        put_seconds = put_backlog(endpoint, STREAM, BACKLOG, RATE)
        print(f"bench_catchup: {BACKLOG} backlog records put in {put_seconds:.0f}s", file=sys.stderr, flush=True)
        runner = PipelineRunner(spark, job_config)
        producer = threading.Thread(
            target=produce_live, args=(endpoint, STREAM, BACKLOG, tally, stop), name="bench-live-producer"
        )
        queries: list[Any] = []
        job_start = time.time()
        producer.start()
        try:
            queries = runner.start()
            producer.join()
            if tally.error is not None:
                raise RuntimeError(f"the live producer failed: {tally.error!r}") from tally.error
            total = BACKLOG + tally.sent
            deadline = time.monotonic() + FINAL_WAIT_SECONDS
            for name in (EARLY_QUERY, WHALE_QUERY):
                poll(partial(read_all, runner.stats.input_rows, name, total), max(0.0, deadline - time.monotonic()))
        finally:
            stop.set()
            producer.join()
        runner.stop()
        failed = [f"{q.name}: {str(q.exception())[:300]}" for q in queries if q.exception() is not None]
        if failed:
            raise RuntimeError(f"queries failed: {'; '.join(failed)}")
        ends = backlog_ends(queries, job_start)
        totals = runner.stats.snapshot()
        triggers = runner.trigger_seconds()
        arrived = arrivals(endpoint, STREAM)
        seen = whale_alert_times(put_log, STREAM)
        spark.stop()

    live = sorted((arrived[t] - job_start, t) for t in tally.whales if t in arrived)
    points = [(offset, seen[t] - arrived[t] if t in seen else None) for offset, t in live]
    caught = catch_up(points, LIVE_LATENCY_S)
    after = [latency for offset, latency in points if caught is not None and offset >= caught and latency is not None]
    kept, group = series(points)
    backlog_whales = [str(n) for n in range(BACKLOG) if whale(n)]
    return {
        "backlog": BACKLOG,
        "rate": RATE,
        "shards": SHARDS,
        "outage_seconds": round(BACKLOG / RATE, 1),
        "put_seconds": round(put_seconds, 1),
        "live_seconds": LIVE_SECONDS,
        "catch_up_seconds": None if caught is None else round(caught, 1),
        "goal_seconds": GOAL_SECONDS,
        "goal_met": caught is not None and caught < GOAL_SECONDS,
        "latency_after_catch_up_ms": summary_ms(after) if after else None,
        "live_whales_sent": len(tally.whales),
        "live_whales_alerted": sum(1 for _, latency in points if latency is not None),
        "backlog_whales_sent": len(backlog_whales),
        "backlog_whales_alerted": sum(1 for t in backlog_whales if t in seen),
        "live_trades_sent": tally.sent,
        "live_records_refused": tally.failed,
        "rows_read": totals["input_rows"],
        "dead_letters": totals["dead_letters"],
        "backlog_end_seconds": ends,
        "series": kept,
        "series_group_size": group,
        "trigger_seconds": triggers,
        "max_records_per_trigger": shipped.kinesis.max_records_per_trigger,
        "whale_every": WHALE_EVERY,
        "baseline": "bench_latency: the same job at 500 trades/s without a backlog",
        "pyspark": pyspark.__version__,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
    sys.exit(0)
