"""Fixtures of the Kinesis source tests: moto's Kinesis in-process and one local[2] Spark session."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import pytest

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
)
REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of moto's AWS on 127.0.0.1 (a free port), for the whole test session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def kinesis(moto_endpoint: str) -> Any:
    """A boto3 Kinesis client on moto."""
    import boto3

    return boto3.client("kinesis", region_name=REGION, endpoint_url=moto_endpoint)


SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
}
"""The platform's session time zone (UTC) and a small, quiet local session."""


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The one local[2] SparkSession of the run (UTC, 2 shuffle partitions, no UI), with the source registered."""
    from pyspark.sql import SparkSession

    from coattail_kinesis.source import register

    builder = SparkSession.builder.master("local[2]").appName("coattail-kinesis-tests")
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    register(session)
    yield session
    session.stop()


@pytest.fixture
def new_stream(kinesis: Any) -> Callable[[int], str]:
    """Creates a stream with the given number of shards; returns its name."""

    def create(shards: int) -> str:
        name = f"trades-{uuid.uuid4().hex[:10]}"
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
        return name

    return create


@pytest.fixture
def put_trades(kinesis: Any) -> Callable[[str, range], None]:
    """Puts one JSON record ``{"id": n}`` per id, partition key ``key-<n mod 7>``, 500 per call."""

    def put(stream: str, ids: range) -> None:
        ids_list = list(ids)
        for first in range(0, len(ids_list), 500):
            chunk = ids_list[first : first + 500]
            response = kinesis.put_records(
                StreamName=stream,
                Records=[{"Data": json.dumps({"id": n}).encode(), "PartitionKey": f"key-{n % 7}"} for n in chunk],
            )
            assert response["FailedRecordCount"] == 0

    return put


@pytest.fixture
def split_like_kinesis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's SplitShard behave like Kinesis: the parent keeps its records, children start empty.

    moto (5.x) empties the parent and re-puts its records under new sequence numbers, and
    keeps routing new records to the closed parent; real Kinesis does neither.
    """
    from moto.kinesis.models import Stream

    original = Stream.split_shard

    def split_shard(self: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
        parent = self.shards[shard_to_split]
        kept = parent.records
        parent.records = OrderedDict()
        try:
            original(self, shard_to_split, new_starting_hash_key)
        finally:
            parent.records = kept

    def get_shard_for_key(self: Any, partition_key: str, explicit_hash_key: str | None) -> Any:
        key = int(
            explicit_hash_key or hashlib.md5(partition_key.encode(), usedforsecurity=False).hexdigest(),
            10 if explicit_hash_key else 16,
        )
        return next(s for s in self.shards.values() if s.is_open and s.starting_hash <= key < s.ending_hash)

    monkeypatch.setattr(Stream, "split_shard", split_shard)
    monkeypatch.setattr(Stream, "get_shard_for_key", get_shard_for_key)
