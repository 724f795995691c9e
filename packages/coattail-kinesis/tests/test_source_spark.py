"""The coattail-kinesis source in Spark Structured Streaming against moto's Kinesis.

Each query here costs seconds, so the scenarios are few and each checks several outcomes.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from coattail_kinesis.source import FORMAT_NAME, SUPPORTS_AVAILABLE_NOW

REGION = "us-east-1"


class BatchSink:
    """An idempotent foreachBatch sink keyed by batch id, like the Iceberg sink: a replayed
    batch replaces what an earlier attempt of the same batch id wrote."""

    def __init__(self) -> None:
        self.batches: dict[int, list[tuple[Any, ...]]] = {}

    def rows(self, frame: DataFrame) -> list[tuple[Any, ...]]:
        selected = frame.select(
            F.get_json_object(F.col("data").cast("string"), "$.id").cast("int").alias("id"),
            "shardId",
            "sequenceNumber",
            "partitionKey",
            "streamName",
            "approximateArrivalTimestamp",
        )
        return [tuple(row) for row in selected.collect()]

    def __call__(self, frame: DataFrame, batch_id: int) -> None:
        self.batches[batch_id] = self.rows(frame)

    def ids(self) -> list[int]:
        return sorted(row[0] for rows in self.batches.values() for row in rows)

    def sizes(self) -> list[int]:
        return [len(self.batches[batch_id]) for batch_id in sorted(self.batches) if self.batches[batch_id]]


def source_options(endpoint: str, stream: str, **extra: str) -> dict[str, str]:
    return {"streamName": stream, "region": REGION, "endpointUrl": endpoint, **extra}


def run_available_now(spark: SparkSession, frame: DataFrame, checkpoint: Path, sink: Any) -> None:
    query = (
        frame.writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    try:
        assert query.awaitTermination(120), "availableNow query did not finish within 120 s"
    finally:
        query.stop()


def drain(spark: SparkSession, options: dict[str, str], checkpoint: Path, sink: BatchSink) -> int:
    """availableNow runs on one checkpoint until a run adds nothing; returns the number of runs."""
    runs = 0
    while True:
        before = sum(len(rows) for rows in sink.batches.values())
        frame = spark.readStream.format(FORMAT_NAME).options(**options).load()
        run_available_now(spark, frame, checkpoint, sink)
        runs += 1
        if sum(len(rows) for rows in sink.batches.values()) == before or runs > 10:
            return runs


def kinesis_records(kinesis: Any, stream: str) -> set[tuple[Any, ...]]:
    """Every record of ``stream`` as (id, shardId, sequenceNumber, partitionKey), read with boto3."""
    records = set()
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]:
            records.add(
                (json.loads(record["Data"])["id"], shard["ShardId"], record["SequenceNumber"], record["PartitionKey"])
            )
    return records


def test_restart_on_the_same_checkpoint_reads_every_record_exactly_once(
    spark: SparkSession, kinesis: Any, new_stream: Any, put_trades: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = new_stream(2)
    put_trades(stream, range(300))
    options = source_options(moto_endpoint, stream)
    checkpoint = tmp_path / "checkpoint"
    sink = BatchSink()
    run_available_now(spark, spark.readStream.format(FORMAT_NAME).options(**options).load(), checkpoint, sink)
    assert sink.ids() == list(range(300))

    put_trades(stream, range(300, 500))
    run_available_now(spark, spark.readStream.format(FORMAT_NAME).options(**options).load(), checkpoint, sink)

    assert sink.ids() == list(range(500))
    rows = [row for rows in sink.batches.values() for row in rows]
    assert {row[:4] for row in rows} == kinesis_records(kinesis, stream)
    assert {row[4] for row in rows} == {stream}
    assert all(isinstance(row[5], datetime) for row in rows)
    arrival = max(row[5] for row in rows)
    assert abs((arrival - datetime.now(UTC).replace(tzinfo=None)).total_seconds()) < 120
    assert spark.readStream.format(FORMAT_NAME).options(**options).load().columns == [
        "data",
        "streamName",
        "partitionKey",
        "sequenceNumber",
        "approximateArrivalTimestamp",
        "shardId",
    ]


def test_a_batch_that_crashed_half_written_is_replayed_with_the_same_records(
    spark: SparkSession, new_stream: Any, put_trades: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = new_stream(2)
    put_trades(stream, range(400))
    options = source_options(moto_endpoint, stream)
    first_attempt: dict[int, list[tuple[Any, ...]]] = {}

    class CrashingSink(BatchSink):
        def __call__(self, frame: DataFrame, batch_id: int) -> None:
            rows = self.rows(frame)
            if not first_attempt:
                first_attempt[batch_id] = rows
                self.batches[batch_id] = rows[: len(rows) // 2]
                raise RuntimeError("sink crashed after writing half of the batch")
            self.batches[batch_id] = rows

    sink = CrashingSink()
    frame = spark.readStream.format(FORMAT_NAME).options(**options).load()
    with pytest.raises(StreamingQueryException, match="sink crashed"):
        run_available_now(spark, frame, tmp_path / "checkpoint", sink)
    (crashed_rows,) = first_attempt.values()
    assert len(sink.ids()) == len(crashed_rows) // 2

    drain(spark, options, tmp_path / "checkpoint", sink)

    (crashed_batch,) = first_attempt
    assert sorted(sink.batches[crashed_batch]) == sorted(first_attempt[crashed_batch])
    assert sink.ids() == list(range(400))


def test_a_split_while_reading_finishes_the_parent_before_its_children(
    spark: SparkSession,
    kinesis: Any,
    new_stream: Any,
    put_trades: Any,
    moto_endpoint: str,
    tmp_path: Path,
    split_like_kinesis: None,
) -> None:
    stream = new_stream(1)
    (parent,) = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    put_trades(stream, range(150))
    options = source_options(moto_endpoint, stream, maxRecordsPerTrigger="50")
    sink = BatchSink()
    query = (
        spark.readStream.format(FORMAT_NAME)
        .options(**options)
        .load()
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(processingTime="200 milliseconds")
        .start()
    )
    try:
        deadline = time.monotonic() + 90
        while not sink.batches and time.monotonic() < deadline:
            time.sleep(0.1)
        kinesis.split_shard(StreamName=stream, ShardToSplit=parent, NewStartingHashKey=str(2**127))
        put_trades(stream, range(150, 230))
        while len(sink.ids()) < 230 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        query.stop()

    assert sink.ids() == list(range(230))
    assert max(sink.sizes()) <= 50
    batches_of = {shard: set() for shard in {row[1] for rows in sink.batches.values() for row in rows}}
    for batch_id, rows in sink.batches.items():
        for row in rows:
            batches_of[row[1]].add(batch_id)
    children = set(batches_of) - {parent}
    assert len(children) == 2
    assert max(batches_of[parent]) < min(min(batches_of[child]) for child in children)
    assert {row[0] for rows in sink.batches.values() for row in rows if row[1] == parent} == set(range(150))
    offsets = sorted(
        (p for p in (tmp_path / "checkpoint" / "offsets").iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    last_offset = json.loads(offsets[-1].read_text().splitlines()[-1])
    assert last_offset[parent] == "SHARD_END"
    assert set(last_offset) == {parent, *children}


def test_latest_and_at_timestamp_start_where_asked(
    spark: SparkSession, new_stream: Any, put_trades: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = new_stream(2)
    put_trades(stream, range(100))
    time.sleep(0.5)
    middle = datetime.now(UTC)
    time.sleep(0.5)
    put_trades(stream, range(100, 160))

    latest = source_options(moto_endpoint, stream, startingPosition="LATEST")
    latest_sink = BatchSink()
    drain(spark, latest, tmp_path / "latest", latest_sink)
    assert latest_sink.ids() == []
    put_trades(stream, range(160, 190))
    drain(spark, latest, tmp_path / "latest", latest_sink)
    assert latest_sink.ids() == list(range(160, 190))

    at_timestamp = source_options(
        moto_endpoint, stream, startingPosition="AT_TIMESTAMP", startingTimestamp=middle.isoformat()
    )
    at_sink = BatchSink()
    drain(spark, at_timestamp, tmp_path / "at_timestamp", at_sink)
    assert at_sink.ids() == list(range(100, 190))


def test_available_now_splits_a_backlog_into_bounded_batches(
    spark: SparkSession, new_stream: Any, put_trades: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = new_stream(2)
    put_trades(stream, range(2500))
    options = source_options(moto_endpoint, stream, maxRecordsPerTrigger="1000")
    sink = BatchSink()

    runs = drain(spark, options, tmp_path / "checkpoint", sink)

    assert sink.sizes() == [1000, 1000, 500]
    assert sink.ids() == list(range(2500))
    # PySpark 4.2+ runs the whole backlog in one availableNow run (then one empty run to see
    # that nothing is left); 4.0/4.1 fall back to one batch per availableNow run.
    assert runs == (2 if SUPPORTS_AVAILABLE_NOW else 4)


def test_a_shard_whose_get_records_keeps_failing_stops_the_query_naming_the_shard(
    spark: SparkSession,
    kinesis: Any,
    new_stream: Any,
    put_trades: Any,
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from moto.kinesis.models import Shard as MotoShard

    stream = new_stream(1)
    (shard,) = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    put_trades(stream, range(10))

    def broken(self: Any, last_sequence_id: str, limit: int | None) -> Any:
        raise RuntimeError("moto's GetRecords is broken")

    monkeypatch.setattr(MotoShard, "get_records", broken)  # every GetRecords answers HTTP 500
    caplog.set_level(logging.CRITICAL, logger="werkzeug")  # which moto logs with a traceback each
    options = source_options(moto_endpoint, stream, readFailureMaxAttempts="3", readFailureMaxSeconds="30")
    sink = BatchSink()
    query = (
        spark.readStream.format(FORMAT_NAME)
        .options(**options)
        .load()
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(processingTime="200 milliseconds")
        .start()
    )
    began = time.monotonic()
    try:
        with pytest.raises(StreamingQueryException) as failure:
            query.awaitTermination(60)
    finally:
        query.stop()

    assert time.monotonic() - began < 30
    message = str(failure.value)
    assert f"Kinesis stream '{stream}', shard {shard}: GetRecords failed 3 times in a row" in message
    assert "An error occurred (500)" in message
    assert sink.ids() == []
