"""Producer throughput into Kinesis (moto) against a bare boto3 ``put_records`` loop, same events, same run.

Both sides publish the same real BTCUSDT and ETHUSDT trades (from tests/data) as
``TradeEvent.to_json()`` records keyed by symbol, in batches of 500, through the same
client settings, to fresh 2-shard streams on one in-process moto server on 127.0.0.1.
The producer side is ``KinesisPublisher`` driven like the connectors drive it
(``await publisher.put(event)`` per event, then ``close``); the bare side serializes and
calls ``put_records`` in a plain loop. Every stream is read back and must hold every
event exactly once. Goal: the producer within 10% of the bare loop.

    python tests/bench/bench_producer.py      # prints the result as JSON
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from coattail_framework.aws.clients import aws_client
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import read_recording
from coattail_producer.publisher import KinesisPublisher
from coattail_producer.settings import PublisherSettings

DATA = Path(__file__).resolve().parents[1] / "data" / "binance" / "ws"
RECORDINGS = [DATA / "spot_btcusdt_20240808.gz", DATA / "spot_ethusdt_20240808.gz"]
REGION = "us-east-1"
ROUNDS = 3


def load_events() -> list[TradeEvent]:
    """Every trade of the two recordings, merged by trade time."""
    events = []
    for path in RECORDINGS:
        for message in read_recording(path):
            data = json.loads(message.payload).get("data", {})
            if data.get("e") != "trade":
                continue
            price, quantity = Decimal(data["p"]), Decimal(data["q"])
            events.append(
                TradeEvent(
                    event_id=f"binance:{data['s']}:{data['t']}",
                    exchange="binance",
                    symbol=data["s"],
                    price=price,
                    quantity=quantity,
                    quote_volume=price * quantity,
                    side="sell" if data["m"] else "buy",
                    timestamp=datetime.fromtimestamp(data["T"] / 1000, tz=UTC),
                    ingestion_timestamp=datetime.fromtimestamp((message.received_ns or 0) / 1e9, tz=UTC),
                    trade_id=str(data["t"]),
                )
            )
    return sorted(events, key=lambda event: event.timestamp)


def new_stream(client: Any) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=2)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


def stream_event_ids(client: Any, stream: str) -> list[str]:
    ids: list[str] = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                break
            ids.extend(json.loads(record["Data"])["event_id"] for record in page["Records"])
            iterator = page["NextShardIterator"]
    return ids


def bare_loop(client: Any, stream: str, events: list[TradeEvent]) -> float:
    """Seconds for a plain serialize + put_records loop (500 per call, failed entries re-sent)."""
    started = time.perf_counter()
    for start in range(0, len(events), 500):
        entries = [
            {"Data": event.to_json().encode("utf-8"), "PartitionKey": event.partition_key}
            for event in events[start : start + 500]
        ]
        while entries:
            result = client.put_records(StreamName=stream, Records=entries)
            entries = [e for e, r in zip(entries, result["Records"], strict=True) if r.get("ErrorCode")]
    return time.perf_counter() - started


async def producer_run(client: Any, stream: str, events: list[TradeEvent]) -> float:
    """Seconds for the producer's publisher to take and publish every event."""
    publisher = KinesisPublisher(client, stream, PublisherSettings())
    started = time.perf_counter()
    await publisher.start()
    for event in events:
        await publisher.put(event)
    await publisher.close(deadline_seconds=300)
    elapsed = time.perf_counter() - started
    if publisher.stats.published != len(events) or publisher.stats.dropped_total:
        raise RuntimeError(f"producer published {publisher.stats.published} of {len(events)}")
    return elapsed


def run() -> dict[str, Any]:
    """Run the benchmark; returns events/s of both sides (best of the rounds) and their ratio."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    events = load_events()
    expected = sorted(event.event_id for event in events)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = aws_client("kinesis", region=REGION, endpoint_url=f"http://{host}:{port}")
        bare_seconds: list[float] = []
        producer_seconds: list[float] = []
        for round_number in range(ROUNDS):
            # Alternate which side goes first so drift in machine load favours neither.
            sides = [("bare", bare_seconds), ("producer", producer_seconds)]
            for side, seconds in sides if round_number % 2 == 0 else reversed(sides):
                stream = new_stream(client)
                if side == "bare":
                    seconds.append(bare_loop(client, stream, events))
                else:
                    seconds.append(asyncio.run(producer_run(client, stream, events)))
                if sorted(stream_event_ids(client, stream)) != expected:
                    raise RuntimeError(f"the {side} side did not publish every event exactly once")
                client.delete_stream(StreamName=stream)
    finally:
        server.stop()
    bare_rate = len(events) / min(bare_seconds)
    producer_rate = len(events) / min(producer_seconds)
    return {
        "events": len(events),
        "rounds": ROUNDS,
        "bare_put_records_events_per_s": round(bare_rate),
        "producer_events_per_s": round(producer_rate),
        "producer_vs_bare": round(producer_rate / bare_rate, 3),
        "goal_producer_vs_bare_at_least": 0.9,
        "bare_seconds": [round(s, 3) for s in bare_seconds],
        "producer_seconds": [round(s, 3) for s in producer_seconds],
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run(), indent=2) + "\n")
