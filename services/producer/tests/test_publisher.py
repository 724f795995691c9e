"""KinesisPublisher against moto's Kinesis with real recorded trades: exactly once, order, limits, failures."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from coattail_framework.events import TradeEvent
from coattail_kinesis.limits import MIB, PUT_RECORDS_MAX_BYTES
from coattail_producer.publisher import DROP_OVERSIZE, DROP_SHUTDOWN_DEADLINE, KinesisPublisher
from coattail_producer.settings import PublisherSettings

from .conftest import published_events, read_stream

FAST = PublisherSettings(linger_seconds=0.01, retry_base_seconds=0.01, retry_max_seconds=0.05)


def interleave(*streams: list[TradeEvent]) -> list[TradeEvent]:
    """Real trades of several symbols merged by trade time (stable), as a live feed would mix them."""
    return sorted((event for stream in streams for event in stream), key=lambda event: event.timestamp)


def by_key(events: list[TradeEvent]) -> dict[str, list[str]]:
    ordered: dict[str, list[str]] = defaultdict(list)
    for event in events:
        ordered[event.partition_key].append(event.event_id)
    return dict(ordered)


class RecordingClient:
    """The real moto client, keeping the size of every put_records call."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[int, int]] = []

    def put_records(self, **kwargs: Any) -> Any:
        records = kwargs["Records"]
        self.calls.append((len(records), sum(len(r["Data"]) + len(r["PartitionKey"].encode()) for r in records)))
        return self._client.put_records(**kwargs)


class ThrottlingClient:
    """Fails some entries like Kinesis does (ProvisionedThroughputExceededException) and sends the rest to moto.

    ``mode="shard"``: in a throttled call, one partition key fails from a random entry on (a shard over its
    limit). ``mode="random"``: any entry may fail on its own. ``overtakes`` counts, like the publisher should,
    entries that succeeded after an earlier entry of the same key failed in the same call.
    """

    def __init__(self, client: Any, *, mode: str, failing_calls: int, seed: int = 7) -> None:
        self._client = client
        self._mode = mode
        self._failing_calls = failing_calls
        self._random = random.Random(seed)
        self.injected = 0
        self.overtakes = 0
        self.calls = 0

    def _fail_flags(self, records: list[dict[str, Any]]) -> list[bool]:
        if self._mode == "random":
            return [self._random.random() < 0.2 for _ in records]
        key = self._random.choice(sorted({r["PartitionKey"] for r in records}))
        positions = [i for i, r in enumerate(records) if r["PartitionKey"] == key]
        start = self._random.choice(positions)
        return [r["PartitionKey"] == key and i >= start for i, r in enumerate(records)]

    def put_records(self, **kwargs: Any) -> Any:
        self.calls += 1
        records: list[dict[str, Any]] = kwargs["Records"]
        if self.calls > self._failing_calls:
            return self._client.put_records(**kwargs)
        flags = self._fail_flags(records)
        failed_keys: set[str] = set()
        for record, failed in zip(records, flags, strict=True):
            if failed:
                failed_keys.add(record["PartitionKey"])
            elif record["PartitionKey"] in failed_keys:
                self.overtakes += 1
        passing = [r for r, failed in zip(records, flags, strict=True) if not failed]
        answered = (
            iter(self._client.put_records(StreamName=kwargs["StreamName"], Records=passing)["Records"])
            if passing
            else iter(())
        )
        results = []
        for failed in flags:
            if failed:
                self.injected += 1
                results.append(
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}
                )
            else:
                results.append(next(answered))
        return {"FailedRecordCount": sum(flags), "Records": results}


async def publish_all(publisher: KinesisPublisher, events: list[TradeEvent]) -> None:
    await publisher.start()
    for event in events:
        await publisher.put(event)
    await publisher.close(deadline_seconds=30)


def assert_exactly_once_in_order(kinesis: Any, stream: str, events: list[TradeEvent]) -> None:
    read = published_events(kinesis, stream)
    assert sorted(event.event_id for _, _, event in read) == sorted(event.event_id for event in events)
    assert len(read) == len(events)
    shards_of_key: dict[str, set[str]] = defaultdict(set)
    for shard, key, event in read:
        assert key == event.symbol
        shards_of_key[key].add(shard)
    assert all(len(shards) == 1 for shards in shards_of_key.values())
    assert by_key([event for _, _, event in read]) == by_key(events)
    original = {event.event_id: event for event in events}
    assert all(original[event.event_id] == event for _, _, event in read)


async def test_every_event_published_exactly_once_keyed_by_symbol_in_order(
    kinesis: Any, stream: str, btc_trades: list[TradeEvent], eth_trades: list[TradeEvent]
) -> None:
    events = interleave(btc_trades, eth_trades)
    client = RecordingClient(kinesis)
    publisher = KinesisPublisher(client, stream, FAST)
    await publish_all(publisher, events)

    assert_exactly_once_in_order(kinesis, stream, events)
    assert publisher.stats.published == len(events) == 5000
    assert publisher.stats.failed == publisher.stats.retried == publisher.stats.dropped_total == 0
    assert publisher.stats.latency.count == len(events)
    assert sum(count for count, _ in client.calls) == len(events)
    assert all(count <= 500 for count, _ in client.calls)
    assert max(count for count, _ in client.calls) == 500


async def test_batches_respect_the_5_mib_call_limit_and_oversize_records_are_counted(
    kinesis: Any, stream: str, btc_trades: list[TradeEvent], caplog: pytest.LogCaptureFixture
) -> None:
    events = btc_trades[:300]
    client = RecordingClient(kinesis)
    publisher = KinesisPublisher(client, stream, FAST)
    await publisher.start()
    for event in events:
        padded = event.to_json().encode().ljust(40 * 1024)
        await publisher.put_serialized(padded, event.partition_key, event.event_id)
    oversize = btc_trades[300]
    with caplog.at_level(logging.ERROR, logger="coattail_producer.publisher"):
        await publisher.put_serialized(b" " * MIB, oversize.partition_key, oversize.event_id)
    await publisher.close(deadline_seconds=30)

    assert all(size <= PUT_RECORDS_MAX_BYTES for _, size in client.calls)
    assert sum(count for count, _ in client.calls) == 300
    assert len(client.calls) == 3
    assert publisher.stats.dropped == {DROP_OVERSIZE: 1}
    assert oversize.event_id in caplog.text
    read = [record for records in read_stream(kinesis, stream).values() for record in records]
    assert sorted(TradeEvent.model_validate_json(r["Data"]).event_id for r in read) == sorted(
        e.event_id for e in events
    )


async def test_throttled_entries_are_retried_first_nothing_lost_order_kept(
    kinesis: Any, stream: str, btc_trades: list[TradeEvent], eth_trades: list[TradeEvent]
) -> None:
    events = interleave(btc_trades, eth_trades)
    client = ThrottlingClient(kinesis, mode="shard", failing_calls=8)
    publisher = KinesisPublisher(client, stream, FAST)
    await publish_all(publisher, events)

    assert client.injected > 500
    assert publisher.stats.failed == client.injected
    assert publisher.stats.retried == client.injected
    assert publisher.stats.reordered == 0
    assert publisher.stats.published == len(events)
    assert_exactly_once_in_order(kinesis, stream, events)


async def test_random_entry_failures_lose_nothing_and_in_call_overtakes_are_counted(
    kinesis: Any, stream: str, btc_trades: list[TradeEvent], eth_trades: list[TradeEvent]
) -> None:
    events = interleave(btc_trades, eth_trades)
    client = ThrottlingClient(kinesis, mode="random", failing_calls=6)
    publisher = KinesisPublisher(client, stream, FAST)
    await publish_all(publisher, events)

    read = published_events(kinesis, stream)
    assert sorted(event.event_id for _, _, event in read) == sorted(event.event_id for event in events)
    assert publisher.stats.failed == publisher.stats.retried == client.injected > 0
    assert publisher.stats.reordered == client.overtakes > 0


async def test_a_failed_call_is_resent_whole(kinesis: Any, stream: str, btc_trades: list[TradeEvent]) -> None:
    class Unreachable:
        def __init__(self) -> None:
            self.failures = 0

        def put_records(self, **kwargs: Any) -> Any:
            if self.failures < 2:
                self.failures += 1
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
            return kinesis.put_records(**kwargs)

    publisher = KinesisPublisher(Unreachable(), stream, FAST)
    await publish_all(publisher, btc_trades[:700])

    assert publisher.stats.failed_calls == 2
    assert publisher.stats.published == 700
    assert_exactly_once_in_order(kinesis, stream, btc_trades[:700])


async def test_tiny_buffer_makes_connectors_wait_and_loses_nothing(
    kinesis: Any, stream: str, btc_trades: list[TradeEvent]
) -> None:
    events = btc_trades[:200]

    class Slow:
        def __init__(self) -> None:
            self.max_buffered = 0

        def put_records(self, **kwargs: Any) -> Any:
            self.max_buffered = max(self.max_buffered, publisher.buffered)
            result = kinesis.put_records(**kwargs)
            return result

    client = Slow()
    settings = PublisherSettings(buffer_records=10, max_batch_records=10, linger_seconds=0.005)
    publisher = KinesisPublisher(client, stream, settings)
    await publisher.start()
    producer_waits = 0
    for event in events:
        put = asyncio.ensure_future(publisher.put(event))
        await asyncio.sleep(0)
        if not put.done():
            producer_waits += 1
        await put
        assert publisher.buffered <= 10
    await publisher.close(deadline_seconds=30)

    assert client.max_buffered <= 10
    assert publisher.stats.backpressure_waits == producer_waits > 0
    assert publisher.stats.backpressure_seconds > 0
    assert_exactly_once_in_order(kinesis, stream, events)


async def test_shutdown_deadline_drops_are_counted_and_reported(
    kinesis: Any, stream: str, btc_trades: list[TradeEvent], caplog: pytest.LogCaptureFixture
) -> None:
    events = btc_trades[:50]
    throttled = ThrottlingClient(kinesis, mode="random", failing_calls=10**6)
    throttled._fail_flags = lambda records: [True] * len(records)  # type: ignore[method-assign]
    publisher = KinesisPublisher(throttled, stream, FAST)
    await publisher.start()
    for event in events:
        await publisher.put(event)
    with caplog.at_level(logging.ERROR, logger="coattail_producer.publisher"):
        await publisher.close(deadline_seconds=0.3)

    assert publisher.stats.published == 0
    assert publisher.stats.dropped == {DROP_SHUTDOWN_DEADLINE: 50}
    assert publisher.buffered == 0
    assert all(event.event_id in caplog.text for event in events)
    assert read_stream(kinesis, stream) == {shard: [] for shard in read_stream(kinesis, stream)}
    healthy, _ = publisher.health()
    assert healthy
