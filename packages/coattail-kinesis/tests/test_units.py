"""Offsets, shard lineage, options, pacing, read failures and replay: no Spark session.

Throttling, iterator expiry and failing reads cannot be produced by moto on demand, so those
tests use ``FakeKinesis``, which raises the real botocore errors; everything else runs against moto.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from coattail_kinesis import source
from coattail_kinesis.limits import ReadFailureLimit, ShardPacer
from coattail_kinesis.offsets import (
    SHARD_END,
    TRIM_HORIZON,
    at_timestamp,
    is_after,
    iterator_request,
    parse_positions,
)
from coattail_kinesis.options import KinesisOptionsError, KinesisSourceOptions
from coattail_kinesis.reader import (
    MAX_THROTTLES_IN_A_ROW,
    KinesisReadError,
    KinesisRecord,
    ShardCursor,
    ShardFetcher,
    kinesis_client,
    utc_timestamp,
)
from coattail_kinesis.shards import Shard, readable, reconcile
from coattail_kinesis.source import KinesisStreamReader, streaming_datasource_api

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_positions_order_sequence_numbers_as_integers_between_markers_and_shard_end() -> None:
    assert is_after("10", "9")
    assert is_after(
        "49590338271490256608559692538361571095921575989136588899",
        "4959033827149025660855969253836157109592157598913658889",
    )
    assert is_after("1", TRIM_HORIZON)
    assert is_after("1", at_timestamp(T0))
    assert is_after(SHARD_END, "999999999999999999999999999999")
    assert iterator_request("42") == {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": "42"}
    assert iterator_request(at_timestamp(T0)) == {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": T0}
    assert iterator_request(TRIM_HORIZON) == {"ShardIteratorType": "TRIM_HORIZON"}
    with pytest.raises(ValueError, match=r"shard-7: invalid Kinesis shard position 'LATEST'"):
        parse_positions({"shard-1": "5", "shard-7": "LATEST"})


def test_children_wait_for_every_listed_parent_and_expired_shards_leave_the_offset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = Shard("a", (), "100"), Shard("b", (), "200")
    merged = Shard("m", ("a", "b"), None)
    split_1, split_2 = Shard("s1", ("m",), None), Shard("s2", ("m",), None)
    positions = reconcile({"a": SHARD_END, "b": "150", "gone": "12"}, [a, b, merged])
    assert positions == {"a": SHARD_END, "b": "150", "m": TRIM_HORIZON}
    assert "shard gone expired" in caplog.text
    assert "last position 12" in caplog.text
    assert [s.shard_id for s in readable(positions, [a, b, merged])] == ["b"]
    positions["b"] = SHARD_END
    assert [s.shard_id for s in readable(positions, [a, b, merged])] == ["m"]
    # Parents gone from the listing (retention) no longer hold their children back.
    after_expiry = reconcile({"a": SHARD_END, "b": SHARD_END, "m": "7"}, [merged, split_1, split_2])
    assert after_expiry == {"m": "7", "s1": TRIM_HORIZON, "s2": TRIM_HORIZON}
    assert [s.shard_id for s in readable(after_expiry, [merged, split_1, split_2])] == ["m"]


def test_options_are_case_insensitive_and_errors_name_the_option() -> None:
    options = KinesisSourceOptions.from_spark(
        {
            "streamname": "trades",
            "REGION": "eu-west-1",
            "startingposition": "at_timestamp",
            "startingtimestamp": "2026-01-02T03:04:05",
        }
    )
    assert options.starting_position == "AT_TIMESTAMP"
    assert options.starting_timestamp == T0
    assert options.max_records_per_trigger == 10_000
    with pytest.raises(KinesisOptionsError, match="unknown option 'streamnme'"):
        KinesisSourceOptions.from_spark({"streamnme": "trades", "region": "eu-west-1"})
    with pytest.raises(KinesisOptionsError, match="option maxrecordspertrigger"):
        KinesisSourceOptions.from_spark({"streamname": "t", "region": "r", "maxrecordspertrigger": "0"})
    with pytest.raises(KinesisOptionsError, match="startingtimestamp is required"):
        KinesisSourceOptions.from_spark({"streamname": "t", "region": "r", "startingposition": "AT_TIMESTAMP"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client_error(code: str, status: int = 400, operation: str = "GetRecords") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


Failure = str | Exception | None
"""A scripted answer: an error code, an exception to raise, or None for a normal answer."""


def raise_scripted(failures: list[Failure], operation: str) -> None:
    failure = failures.pop(0) if failures else None
    if isinstance(failure, Exception):
        raise failure
    if failure is not None:
        raise client_error(failure, 500 if failure in {"InternalFailure", "ServiceUnavailable"} else 400, operation)


class FakeKinesis:
    """ListShards/GetShardIterator/GetRecords over records 1..n of one shard, failing as scripted."""

    def __init__(self, count: int, failures: list[Failure], iterator_failures: list[Failure] | None = None) -> None:
        self.records = [
            {"SequenceNumber": str(n), "PartitionKey": "k", "Data": b"%d" % n, "ApproximateArrivalTimestamp": T0}
            for n in range(1, count + 1)
        ]
        self.failures = failures
        self.iterator_failures = iterator_failures or []
        self.iterator_requests: list[dict[str, Any]] = []
        self.get_records_calls = 0

    def list_shards(self, **request: Any) -> dict[str, Any]:
        return {"Shards": [{"ShardId": "shardId-000000000000"}]}

    def get_shard_iterator(self, **request: Any) -> dict[str, str]:
        self.iterator_requests.append(request)
        raise_scripted(self.iterator_failures, "GetShardIterator")
        after = int(request.get("StartingSequenceNumber", 0))
        return {"ShardIterator": str(after)}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803
        self.get_records_calls += 1
        raise_scripted(self.failures, "GetRecords")
        after = int(ShardIterator)
        batch = [r for r in self.records if int(r["SequenceNumber"]) > after][:Limit]
        last = int(batch[-1]["SequenceNumber"]) if batch else after
        behind = 0 if last >= len(self.records) else 1000
        return {"Records": batch, "NextShardIterator": str(last), "MillisBehindLatest": behind}


def fetcher(client: FakeKinesis, clock: FakeClock, limit: ReadFailureLimit | None = None) -> ShardFetcher:
    return ShardFetcher(client, "trades", ShardPacer(clock=clock, sleep=clock.sleep), limit)


def test_throttling_backs_off_exponentially_and_a_patient_fill_gets_the_records() -> None:
    clock = FakeClock()
    client = FakeKinesis(5, ["ProvisionedThroughputExceededException"] * 3)
    cursor = ShardCursor(shard=Shard("s", (), None), base=TRIM_HORIZON)
    impatient = fetcher(client, clock)
    impatient.fill(cursor, 10, wait=False, max_calls=3)
    assert cursor.records == []
    assert client.get_records_calls == 1
    assert impatient.pacer.wait_s("s") >= 0.25  # backoff holds the shard back for the next trigger

    impatient.fill(cursor, 10, wait=True, max_calls=None)
    assert [r.sequence_number for r in cursor.records] == ["1", "2", "3", "4", "5"]
    assert cursor.caught_up
    assert not cursor.ended
    backoffs = clock.slept
    assert len(backoffs) == 3
    assert 0.25 <= backoffs[0] <= 0.5
    assert 0.5 <= backoffs[1] <= 1.0
    assert 1.0 <= backoffs[2] <= 2.0


def test_an_expired_iterator_is_renewed_after_the_last_sequence_number_read() -> None:
    clock = FakeClock()
    client = FakeKinesis(6, [])
    reader = fetcher(client, clock)
    cursor = ShardCursor(shard=Shard("s", (), None), base=TRIM_HORIZON)
    reader.fill(cursor, 3, wait=True, max_calls=None)
    client.failures.append("ExpiredIteratorException")
    reader.fill(cursor, 6, wait=True, max_calls=None)
    assert [r.sequence_number for r in cursor.records] == ["1", "2", "3", "4", "5", "6"]
    assert client.iterator_requests[-1] == {
        "StreamName": "trades",
        "ShardId": "s",
        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
        "StartingSequenceNumber": "3",
    }
    # An iterator close to its 5-minute lifetime is renewed before use, not after failing.
    clock.now += 280
    cursor.caught_up = False
    client.records.append({**client.records[0], "SequenceNumber": "7"})
    reader.fill(cursor, 7, wait=True, max_calls=None)
    assert client.iterator_requests[-1]["StartingSequenceNumber"] == "6"
    assert len(client.iterator_requests) == 3


def test_an_idle_shard_is_polled_at_the_idle_interval_only() -> None:
    clock = FakeClock()
    client = FakeKinesis(0, [])
    reader = fetcher(client, clock)
    cursor = ShardCursor(shard=Shard("s", (), None), base=TRIM_HORIZON)
    reader.fill(cursor, 100, wait=False, max_calls=3)
    assert client.get_records_calls == 1
    assert cursor.caught_up
    clock.now += 0.5
    reader.fill(cursor, 100, wait=False, max_calls=3)
    assert client.get_records_calls == 1
    clock.now += 0.5
    reader.fill(cursor, 100, wait=False, max_calls=3)
    assert client.get_records_calls == 2


def test_replay_returns_exactly_the_range_and_gives_up_when_throttled_without_end() -> None:
    clock = FakeClock()
    reader = fetcher(FakeKinesis(10, []), clock)
    replayed = [r.sequence_number for r in reader.read_range(Shard("s", (), None), "3", "7")]
    assert replayed == ["4", "5", "6", "7"]
    closed = Shard("s", (), "10")
    assert [r.sequence_number for r in reader.read_range(closed, "8", SHARD_END)] == ["9", "10"]
    with pytest.raises(RuntimeError, match="no longer readable"):
        list(reader.read_range(Shard("s", (), None), "3", "12"))
    throttled = fetcher(FakeKinesis(10, ["ProvisionedThroughputExceededException"] * MAX_THROTTLES_IN_A_ROW), clock)
    with pytest.raises(RuntimeError, match=f"throttled {MAX_THROTTLES_IN_A_ROW} times in a row"):
        list(throttled.read_range(Shard("s", (), None), "3", "7"))


def test_the_driver_splits_the_cap_fairly_and_replay_matches_the_fetched_batch(
    kinesis: Any, new_stream: Any, put_trades: Any, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    stream = new_stream(2)
    put_trades(stream, range(700))
    options = KinesisSourceOptions(
        stream_name=stream, region="us-east-1", endpoint_url=moto_endpoint, max_records_per_trigger=300
    )
    reader = KinesisStreamReader(options)
    start = reader.initialOffset()
    assert set(start.values()) == {TRIM_HORIZON}
    end = reader.latestOffset(start, None)
    ranges = reader.partitions(start, end)
    assert sum(r.batch.num_rows for r in ranges) == 300  # type: ignore[attr-defined]
    executor_side = KinesisStreamReader(options)
    for shard_range in ranges:
        replay = type(shard_range)(shard_range.shard, shard_range.start, shard_range.end)
        replayed = list(executor_side.read(replay))
        assert pa.Table.from_batches(replayed).equals(pa.Table.from_batches([shard_range.batch]))  # type: ignore[attr-defined]
    reader.commit(end)

    api = streaming_datasource_api()
    read_all = getattr(api, "ReadAllAvailable", None) or type("ReadAllAvailable", (), {})
    final = reader.latestOffset(end, read_all())
    rest = reader.partitions(end, final)
    assert sum(r.batch.num_rows for r in rest) == 400  # type: ignore[attr-defined]
    assert reader.latestOffset(final, read_all()) == final
    reader.stop()


def test_response_timestamps_are_utc_and_the_same_instant_as_botocore_parses(
    kinesis: Any, new_stream: Any, put_trades: Any, moto_endpoint: str
) -> None:
    assert utc_timestamp(1767323045.25) == T0 + timedelta(microseconds=250_000)
    assert utc_timestamp(1767323045) == T0
    assert utc_timestamp("2026-01-02T03:04:05.250000Z") == T0 + timedelta(microseconds=250_000)
    assert utc_timestamp("2026-01-02T05:04:05+02:00").tzinfo is UTC

    stream = new_stream(1)
    put_trades(stream, range(3))
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    responses = []
    for client in (kinesis, kinesis_client("us-east-1", moto_endpoint)):
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        responses.append(client.get_records(ShardIterator=iterator["ShardIterator"])["Records"])
    default, ours = ([r["ApproximateArrivalTimestamp"] for r in records] for records in responses)
    assert len(ours) == 3
    assert all(stamp.tzinfo is UTC for stamp in ours)
    assert ours == default


def test_a_read_delay_reads_what_arrived_during_the_wait_and_available_now_does_not_wait(
    new_stream: Any, put_trades: Any, moto_endpoint: str
) -> None:
    stream = new_stream(1)
    put_trades(stream, range(10))
    options = KinesisSourceOptions.from_spark(
        {
            "streamname": stream,
            "region": "us-east-1",
            "endpointurl": moto_endpoint,
            "readdelayms": "600",
            "minpollintervalms": "1",
            "idlepollintervalms": "1",
        }
    )
    assert options.read_delay_ms == 600
    reader = KinesisStreamReader(options)
    start = reader.initialOffset()
    late = threading.Timer(0.2, put_trades, args=(stream, range(10, 15)))  # arrives while the trigger waits
    late.start()
    began = time.monotonic()
    end = reader.latestOffset(start, None)
    waited = time.monotonic() - began
    late.join()
    assert waited >= 0.6
    assert sum(r.batch.num_rows for r in reader.partitions(start, end)) == 15  # type: ignore[attr-defined]
    reader.commit(end)

    put_trades(stream, range(15, 20))
    reader.prepareForTriggerAvailableNow()
    began = time.monotonic()
    final = reader.latestOffset(end, None)
    assert time.monotonic() - began < 0.6
    assert sum(r.batch.num_rows for r in reader.partitions(end, final)) == 5  # type: ignore[attr-defined]
    reader.stop()
    with pytest.raises(KinesisOptionsError, match="option readdelayms"):
        KinesisSourceOptions.from_spark({"streamname": "t", "region": "r", "readdelayms": "-1"})


def test_a_source_whose_every_get_records_answers_500_stops_within_the_configured_attempts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    client = FakeKinesis(5, ["InternalFailure"] * 100)
    monkeypatch.setattr(source, "kinesis_client", lambda region, endpoint_url: client)
    monkeypatch.setattr(source, "ShardPacer", lambda **pacing: ShardPacer(**pacing, clock=clock, sleep=clock.sleep))
    options = KinesisSourceOptions.from_spark(
        {"streamname": "trades", "region": "us-east-1", "readfailuremaxattempts": "4", "readfailuremaxseconds": "600"}
    )
    reader = KinesisStreamReader(options)
    start = reader.initialOffset()
    caplog.set_level(logging.WARNING)
    for _trigger in range(3):
        assert reader.latestOffset(start, None) == start  # the shard is backed off; the query goes on
        clock.now += 10.0  # past the longest backoff (capped at 10 s)
    with pytest.raises(KinesisReadError) as failure:
        reader.latestOffset(start, None)
    assert client.get_records_calls == 4
    message = str(failure.value)
    assert "Kinesis stream 'trades', shard shardId-000000000000: GetRecords failed 4 times in a row" in message
    assert "readFailureMaxAttempts 4" in message
    assert "InternalFailure" in message
    assert caplog.text.count("GetRecords failed (") == 3
    reader.stop()


def test_a_shard_failing_for_longer_than_the_configured_seconds_stops_before_the_attempts_run_out() -> None:
    clock = FakeClock()
    connection_lost = EndpointConnectionError(endpoint_url="https://kinesis.us-east-1.amazonaws.com")
    client = FakeKinesis(5, [connection_lost] * 100)
    reader = fetcher(client, clock, ReadFailureLimit(max_attempts=100, max_seconds=5.0))
    cursor = ShardCursor(shard=Shard("s", (), None), base=TRIM_HORIZON)
    began = clock.now
    with pytest.raises(KinesisReadError, match=r"readFailureMaxAttempts 100, readFailureMaxSeconds 5\)") as failure:
        reader.fill(cursor, 10, wait=True, max_calls=None)
    assert 3 <= client.get_records_calls < 100
    assert 5.0 <= clock.now - began < 5.0 + 10.0  # one backoff (capped at 10 s) past the limit at most
    assert f"GetRecords failed {client.get_records_calls} times in a row over {clock.now - began:.1f} s" in str(
        failure.value
    )
    assert "Could not connect to the endpoint URL" in str(failure.value)


def test_a_failing_get_shard_iterator_is_named_in_the_error() -> None:
    clock = FakeClock()
    client = FakeKinesis(5, [], iterator_failures=["ServiceUnavailable"] * 10)
    reader = fetcher(client, clock, ReadFailureLimit(max_attempts=2, max_seconds=60.0))
    cursor = ShardCursor(shard=Shard("s", (), None), base=TRIM_HORIZON)
    with pytest.raises(KinesisReadError, match=r"'trades', shard s: GetShardIterator failed 2 times.*Unavailable"):
        reader.fill(cursor, 10, wait=True, max_calls=None)
    assert client.get_records_calls == 0


@pytest.mark.parametrize(
    "error",
    [
        "AccessDeniedException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "KMSOptInRequired",
        "ValidationException",
        "InvalidArgumentException",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        NoCredentialsError(),
    ],
)
def test_an_error_no_retry_can_fix_stops_at_the_first_call(error: Failure) -> None:
    clock = FakeClock()
    client = FakeKinesis(5, [error] * 10)
    reader = fetcher(client, clock)
    cursor = ShardCursor(shard=Shard("s", (), None), base=TRIM_HORIZON)
    with pytest.raises(KinesisReadError, match="'trades', shard s: GetRecords failed and a retry cannot fix it"):
        reader.fill(cursor, 10, wait=True, max_calls=None)
    assert client.get_records_calls == 1
    assert clock.slept == []


def test_a_success_between_failures_starts_the_count_over() -> None:
    clock = FakeClock()
    failing_twice_then_reading = ["InternalFailure", "InternalFailure", None] * 3
    client = FakeKinesis(6, failing_twice_then_reading)
    reader = fetcher(client, clock, ReadFailureLimit(max_attempts=3, max_seconds=60.0))
    cursor = ShardCursor(shard=Shard("s", (), None), base=TRIM_HORIZON)
    for want in (2, 4, 6):
        reader.fill(cursor, want, wait=True, max_calls=None)
        assert reader.pacer.failing("s") == (0, 0.0)
    assert [r.sequence_number for r in cursor.records] == ["1", "2", "3", "4", "5", "6"]
    assert client.get_records_calls == 9
    client.failures = ["InternalFailure"] * 3
    client.records.append({**client.records[0], "SequenceNumber": "7"})
    cursor.caught_up = False
    with pytest.raises(KinesisReadError, match="failed 3 times in a row"):
        reader.fill(cursor, 7, wait=True, max_calls=None)


def test_the_driver_stops_a_shard_throttled_max_throttles_in_a_row_and_a_read_in_between_resets_it() -> None:
    clock = FakeClock()
    client = FakeKinesis(5, ["ProvisionedThroughputExceededException"] * (MAX_THROTTLES_IN_A_ROW - 1) + [None])
    reader = fetcher(client, clock, ReadFailureLimit(max_attempts=2, max_seconds=1.0))  # throttles are not failures
    cursor = ShardCursor(shard=Shard("s", (), None), base=TRIM_HORIZON)
    while not cursor.records:  # one trigger after another, as the driver polls
        reader.fill(cursor, 10, wait=False, max_calls=3)
        clock.now += 11.0
    assert client.get_records_calls == MAX_THROTTLES_IN_A_ROW
    client.failures = ["LimitExceededException"] * MAX_THROTTLES_IN_A_ROW
    client.records.append({**client.records[0], "SequenceNumber": "6"})
    cursor.caught_up = False
    for _trigger in range(MAX_THROTTLES_IN_A_ROW - 1):
        reader.fill(cursor, 10, wait=False, max_calls=3)
        clock.now += 11.0
    with pytest.raises(KinesisReadError, match=f"GetRecords throttled {MAX_THROTTLES_IN_A_ROW} times in a row"):
        reader.fill(cursor, 10, wait=False, max_calls=3)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("readfailuremaxattempts", "0"),
        ("readfailuremaxattempts", "-3"),
        ("readfailuremaxattempts", "ten"),
        ("readfailuremaxseconds", "0"),
        ("readfailuremaxseconds", "-0.5"),
    ],
)
def test_read_failure_options_refuse_bad_values_by_name(option: str, value: str) -> None:
    with pytest.raises(KinesisOptionsError, match=f"coattail-kinesis: option {option}: "):
        KinesisSourceOptions.from_spark({"streamname": "t", "region": "r", option: value})


def test_read_failure_options_are_read_case_insensitively_with_their_defaults() -> None:
    defaults = KinesisSourceOptions.from_spark({"streamname": "t", "region": "r"})
    assert (defaults.read_failure_max_attempts, defaults.read_failure_max_seconds) == (10, 60.0)
    options = KinesisSourceOptions.from_spark(
        {"streamname": "t", "region": "r", "readFailureMaxAttempts": "3", "READFAILUREMAXSECONDS": "2.5"}
    )
    assert (options.read_failure_max_attempts, options.read_failure_max_seconds) == (3, 2.5)


def test_a_list_shards_that_keeps_failing_stops_the_query_and_a_success_resets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    client = FakeKinesis(5, [])
    listings: list[Failure] = []

    def list_shards(**request: Any) -> dict[str, Any]:
        raise_scripted(listings, "ListShards")
        return {"Shards": [{"ShardId": "shardId-000000000000"}]}

    monkeypatch.setattr(client, "list_shards", list_shards)
    monkeypatch.setattr(source, "kinesis_client", lambda region, endpoint_url: client)
    monkeypatch.setattr(source, "ShardPacer", lambda **pacing: ShardPacer(**pacing, clock=clock, sleep=clock.sleep))
    options = KinesisSourceOptions.from_spark(
        {"streamname": "trades", "region": "us-east-1", "readfailuremaxattempts": "3", "readfailuremaxseconds": "600"}
    )
    reader = KinesisStreamReader(options)
    start = reader.initialOffset()
    listings.extend(["InternalFailure"] * 2)
    for _trigger in range(2):  # re-listing fails: the previous list is read, the listing backs off
        clock.now += 11.0
        reader.latestOffset(start, None)
    clock.now += 11.0
    reader.latestOffset(start, None)  # a listing that works starts the count over
    assert listings == []
    listings.extend(["InternalFailure"] * 3)
    for _trigger in range(2):
        clock.now += 11.0
        reader.latestOffset(start, None)
    clock.now += 11.0
    with pytest.raises(KinesisReadError, match=r"Kinesis stream 'trades': ListShards failed 3 times in a row"):
        reader.latestOffset(start, None)
    reader.stop()


def test_a_batch_keeps_within_its_byte_cap_and_always_takes_one_record() -> None:
    arrival = datetime(2024, 8, 8, tzinfo=UTC)
    cursor = ShardCursor(shard=Shard("s", (), None), base=TRIM_HORIZON)
    sizes = [900_000, 100, 200_000, 300_000, 50]
    cursor.records = [KinesisRecord("s", str(n + 1), "k", b"x" * size, arrival) for n, size in enumerate(sizes)]

    assert cursor.byte_quota(None, None) is None
    assert cursor.byte_quota(None, 1_000_000) == 2  # 900,000 + 100; a third would exceed
    assert cursor.end_position(cursor.byte_quota(None, 1_000_000)) == "2"
    assert cursor.byte_quota(1, 1_000_000) == 1
    assert cursor.byte_quota(None, 10) == 1  # one record however large: the shard moves on
    assert cursor.byte_quota(None, 2_000_000) is None  # all 1,400,150 bytes fit
    assert cursor.byte_quota(4, 2_000_000) == 4


def test_the_byte_cap_option_takes_a_number_or_none() -> None:
    base = {"streamname": "s", "region": "us-east-1"}
    assert KinesisSourceOptions.from_spark(base).max_bytes_per_trigger == 8 * 1024 * 1024
    assert KinesisSourceOptions.from_spark({**base, "maxbytespertrigger": "None"}).max_bytes_per_trigger is None
    assert KinesisSourceOptions.from_spark({**base, "maxbytespertrigger": "4096"}).max_bytes_per_trigger == 4096
    with pytest.raises(KinesisOptionsError, match="option maxbytespertrigger"):
        KinesisSourceOptions.from_spark({**base, "maxbytespertrigger": "0"})
