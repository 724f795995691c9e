"""Trade-to-alert latency of the live stream job: Kinesis arrival of a whale trade -> its DynamoDB item.

The stream job (``PipelineRunner.start()``, live, all three detectors) runs on local[2] in
this process, with the triggers and read pacing of ``config/features.yaml`` (``streaming``,
``kinesis.min_poll_interval_ms``): the early whale query (MOD-002's early alerts, ADR-024: the
hot path measured here) on a 0.5 s trigger, the stateful whale query, the ingest query and
the windowed modules on longer ones (a shorter trigger would not make their output earlier).
moto runs in a child process on 127.0.0.1 (``aws_process``: AWS is not inside a deployed job's driver). A paced producer
puts trades with event time = now into a 1-shard stream, in three phases without a pause:
``STEADY_RATE`` trades/s for ``WARMUP_SECONDS`` (not measured: the JVM compiles Spark's code
for the first minutes, using up to half a core), ``STEADY_RATE`` for ``SECONDS`` (the
"steady" figure: below what the job drains from one shard on local[2]), then ``RATE`` for ``SECONDS`` (the
"goal" figure: issue 4's 500 events/s). One trade in ``WHALE_EVERY`` is a single $250K
fill, which MOD-002 turns into one alert; each phase's figure covers its own whale trades.
Every query reads the shard once per batch (``PipelineRunner.reads_per_shard_second``
is recorded in the output), within Kinesis's 5 GetRecords/s per shard.

What is measured, per whale alert: ``item stored`` - ``arrival``, where
- ``arrival`` = the trade record's Kinesis ``ApproximateArrivalTimestamp`` (read back
  from the stream after the run; moto stamps it when ``put_records`` is handled);
- ``item stored`` = the time moto stored the alert's DynamoDB item (its conditional put
  succeeded: from then on a reader gets it), reported by moto's process
  (``aws_process``, ``put_log``). Both are taken in moto's process, on one clock. No poller
  queries the table: the 20 Hz poller used before took about a quarter of moto's busy time
  (py-spy), on the two cores the job has.
The early whale query puts an order's alert in the batch that read it when that batch holds
the trades just before and after the order (else one batch later: the order is carried).
The stateful whale query emits every order once the watermark (max event time of the
previous batch minus its ``watermark_delay_seconds``, set here to ``WHALE_WATERMARK_S``)
passes its trade time; its put of an alert the early query made is a duplicate, so each
figure is the first put. ``alerts_put_first_by_early_query`` counts the early query's.
Baseline, same run: bare boto3 ``put_record`` then ``get_records`` polled every 10 ms
until the record is visible (the transport floor: moto's put-to-readable time).

    python tests/bench/bench_latency.py     # prints JSON
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_process import moto_in_child_process, put_log_queue
from bench_pipeline import shipped_config

RATE = int(os.environ.get("BENCH_LATENCY_RATE", "500"))
"""The goal's rate (issue 4: p99 under 2 s at a steady 500 events/s)."""
STEADY_RATE = int(os.environ.get("BENCH_LATENCY_STEADY_RATE", "200"))
"""Below what the job drains from a 1-shard stream on local[2] (scaling table of docs/BENCHMARKS.md)."""
SECONDS = int(os.environ.get("BENCH_LATENCY_SECONDS", "30"))
WARMUP_SECONDS = int(os.environ.get("BENCH_LATENCY_WARMUP_SECONDS", "30"))
WHALE_EVERY = 50
WHALE_WATERMARK_S = float(os.environ.get("BENCH_LATENCY_WHALE_WATERMARK_S", "0.25"))
BASELINE_SAMPLES = 200
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(values: list[float]) -> dict[str, float]:
    """count, p50, p99, max and mean in milliseconds of values in seconds."""
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.5) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


def whale(n: int) -> bool:
    """Whether trade ``n`` is a whale-sized fill (one in ``WHALE_EVERY``)."""
    return n % WHALE_EVERY == WHALE_EVERY - 1


def produce(endpoint: str, stream: str, phases: Sequence[tuple[str, int, float]], bounds: dict[str, range]) -> None:
    """Put trades paced in 10 batches per second, phase after phase: ``(name, trades/s, seconds)``.

    Records each phase's trade numbers in ``bounds`` (the stream is continuous across phases).
    """
    from coattail_framework.aws.clients import aws_client
    from coattail_framework.events import TradeEvent

    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint)
    n = 0
    for name, rate, seconds in phases:
        first, per_tick, started = n, rate // 10, time.monotonic()
        for tick in range(1, round(seconds * 10) + 1):
            records = []
            for _ in range(per_tick):
                now = datetime.now(UTC)
                price, quantity = Decimal("60000"), Decimal("4.1666") if whale(n) else Decimal("0.01")
                trade = TradeEvent(
                    event_id=f"binance:BTCUSDT:{n}",
                    exchange="binance",
                    symbol="BTCUSDT",
                    price=price + n % 7,
                    quantity=quantity,
                    quote_volume=(price + n % 7) * quantity,
                    side="buy" if n % 2 else "sell",
                    timestamp=now,
                    ingestion_timestamp=now,
                    trade_id=str(n),
                )
                records.append({"Data": trade.to_json().encode(), "PartitionKey": trade.partition_key})
                n += 1
            kinesis.put_records(StreamName=stream, Records=records)
            time.sleep(max(0.0, started + tick / 10 - time.monotonic()))
        bounds[name] = range(first, n)


def whale_alert_times(put_log: Any, table: str) -> dict[str, float]:
    """``first_trade_id -> epoch seconds`` at which moto stored each whale alert item of ``table``."""
    import queue

    stored: dict[str, float] = {}
    while True:
        try:
            name, item, at = put_log.get(timeout=1.0)
        except queue.Empty:
            return stored
        if name == table and item["alert_type"]["S"] == "whale_trade":
            stored.setdefault(json.loads(item["details"]["S"])["first_trade_id"], at)


def arrivals(endpoint: str, stream: str) -> dict[str, float]:
    """``trade_id -> ApproximateArrivalTimestamp`` (epoch seconds) of every record in the stream."""
    from coattail_framework.aws.clients import aws_client

    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint)
    found: dict[str, float] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for record in response["Records"]:
                found[json.loads(record["Data"])["trade_id"]] = record["ApproximateArrivalTimestamp"].timestamp()
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
    return found


def transport_floor(endpoint: str, stream: str) -> list[float]:
    """Seconds from calling ``put_record`` to ``get_records`` first returning the record (bare boto3, own stream)."""
    from coattail_framework.aws.clients import aws_client

    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint)
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    samples = []
    for n in range(BASELINE_SAMPLES):
        started = time.time()
        kinesis.put_record(StreamName=stream, Data=f"probe-{n}".encode(), PartitionKey="probe")
        while True:
            response = kinesis.get_records(ShardIterator=iterator, Limit=100)
            iterator = response["NextShardIterator"]
            if response["Records"]:
                samples.append(time.time() - started)
                break
            time.sleep(0.01)
    return samples


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s (``resilience.wait_until``); raise naming ``what`` after ``timeout`` seconds."""
    from coattail_framework.resilience import wait_until as poll

    if not poll(condition, timeout, interval_s=0.1):
        raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def started_at(progress: dict[str, Any]) -> float:
    """Epoch seconds at which a progress report's batch started."""
    return datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00")).timestamp()


def batch_timings(query: Any, since: float) -> dict[str, float]:
    """Median rows, ``triggerExecution`` (ms) and start-to-start period (ms) of data batches started after ``since``."""
    data = [p for p in query.recentProgress if int(p["numInputRows"]) > 0 and started_at(p) >= since]
    if len(data) < 2:
        return {"batches": len(data)}
    starts = [started_at(p) for p in data]
    return {
        "batches": len(data),
        "median_rows": statistics.median(int(p["numInputRows"]) for p in data),
        "median_trigger_ms": statistics.median(int(p["durationMs"]["triggerExecution"]) for p in data),
        "median_period_ms": round(statistics.median(b - a for a, b in itertools.pairwise(starts)) * 1000),
    }


def latest_batch(query: Any) -> int:
    """The id of the query's last reported batch (-1 before its first)."""
    progress = query.lastProgress
    return -1 if progress is None else int(progress["batchId"])


def live_config(stream: str, *, shards: int, **kinesis: Any) -> Any:
    """The live job's configuration here: BTCUSDT (binance) and BTC-USD (coinbase), the three Small-tier modules,
    the shipped triggers, read pacing and snapshot retention, the whale watermark ``WHALE_WATERMARK_S``, no metrics.

    ``stream`` names the stream and the alert table; ``kinesis``: more ``kinesis`` settings.
    """
    from coattail_framework.config.model import CoattailConfig

    shipped = shipped_config()
    return CoattailConfig.model_validate(
        {
            "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}, "BTC/USD": {"coinbase": "BTC-USD"}},
            "exchanges": {"binance": {"connector": "binance"}, "coinbase": {"connector": "coinbase"}},
            "kinesis": {
                "stream_name": stream,
                "shard_count": shards,
                "min_poll_interval_ms": shipped.kinesis.min_poll_interval_ms,
                "idle_poll_interval_ms": shipped.kinesis.min_poll_interval_ms,
                **kinesis,
            },
            "dynamodb": {"table_name": stream},
            "streaming": shipped.streaming.model_dump(),
            "iceberg": {"maintenance": shipped.iceberg.maintenance.model_dump()},
            "modules": {"whale": {"watermark_delay_seconds": WHALE_WATERMARK_S}},
            "metrics": {"enabled": False},
        }
    )


def run() -> dict[str, Any]:
    """Run the live job under the paced producer; returns the latency figures (see the module docstring)."""
    os.environ.update(FAKE_AWS)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from coattail_devstack.localstack import create_resources, local_config
    from coattail_framework.pipeline import PipelineRunner
    from coattail_framework.spark import local_session

    config = live_config("bench-latency", shards=1)
    put_log = put_log_queue()
    with tempfile.TemporaryDirectory() as scratch, moto_in_child_process(put_log) as endpoint:
        job_config = local_config(config, Path(scratch), endpoint)
        create_resources(job_config)
        floor = transport_floor(endpoint, "bench-latency-floor")
        spark = local_session("coattail-bench-latency")
        spark.sparkContext.setLogLevel("ERROR")
        runner = PipelineRunner(spark, job_config)
        queries = runner.start()
        wait_until(lambda: all(q.lastProgress is not None for q in queries), 300, "the queries' first triggers")
        bounds: dict[str, range] = {}
        phases = [("warmup", STEADY_RATE, WARMUP_SECONDS), ("steady", STEADY_RATE, SECONDS), ("goal", RATE, SECONDS)]
        phase_started = {"steady": time.time() + WARMUP_SECONDS, "goal": time.time() + WARMUP_SECONDS + SECONDS}
        produce(endpoint, "bench-latency", phases, bounds)
        sent = bounds["goal"].stop
        # The whale query reads the last trades, then runs one no-data batch for the final watermark,
        # which emits every order but those of the last ~2 s (no later trade moves the watermark past them).
        whale_query = next(q for q in queries if q.name == "detector-whale")
        wait_until(lambda: runner.stats.input_rows["detector-whale"] >= sent, 300, "the whale query to catch up")
        last_data_batch = latest_batch(whale_query)
        wait_until(lambda: latest_batch(whale_query) > last_data_batch, 300, "the whale query's no-data batch")
        batches = {query.name: batch_timings(query, phase_started["goal"]) for query in queries}
        runner.stop()
        totals = runner.stats.snapshot()
        arrived = arrivals(endpoint, "bench-latency")
        seen = whale_alert_times(put_log, "bench-latency")
        spark.stop()
    if not any(trade_id in arrived for trade_id in seen):
        raise RuntimeError(
            f"no whale alert was seen ({sent} trades sent, {len(arrived)} records read back); "
            f"job totals: {json.dumps(totals)}"
        )

    def phase(name: str, rate: int) -> dict[str, Any]:
        whales = [str(n) for n in bounds[name] if whale(n)]
        latencies = [seen[t] - arrived[t] for t in whales if t in seen and t in arrived]
        return {
            "rate_events_per_s": rate,
            "seconds": SECONDS,
            "events_sent": len(bounds[name]),
            "whale_trades_sent": len(whales),
            "whale_alerts_measured": len(latencies),
            "trade_to_alert": summary_ms(latencies),
        }

    return {
        "warmup_seconds": WARMUP_SECONDS,
        "goal": phase("goal", RATE),
        "steady": phase("steady", STEADY_RATE),
        "trigger_seconds": runner.trigger_seconds(),
        "read_delay_seconds": runner.read_delays(),
        "reads_per_shard_second": round(runner.reads_per_shard_second(), 2),
        "whale_watermark_delay_seconds": WHALE_WATERMARK_S,
        "kinesis_min_poll_interval_ms": config.kinesis.min_poll_interval_ms,
        "batches_per_query": batches,
        "alerts_put_first_by_early_query": totals["early_alerts"],
        "alert_puts_found_present": totals["duplicates"],
        "baseline_put_to_get_records": summary_ms(floor),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
    sys.exit(0)
