"""A drain never reports success with records it was asked to read left unread (``pipeline.completeness``).

Runs on the local stack (moto's server in this process, a two-shard stream) with the
framework's TradeCountDetector; moto's ``Shard.get_records`` is patched where a shard must
look empty to the source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from pyspark.sql import SparkSession

from coattail_devstack.localstack import LocalStack
from coattail_devstack.testing import trade
from coattail_devstack.testing.detectors import TradeCountDetector
from coattail_framework.config.model import CoattailConfig
from coattail_framework.pipeline import PipelineRunner
from coattail_framework.pipeline.completeness import (
    DrainedQuery,
    DrainIncompleteError,
    DrainTimeLimitError,
    check_drain,
    end_positions,
)
from coattail_kinesis.offsets import TRIM_HORIZON

T0 = datetime(2024, 8, 8, 23, 54, 0, tzinfo=UTC)
BASE_CONFIG = CoattailConfig.model_validate(
    {
        "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}},
        "exchanges": {"binance": {"connector": "binance"}},
        "kinesis": {
            "shard_count": 2,
            "max_records_per_trigger": 1000,
            "min_poll_interval_ms": 200,
            "idle_poll_interval_ms": 500,
        },
        "metrics": {"enabled": False},
        # 2024 trades put today: judged against their ingestion clock, as in a replay.
        "quality": {"max_event_age_seconds": 300, "event_time_reference": "ingestion"},
    }
)


@pytest.fixture
def stack(named_stack: Any) -> Iterator[LocalStack]:
    with named_stack(BASE_CONFIG, "drain") as running:
        yield running


def _kinesis(stack: LocalStack) -> Any:
    return boto3.client("kinesis", region_name="us-east-1", endpoint_url=stack.endpoint_url)


def _put_trades(stack: LocalStack, count: int, first_id: int = 1) -> Counter[str]:
    """``count`` valid trades, one partition key each (both shards get some); records per shard."""
    records = [
        {
            "Data": trade(T0 + timedelta(seconds=i), 60_000 + i, "0.5", trade_id=first_id + i).to_json().encode(),
            "PartitionKey": f"key-{first_id + i}",
        }
        for i in range(count)
    ]
    response = _kinesis(stack).put_records(StreamName=stack.config.kinesis.stream_name, Records=records)
    assert response["FailedRecordCount"] == 0
    return Counter(entry["ShardId"] for entry in response["Records"])


def _runner(spark: SparkSession, config: CoattailConfig) -> PipelineRunner:
    detector = TradeCountDetector()
    detector.configure(config)
    return PipelineRunner(spark, config, detectors=[detector])


def _shard_reads_nothing(monkeypatch: pytest.MonkeyPatch, shard_id: str) -> Callable[[], None]:
    """Make moto answer every GetRecords of ``shard_id`` with no record and caught up; returns the undo."""
    from moto.kinesis.models import Shard

    original = Shard.get_records

    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
        if self.shard_id == shard_id:
            return [], int(last_sequence_id), 0
        return original(self, last_sequence_id, limit)  # type: ignore[no-any-return]

    monkeypatch.setattr(Shard, "get_records", get_records)
    return lambda: monkeypatch.setattr(Shard, "get_records", original)


def test_a_complete_drain_passes_with_exact_counts(spark: SparkSession, stack: LocalStack) -> None:
    per_shard = _put_trades(stack, 20)
    assert len(per_shard) == 2
    runner = _runner(spark, stack.config)
    runner.run(drain=True, handle_signals=False)
    check = runner.drain_check
    assert check is not None
    assert check.complete
    assert check.held is None
    # The detector query reads ingest's commits (raw_trades), not the stream: its check is the table's last commit.
    assert {q.name: q.rows_read for q in check.queries} == {"ingest": 20}
    assert {q.name: q.unread for q in check.queries} == {"ingest": dict.fromkeys(per_shard, 0)}
    assert runner.stats.input_rows["detector-trade-count"] == 20


def test_a_detector_query_that_did_not_read_the_last_raw_trades_commit_fails_the_check(
    spark: SparkSession, stack: LocalStack
) -> None:
    _put_trades(stack, 4)
    runner = _runner(spark, stack.config)
    runner.run(drain=True, handle_signals=False)
    table = runner.router.sink.catalog.load_table((stack.config.iceberg.database, "raw_trades"))
    read_up_to = runner.raw_trades_sequence_number()
    table.append(table.scan().to_arrow().slice(0, 1))  # a commit after the drain: nobody read it

    with pytest.raises(DrainIncompleteError) as failure:
        runner.check_drained()

    assert str(failure.value) == (
        f"drain incomplete: raw_trades ends at commit {read_up_to + 1} (data sequence number), "
        f"but detector-trade-count stopped at {read_up_to}"
    )


def test_a_drain_that_read_nothing_from_one_shard_fails_with_the_counts(
    spark: SparkSession, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_shard = _put_trades(stack, 20)
    silent, other = sorted(per_shard)
    restore = _shard_reads_nothing(monkeypatch, silent)
    runner = _runner(spark, stack.config)
    stop_queries = runner.await_termination

    def await_termination(deadline: float | None = None) -> None:
        stop_queries(deadline)
        restore()  # the shard answers again once the queries stopped: only the check can notice

    monkeypatch.setattr(runner, "await_termination", await_termination)
    with pytest.raises(DrainIncompleteError) as failure:
        runner.run(drain=True, handle_signals=False)
    message = str(failure.value)
    stream = stack.config.kinesis.stream_name
    assert f"Kinesis stream {stream!r}: the drain ended with records unread" in message
    assert (
        f"the stream held 20 record(s) that arrived before the drain started "
        f"({silent}: {per_shard[silent]}, {other}: {per_shard[other]})" in message
    )
    for query in ("ingest",):  # the detector query read every commit ingest made
        assert (
            f"query {query} read {per_shard[other]} row(s) and left {per_shard[silent]} unread "
            f"({silent}: {per_shard[silent]} after {TRIM_HORIZON})" in message
        )


def test_a_drain_past_its_time_limit_stops_every_query_and_names_those_still_running(
    spark: SparkSession, stack: LocalStack
) -> None:
    _put_trades(stack, 20)
    runner = _runner(spark, stack.config)
    with pytest.raises(DrainTimeLimitError) as failure:
        runner.run(drain=True, handle_signals=False, time_limit_seconds=0)
    queries = {"ingest", "detector-trade-count"}
    # Which queries were still running when the limit was first checked (right after the last
    # start) depends on how long the starts took: in CI on PySpark 4.3.0 the ingest query had
    # drained its 20 records while the detector query started. The last started one cannot have.
    assert failure.value.pending
    assert set(failure.value.pending) <= queries
    assert str(failure.value).count("still running") == 1
    assert all(name in str(failure.value).split("still running")[0] for name in failure.value.pending)
    assert set(failure.value.rows_read) == queries
    assert f"drain of {stack.config.kinesis.stream_name} did not finish in time" in str(failure.value)
    assert not any(query.isActive for query in runner.queries)


def test_a_time_limit_bounds_only_a_drain(spark: SparkSession, stack: LocalStack) -> None:
    with pytest.raises(ValueError, match="time_limit_seconds bounds a drain"):
        _runner(spark, stack.config).run(handle_signals=False, time_limit_seconds=5)


def test_records_that_arrived_after_the_drain_started_are_not_required(stack: LocalStack) -> None:
    kinesis = _kinesis(stack)
    stream = stack.config.kinesis.stream_name
    before = _put_trades(stack, 6)
    started_at = datetime.now(UTC)
    after = _put_trades(stack, 4, first_id=100)
    shards = sorted(set(before) | set(after))
    last = {
        shard: kinesis.get_records(
            ShardIterator=kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType=TRIM_HORIZON)[
                "ShardIterator"
            ]
        )["Records"][before[shard] - 1]["SequenceNumber"]
        for shard in before
    }
    queries = {"caught-up": DrainedQuery(last, 6), "never-ran": DrainedQuery(None, 0)}
    check = check_drain(kinesis, stream, queries, started_at=started_at, default_position=TRIM_HORIZON)
    assert {q.name: q.unread for q in check.queries} == {
        "caught-up": dict.fromkeys(shards, 0),
        "never-ran": {shard: before[shard] for shard in shards},
    }
    assert check.held == {shard: before[shard] for shard in shards}
    nothing_required = check_drain(
        kinesis, stream, {"latest": DrainedQuery(None, 0)}, started_at=started_at, default_position=None
    )
    assert nothing_required.complete


def test_the_end_offset_is_read_from_the_last_progress_that_has_one() -> None:
    progresses = [
        {"batchId": 0, "sources": [{"endOffset": '{"shardId-000000000000": "12"}'}]},
        {"batchId": 1, "sources": [{"endOffset": {"shardId-000000000000": "15", "shardId-000000000001": "SHARD_END"}}]},
        {"batchId": 2, "sources": []},
    ]
    assert end_positions(progresses) == {"shardId-000000000000": "15", "shardId-000000000001": "SHARD_END"}
    assert end_positions(progresses[:1]) == {"shardId-000000000000": "12"}
    assert end_positions([]) is None
