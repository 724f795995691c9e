"""Shared pieces of the cross-package tests: bundled data slices, fake AWS credentials, stream reads.

The tests run in the pytest process, which owns moto (in-process, 127.0.0.1): a stream-job
child process that is killed leaves the local AWS state intact for the next one.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coattail_framework.recordings import read_recording


@pytest.fixture(scope="session", autouse=True)
def fake_aws(aws_env: dict[str, str]) -> dict[str, str]:
    """The test kit's fake credentials (``coattail_devstack``) for moto, here and in every child started."""
    return aws_env


def _write_slice(source: Path, target: Path, *, trade_time_until_ms: int) -> int:
    """Copy the lines of a Binance recording up to a trade time (ms since epoch) to gzip ``target``.

    Keeps every stream (trades, book ticker, depth) before the cut, as recorded. Returns
    the number of trade messages kept.
    """
    trades = 0
    with gzip.open(target, "wt", encoding="utf-8") as out:
        for message in read_recording(source):
            data = json.loads(message.payload).get("data", {})
            if data.get("e") == "trade":
                if int(data["T"]) > trade_time_until_ms:
                    break
                trades += 1
            out.write(f"{message.received_ns} {message.payload}\n")
    return trades


def _stream_records(client: Any, stream: str) -> list[dict[str, Any]]:
    """Every record of every shard of ``stream`` from TRIM_HORIZON (boto3 record dicts)."""
    records: list[dict[str, Any]] = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = client.get_records(ShardIterator=iterator, Limit=10_000)
            records.extend(response["Records"])
            if not response["Records"] and response.get("MillisBehindLatest", 0) == 0:
                break
            iterator = response.get("NextShardIterator")
    return records


@pytest.fixture(scope="session")
def write_slice() -> Callable[..., int]:
    """``write_slice(source, target, trade_time_until_ms=...)``: a leading slice of a Binance recording."""
    return _write_slice


@pytest.fixture(scope="session")
def stream_records() -> Callable[[Any, str], list[dict[str, Any]]]:
    """``stream_records(kinesis_client, stream)``: every record of the stream."""
    return _stream_records
