"""Shared fixtures: one in-process moto server on 127.0.0.1, Kinesis helpers, real recorded trades."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coattail_framework.aws.clients import aws_client
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import read_recording

REGION = "us-east-1"


def repo_root() -> Path:
    """The monorepo root, found from this file (tests run from the source tree)."""
    return Path(__file__).resolve().parents[3]


DATA = repo_root() / "tests" / "data"
BTC_DAY1 = DATA / "binance" / "ws" / "spot_btcusdt_20240808.gz"
ETH_DAY1 = DATA / "binance" / "ws" / "spot_ethusdt_20240808.gz"


@pytest.fixture(scope="session", autouse=True)
def _aws_env(aws_env: dict[str, str]) -> dict[str, str]:
    """The test kit's fake credentials (``coattail_devstack``), in the environment for every test."""
    assert aws_env["AWS_DEFAULT_REGION"] == REGION
    return aws_env


@pytest.fixture(scope="session")
def moto_url(moto_endpoint: str) -> str:
    """The test kit's moto server on 127.0.0.1 (free port), for the whole session."""
    return moto_endpoint


@pytest.fixture
def kinesis(moto_url: str) -> Any:
    """A Kinesis client on the moto server."""
    return aws_client("kinesis", region=REGION, endpoint_url=moto_url)


@pytest.fixture
def stream(kinesis: Any) -> str:
    """A fresh 2-shard stream, ACTIVE."""
    name = f"trades-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


def read_stream(client: Any, stream_name: str) -> dict[str, list[dict[str, Any]]]:
    """Every record of every shard, in sequence order per shard: ``{shard_id: [record, ...]}``."""
    shards = client.list_shards(StreamName=stream_name)["Shards"]
    out: dict[str, list[dict[str, Any]]] = {}
    for shard in shards:
        iterator = client.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        while True:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                break
            records.extend(page["Records"])
            iterator = page["NextShardIterator"]
        out[shard["ShardId"]] = records
    return out


def published_events(client: Any, stream_name: str) -> list[tuple[str, str, TradeEvent]]:
    """``(shard_id, partition_key, event)`` for every record, shard by shard in sequence order."""
    return [
        (shard, record["PartitionKey"], TradeEvent.model_validate_json(record["Data"]))
        for shard, records in read_stream(client, stream_name).items()
        for record in records
    ]


def binance_trades(path: Path, limit: int | None = None) -> list[TradeEvent]:
    """TradeEvents of a real Binance recording's trade messages (file order)."""
    events: list[TradeEvent] = []
    for message in read_recording(path):
        raw = json.loads(message.payload)
        data = raw.get("data", {})
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
                ingestion_timestamp=datetime.fromtimestamp(message.received_ns / 1e9, tz=UTC)
                if message.received_ns
                else datetime.now(UTC),
                trade_id=str(data["t"]),
            )
        )
        if limit is not None and len(events) >= limit:
            break
    return events


@pytest.fixture(scope="session")
def btc_trades() -> list[TradeEvent]:
    """The first 3,000 real BTCUSDT spot trades of 2024-08-08."""
    return binance_trades(BTC_DAY1, 3000)


@pytest.fixture(scope="session")
def eth_trades() -> list[TradeEvent]:
    """The first 2,000 real ETHUSDT spot trades of 2024-08-08."""
    return binance_trades(ETH_DAY1, 2000)
