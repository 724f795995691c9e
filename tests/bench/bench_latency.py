"""Trade-to-alert latency of the live stream job: Kinesis arrival of a whale trade -> its DynamoDB item.

The stream job (``PipelineRunner.start()``, live, ``streaming.trigger_seconds`` = 0.5, all
three detectors) runs on local[2] in this process; moto runs in a child process on
127.0.0.1 (``aws_process``: AWS is not inside a deployed job's driver). A paced producer
thread puts ``RATE`` trades/s for ``SECONDS`` s with event time = now into a 1-shard
stream; one trade in ``WHALE_EVERY`` is a single $250K fill, which MOD-002 turns into one
alert. Every query reads the shard at most every ``POLL_INTERVAL_MS`` (four queries stay
within Kinesis's 5 GetRecords/s per shard).

What is measured, per whale alert: ``item seen`` - ``arrival``, where
- ``arrival`` = the trade record's Kinesis ``ApproximateArrivalTimestamp`` (read back
  from the stream after the run; moto stamps it when ``put_records`` is handled);
- ``item seen`` = the wall time a poller thread, querying the table's ``by_type`` index
  every ``POLL_SECONDS``, first saw the alert's item (so each figure is late by up to one
  poll interval; ``POLL_SECONDS`` / 2 on average).
The whale module emits an order once the watermark (max event time of the previous
batch minus its ``watermark_delay_seconds``, set here to ``WHALE_WATERMARK_S``: the fills
of one taker order share one trade time and one partition key) passes its trade time, so
every figure includes that delay plus at least one trigger after the batch that read it.
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
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_process import moto_in_child_process

RATE = int(os.environ.get("BENCH_LATENCY_RATE", "500"))
SECONDS = int(os.environ.get("BENCH_LATENCY_SECONDS", "30"))
WHALE_EVERY = 50
TRIGGER_SECONDS = 0.5
WHALE_WATERMARK_S = float(os.environ.get("BENCH_LATENCY_WHALE_WATERMARK_S", "0.25"))
POLL_INTERVAL_MS = 800
"""Four queries read the shard: 4 x 1000 / 800 = 5 GetRecords/s, Kinesis's per-shard limit."""
POLL_SECONDS = 0.05
POLL_WINDOW_S = 60.0
WARMUP_BATCHES = 5
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


def produce(endpoint: str, stream: str, stop: threading.Event, sent: list[int]) -> None:
    """Put ``RATE`` trades/s in 10 batches per second until ``stop`` (the paced producer)."""
    from coattail_framework.aws.clients import aws_client
    from coattail_framework.events import TradeEvent

    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint)
    per_tick, n, started = RATE // 10, 0, time.monotonic()
    tick = 0
    while not stop.is_set():
        records = []
        for _ in range(per_tick):
            now = datetime.now(timezone.utc)
            whale = n % WHALE_EVERY == WHALE_EVERY - 1
            price, quantity = Decimal("60000"), Decimal("4.1666") if whale else Decimal("0.01")
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
        tick += 1
        time.sleep(max(0.0, started + tick / 10 - time.monotonic()))
    sent.append(n)


def poll_alerts(endpoint: str, table: str, stop: threading.Event, seen: dict[str, float]) -> None:
    """Record when each whale alert item first appears (wall clock, epoch seconds).

    Queries the table's ``by_type`` index for ``whale_trade`` alerts detected in the last
    ``POLL_WINDOW_S`` seconds (an alert later than that would be missed, and show up as a
    shortfall in ``whale_alerts_measured``), so a poll costs the same all run long.
    """
    from coattail_framework.aws.clients import aws_client

    dynamodb = aws_client("dynamodb", region="us-east-1", endpoint_url=endpoint)
    while not stop.is_set():
        since = datetime.fromtimestamp(time.time() - POLL_WINDOW_S, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        paginator = dynamodb.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=table,
                IndexName="by_type",
                KeyConditionExpression="alert_type = :type AND detected_at >= :since",
                ExpressionAttributeValues={":type": {"S": "whale_trade"}, ":since": {"S": since}},
                ProjectionExpression="alert_id, details",
            ):
                now = time.time()
                for item in page["Items"]:
                    seen.setdefault(json.loads(item["details"]["S"])["first_trade_id"], now)
        except ClientError as error:  # moto answers 500 now and then under concurrent writes: query again
            print(f"bench_latency: query failed, retrying: {error}", file=sys.stderr)
        stop.wait(POLL_SECONDS)


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
    """Poll ``condition`` every 0.1 s; raise naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def batch_timings(query: Any) -> dict[str, float]:
    """Median rows, ``triggerExecution`` (ms) and start-to-start period (ms) of the query's data batches.

    The first ``WARMUP_BATCHES`` batches (JIT warm-up, table creation) are left out.
    """
    data = [p for p in query.recentProgress if int(p["numInputRows"]) > 0][WARMUP_BATCHES:]
    if len(data) < 2:
        return {"batches": len(data)}
    starts = [datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00")).timestamp() for p in data]
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


def run() -> dict[str, Any]:
    """Run the live job under the paced producer; returns the latency figures (see the module docstring)."""
    os.environ.update(FAKE_AWS)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from coattail_framework.config.model import CoattailConfig
    from coattail_framework.localstack import create_resources, local_config
    from coattail_framework.pipeline import PipelineRunner
    from coattail_framework.spark import local_session

    config = CoattailConfig.model_validate(
        {
            "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}, "BTC/USD": {"coinbase": "BTC-USD"}},
            "exchanges": {"binance": {"connector": "binance"}, "coinbase": {"connector": "coinbase"}},
            "kinesis": {
                "stream_name": "bench-latency",
                "shard_count": 1,
                "min_poll_interval_ms": POLL_INTERVAL_MS,
                "idle_poll_interval_ms": POLL_INTERVAL_MS,
            },
            "dynamodb": {"table_name": "bench-latency"},
            "streaming": {"trigger_seconds": TRIGGER_SECONDS},
            "modules": {"whale": {"watermark_delay_seconds": WHALE_WATERMARK_S}},
            "metrics": {"enabled": False},
        }
    )
    with tempfile.TemporaryDirectory() as scratch, moto_in_child_process() as endpoint:
        job_config = local_config(config, Path(scratch), endpoint)
        create_resources(job_config)
        floor = transport_floor(endpoint, "bench-latency-floor")
        spark = local_session("coattail-bench-latency")
        spark.sparkContext.setLogLevel("ERROR")
        runner = PipelineRunner(spark, job_config)
        queries = runner.start()
        wait_until(lambda: all(q.lastProgress is not None for q in queries), 300, "the queries' first triggers")
        stop = threading.Event()
        sent: list[int] = []
        seen: dict[str, float] = {}
        poller = threading.Thread(target=poll_alerts, args=(endpoint, "bench-latency", stop, seen))
        producer_stop = threading.Event()
        producer = threading.Thread(target=produce, args=(endpoint, "bench-latency", producer_stop, sent))
        poller.start()
        producer.start()
        time.sleep(SECONDS)
        producer_stop.set()
        producer.join()
        # The whale query reads the last trades, then runs one no-data batch for the final watermark,
        # which emits every order but those of the last ~2 s (no later trade moves the watermark past them).
        whale = next(q for q in queries if q.name == "detector-whale")
        wait_until(lambda: runner.stats.input_rows["detector-whale"] >= sent[0], 300, "the whale query to catch up")
        last_data_batch = latest_batch(whale)
        wait_until(lambda: latest_batch(whale) > last_data_batch, 300, "the whale query's no-data batch")
        time.sleep(5 * POLL_SECONDS)
        stop.set()
        poller.join()
        batches = {query.name: batch_timings(query) for query in queries}
        runner.stop()
        totals = runner.stats.snapshot()
        arrived = arrivals(endpoint, "bench-latency")
        spark.stop()
    latencies = [seen_at - arrived[trade_id] for trade_id, seen_at in seen.items() if trade_id in arrived]
    if not latencies:
        raise RuntimeError(
            f"no whale alert was seen ({sent[0]} trades sent, {len(arrived)} records read back); "
            f"job totals: {json.dumps(totals)}"
        )
    whales_sent = len([n for n in range(sent[0]) if n % WHALE_EVERY == WHALE_EVERY - 1])
    return {
        "rate_events_per_s": RATE,
        "seconds": SECONDS,
        "events_sent": sent[0],
        "whale_trades_sent": whales_sent,
        "whale_alerts_measured": len(latencies),
        "trigger_seconds": TRIGGER_SECONDS,
        "whale_watermark_delay_seconds": WHALE_WATERMARK_S,
        "kinesis_poll_interval_ms": POLL_INTERVAL_MS,
        "poll_seconds": POLL_SECONDS,
        "trade_to_alert": summary_ms(latencies),
        "batches_per_query": batches,
        "baseline_put_to_get_records": summary_ms(floor),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
    sys.exit(0)
