"""Reading one shard with ``GetRecords``: cursors, iterator renewal, pacing and replay.

``ShardCursor`` is the driver's read state of one shard between micro-batches: the records
fetched after the batch's start position and the iterator that continues after them.
``ShardFetcher`` issues the calls: it renews expired iterators from the last sequence number
read (``AFTER_SEQUENCE_NUMBER``), backs off when throttled or failing and paces polls per shard
(``limits.ShardPacer``). The driver uses ``fill``; executors use ``read_range`` to replay a
batch between two offsets, which returns exactly the records the batch was planned with.

A shard that cannot be read stops the query with ``KinesisReadError``: at once when no retry
can fix the error (``limits.is_fatal``), after ``limits.ReadFailureLimit`` for other failures,
after ``MAX_THROTTLES_IN_A_ROW`` throttled calls.

boto3 clients are created lazily, once per process (``kinesis_client``), and never stored on
an object Spark pickles.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import parse_timestamp

from coattail_kinesis.clients import aws_client
from coattail_kinesis.limits import (
    GET_RECORDS_MAX_RECORDS,
    ITERATOR_RENEW_AFTER_S,
    ReadFailureLimit,
    ShardPacer,
    is_expired_iterator,
    is_fatal,
    is_throttling,
)
from coattail_kinesis.offsets import SHARD_END, is_after, is_sequence, iterator_request
from coattail_kinesis.shards import Shard

logger = logging.getLogger(__name__)

MAX_THROTTLES_IN_A_ROW = 30
"""Consecutive throttled calls of one shard after which the driver or a replay gives up (about
4 minutes of backoff)."""
THROTTLES_BETWEEN_WARNINGS = 10
"""A shard throttled this many times in a row is logged (throttling is routine, a streak is not)."""

_CLIENT_CONFIG = BotoConfig(
    retries={"max_attempts": 3, "mode": "standard"},
    max_pool_connections=32,
    connect_timeout=10,
    read_timeout=30,
)
_clients: dict[tuple[str, str | None], Any] = {}
_clients_lock = threading.Lock()


def utc_timestamp(value: Any) -> datetime:
    """A response timestamp as an aware UTC datetime (Kinesis sends epoch seconds as a JSON number).

    botocore's default parser converts each one through the local time zone, which costs
    two thirds of parsing a 10,000-record ``GetRecords`` response; the instant is the same.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    parsed: datetime = parse_timestamp(value)
    return parsed.astimezone(UTC)


def kinesis_client(region: str, endpoint_url: str | None) -> Any:
    """This process's Kinesis client for ``region``/``endpoint_url`` (created on first use).

    Credentials come from boto3's default provider chain (dummy ones for a loopback endpoint
    when the chain finds none: ``clients.aws_client``). botocore retries transient errors
    up to 3 attempts; throttling that survives them is paced per shard by the caller.
    Timestamps in responses are parsed by ``utc_timestamp``.
    """
    key = (region, endpoint_url)
    with _clients_lock:
        if key not in _clients:
            import boto3
            import botocore.session

            core = botocore.session.get_session()
            core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=utc_timestamp)
            session = boto3.session.Session(botocore_session=core)
            _clients[key] = aws_client(
                "kinesis", region=region, endpoint_url=endpoint_url, config=_CLIENT_CONFIG, session=session
            )
        return _clients[key]


@dataclass(frozen=True)
class KinesisRecord:
    """One record as Kinesis returned it; ``arrival`` is timezone-aware UTC."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: datetime

    @classmethod
    def from_api(cls, shard_id: str, record: dict[str, Any]) -> KinesisRecord:
        """A record from one entry of a ``GetRecords`` response."""
        return cls(
            shard_id=shard_id,
            sequence_number=record["SequenceNumber"],
            partition_key=record["PartitionKey"],
            data=bytes(record["Data"]),
            arrival=record["ApproximateArrivalTimestamp"].astimezone(UTC),
        )

    def row(self, stream_name: str) -> tuple[bytes, str, str, str, datetime, str]:
        """The record in the source's column order (see ``source.KINESIS_SCHEMA``)."""
        return (self.data, stream_name, self.partition_key, self.sequence_number, self.arrival, self.shard_id)


@dataclass
class ShardCursor:
    """Read state of one shard: records fetched after ``base`` and the iterator after them.

    ``base`` is a position (see ``offsets``); ``records`` follow it contiguously. ``ended``:
    the shard is closed and the records reach its end. ``caught_up``: the last call found no
    record newer than what it returned. ``exhausted``: a Trigger.AvailableNow run reached
    records that arrived after the run started.
    """

    shard: Shard
    base: str
    records: list[KinesisRecord] = field(default_factory=list)
    iterator: str | None = None
    iterator_issued_at: float = 0.0
    ended: bool = False
    caught_up: bool = False
    exhausted: bool = False

    @property
    def tail(self) -> str:
        """The position after every fetched record."""
        return self.records[-1].sequence_number if self.records else self.base

    def align(self, start: str) -> None:
        """Make ``start`` the base: drop records up to it, or start over if it is outside."""
        if start == self.base:
            return
        if is_after(self.base, start) or is_after(start, self.tail) or start == SHARD_END:
            self.base, self.records, self.iterator = start, [], None
            self.ended = start == SHARD_END
            self.caught_up = self.exhausted = False
            return
        self.records = [r for r in self.records if is_after(r.sequence_number, start)]
        self.base = start

    def consume(self) -> list[KinesisRecord]:
        """The fetched records, removed from the cursor; ``base`` moves to their end."""
        records, self.records = self.records, []
        if records:
            self.base = records[-1].sequence_number
        return records

    def byte_quota(self, quota: int | None, max_bytes: int | None) -> int | None:
        """``quota`` lowered so that the batch's record data stays within ``max_bytes`` (bytes).

        A batch takes at least one record, whatever its size (up to Kinesis's 1 MiB), so a
        shard always moves on. None for ``max_bytes``: no byte cap.
        """
        if max_bytes is None:
            return quota
        taken = len(self.records) if quota is None else min(quota, len(self.records))
        total = 0
        for index in range(taken):
            total += len(self.records[index].data)
            if total > max_bytes and index > 0:
                return index
        return quota

    def end_position(self, quota: int | None) -> str:
        """The position a batch starting at ``base`` ends at, taking at most ``quota`` records."""
        if quota is not None and len(self.records) > quota:
            return self.records[quota - 1].sequence_number if quota else self.base
        return SHARD_END if self.ended else self.tail

    def between(self, start: str, end: str) -> list[KinesisRecord] | None:
        """The fetched records in (start, end], or None when the cursor does not hold them all."""
        if start != self.base and not (is_after(start, self.base) and not is_after(start, self.tail)):
            return None
        if end == SHARD_END:
            if not self.ended:
                return None
            return [r for r in self.records if is_after(r.sequence_number, start)]
        if is_after(end, self.tail):
            return None
        return [r for r in self.records if is_after(r.sequence_number, start) and not is_after(r.sequence_number, end)]


class KinesisReadError(RuntimeError):
    """A shard cannot be read; the message names the stream, the shard, the call and the last error."""


class ShardFetcher:
    """``GetRecords`` against one stream, paced per shard. One per process and stream."""

    def __init__(
        self, client: Any, stream_name: str, pacer: ShardPacer, failure_limit: ReadFailureLimit | None = None
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.pacer = pacer
        self.failure_limit = failure_limit or ReadFailureLimit()

    def _iterator(self, cursor: ShardCursor) -> str:
        now = self.pacer.clock()
        if cursor.iterator is None or now - cursor.iterator_issued_at > ITERATOR_RENEW_AFTER_S:
            response = self.client.get_shard_iterator(
                StreamName=self.stream_name, ShardId=cursor.shard.shard_id, **iterator_request(cursor.tail)
            )
            cursor.iterator, cursor.iterator_issued_at = response["ShardIterator"], now
        return cursor.iterator

    def fetch_once(self, cursor: ShardCursor, limit: int, *, arrived_by: datetime | None = None) -> bool:
        """One ``GetRecords`` call appending at most ``limit`` records to ``cursor``.

        Renews an expired iterator from the last sequence number read and retries once.
        Returns False when throttled or failed (the pacer then holds the shard back); raises
        ``KinesisReadError`` when the failure is fatal or the shard failed too long (``failed_call``).
        ``arrived_by`` (UTC) stops at the first record that arrived later and marks the cursor
        exhausted.
        """
        limit = max(1, min(limit, GET_RECORDS_MAX_RECORDS))
        shard_id = cursor.shard.shard_id
        for _attempt in range(2):
            operation = "GetShardIterator"
            try:
                iterator = self._iterator(cursor)
                operation = "GetRecords"
                response = self.client.get_records(ShardIterator=iterator, Limit=limit)
                break
            except ClientError as error:
                if is_expired_iterator(error):
                    cursor.iterator = None
                    continue
                self.failed_call(shard_id, operation, error)
                return False
            except BotoCoreError as error:
                self.failed_call(shard_id, operation, error)
                return False
        else:
            raise RuntimeError(
                f"Kinesis shard {shard_id} of stream {self.stream_name}: a freshly issued shard iterator expired "
                "immediately; check the clock of this host"
            )
        fetched = [KinesisRecord.from_api(shard_id, r) for r in response.get("Records", [])]
        cursor.iterator = response.get("NextShardIterator")
        cursor.caught_up = int(response.get("MillisBehindLatest", 0)) == 0
        self.pacer.polled(shard_id, idle=not fetched and cursor.caught_up)
        late = [i for i, r in enumerate(fetched) if arrived_by is not None and r.arrival > arrived_by]
        if late:
            cursor.records.extend(fetched[: late[0]])
            cursor.exhausted, cursor.iterator = True, None
            return True
        cursor.records.extend(fetched)
        cursor.exhausted = arrived_by is not None and cursor.caught_up
        ending = cursor.shard.ending_sequence
        cursor.ended = cursor.iterator is None or (
            ending is not None
            and ((not fetched and cursor.caught_up) or (is_sequence(cursor.tail) and int(cursor.tail) >= int(ending)))
        )
        return True

    def failed_call(self, shard_id: str | None, operation: str, error: ClientError | BotoCoreError) -> None:
        """Back off after a failed call; raise ``KinesisReadError`` when it is fatal or the streak too long.

        ``shard_id`` None: a call about the whole stream (``ListShards``), paced and limited
        under the operation's name like a shard.
        """
        where = f"Kinesis stream {self.stream_name!r}" + (f", shard {shard_id}" if shard_id else "") + f": {operation}"
        shard_id = shard_id or operation
        cause = " ".join(str(error).split())[:300]  # one line: a 5xx may carry a whole HTML page
        if is_fatal(error):
            raise KinesisReadError(
                f"{where} failed and a retry cannot fix it: {cause}; check the credentials, the IAM "
                "permissions, the stream's KMS key, streamName and region"
            ) from error
        if isinstance(error, ClientError) and is_throttling(error):
            self.pacer.throttled(shard_id)
            throttles = self.pacer.throttled_in_a_row(shard_id)
            if throttles >= MAX_THROTTLES_IN_A_ROW:
                raise KinesisReadError(
                    f"{where} throttled {throttles} times in a row (last: {cause}); reduce the consumers "
                    "of this stream or add shards"
                ) from error
            if throttles % THROTTLES_BETWEEN_WARNINGS == 0:
                logger.warning("%s throttled %d times in a row; backing off", where, throttles)
            return
        backoff = self.pacer.failed(shard_id)
        failures, seconds = self.pacer.failing(shard_id)
        limit = self.failure_limit
        if limit.reached(failures, seconds):
            raise KinesisReadError(
                f"{where} failed {failures} times in a row over {seconds:.1f} s (limits: readFailureMaxAttempts "
                f"{limit.max_attempts}, readFailureMaxSeconds {limit.max_seconds:g}); last error: {cause}"
            ) from error
        logger.warning(
            "%s failed (%d in a row over %.1f s; the query stops at %d or %g s); retrying in %.1f s: %s",
            where,
            failures,
            seconds,
            limit.max_attempts,
            limit.max_seconds,
            backoff,
            cause,
        )

    def fill(
        self,
        cursor: ShardCursor,
        want: int | None,
        *,
        wait: bool,
        max_calls: int | None,
        arrived_by: datetime | None = None,
    ) -> None:
        """Fetch until ``cursor`` holds ``want`` records (None: all) or the shard is caught up.

        ``wait``: sleep through backoff and idle pacing too, instead of leaving the shard for
        the next trigger (the short pacing between two calls is always slept). ``max_calls``
        bounds the ``GetRecords`` calls (None: until done). Runs on the driver.
        """
        calls = 0
        while not (cursor.ended or cursor.exhausted) and (want is None or len(cursor.records) < want):
            if max_calls is not None and calls >= max_calls:
                return
            delay = self.pacer.wait_s(cursor.shard.shard_id)
            if delay > 0:
                if not wait and delay > self.pacer.min_interval_s:
                    return
                self.pacer.sleep(delay)
            calls += 1
            limit = GET_RECORDS_MAX_RECORDS if want is None else want - len(cursor.records)
            if self.fetch_once(cursor, limit, arrived_by=arrived_by) and cursor.caught_up:
                return

    def read_range(self, shard: Shard, start: str, end: str) -> Iterator[KinesisRecord]:
        """The records in (start, end] of ``shard``, in order; runs on executors for replay.

        ``end`` is a sequence number or ``SHARD_END``. Sleeps through pacing, throttling and
        failures; raises ``KinesisReadError`` as ``fetch_once`` does, and RuntimeError when the
        shard no longer holds records up to ``end`` (expired beyond the retention period).
        """
        cursor = ShardCursor(shard=shard, base=start)
        while not cursor.ended and (end == SHARD_END or is_after(end, cursor.tail)):
            self.pacer.wait(shard.shard_id)
            if not self.fetch_once(cursor, GET_RECORDS_MAX_RECORDS):
                continue
            for record in cursor.consume():
                if end != SHARD_END and is_after(record.sequence_number, end):
                    return
                yield record
            if cursor.caught_up and not cursor.ended and end != SHARD_END and is_after(end, cursor.tail):
                raise RuntimeError(
                    f"Kinesis shard {shard.shard_id} of stream {self.stream_name}: records up to sequence number "
                    f"{end} are no longer readable (last readable {cursor.tail}); they expired beyond the "
                    "stream's retention period"
                )
