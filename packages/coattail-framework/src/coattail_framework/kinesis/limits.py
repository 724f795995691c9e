"""Kinesis read limits and the per-shard pacing that respects them.

Real Kinesis (shared-throughput consumers) allows 5 ``GetRecords`` calls per second per shard,
shared by every consumer of the stream, returns at most 10,000 records (10 MiB) per call, and
a shard iterator expires 5 minutes after it was issued. ``ShardPacer`` keeps, per shard, the
earliest moment the next ``GetRecords`` may go out: ``min_interval_s`` after a call that found
records or a backlog, ``idle_interval_s`` after a call that found the shard caught up, and an
exponential backoff after ``ProvisionedThroughputExceededException``.

Times are ``time.monotonic()`` seconds. A pacer lives in one process (the driver's reader, or
one executor task) and is safe to use from several threads, one shard per thread.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

GET_RECORDS_MAX_RECORDS = 10_000
"""Most records one ``GetRecords`` call may return."""
GET_RECORDS_CALLS_PER_SECOND = 5
"""``GetRecords`` calls allowed per shard per second, shared by all consumers."""
ITERATOR_LIFETIME_S = 300.0
"""A shard iterator is valid for 5 minutes after ``GetShardIterator`` returned it."""
ITERATOR_RENEW_AFTER_S = ITERATOR_LIFETIME_S - 30.0
"""Iterators older than this are renewed before use rather than risk expiring mid-call."""

THROTTLING_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "LimitExceededException",
        "KMSThrottlingException",
    }
)
EXPIRED_ITERATOR_ERRORS = frozenset({"ExpiredIteratorException"})


def error_code(error: ClientError) -> str:
    """The AWS error code of a botocore ``ClientError`` (empty when absent)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_throttling(error: ClientError) -> bool:
    """True when AWS refused the call for exceeding a rate limit: back off and retry."""
    return error_code(error) in THROTTLING_ERRORS


def is_expired_iterator(error: ClientError) -> bool:
    """True when the shard iterator is older than 5 minutes: get a new one and retry."""
    return error_code(error) in EXPIRED_ITERATOR_ERRORS


@dataclass
class _ShardPace:
    next_call_at: float = 0.0
    throttled_in_a_row: int = 0


class ShardPacer:
    """When each shard may next be polled with ``GetRecords``.

    ``min_interval_s`` defaults to 0.2 s (the 5 calls/s limit); raise it when other consumers
    share the stream. ``backoff_base_s`` doubles per consecutive throttle up to
    ``backoff_max_s``, with jitter in [50 %, 100 %] so that shards and consumers spread out.
    """

    def __init__(
        self,
        *,
        min_interval_s: float = 1.0 / GET_RECORDS_CALLS_PER_SECOND,
        idle_interval_s: float = 1.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.min_interval_s = min_interval_s
        self.idle_interval_s = idle_interval_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.clock = clock
        self.sleep = sleep
        self._shards: dict[str, _ShardPace] = {}
        self._lock = threading.Lock()

    def _pace(self, shard_id: str) -> _ShardPace:
        with self._lock:
            return self._shards.setdefault(shard_id, _ShardPace())

    def wait_s(self, shard_id: str) -> float:
        """Seconds until ``shard_id`` may be polled again (0 when it may be polled now)."""
        return max(0.0, self._pace(shard_id).next_call_at - self.clock())

    def wait(self, shard_id: str) -> None:
        """Sleep until ``shard_id`` may be polled."""
        if (delay := self.wait_s(shard_id)) > 0:
            self.sleep(delay)

    def polled(self, shard_id: str, *, idle: bool) -> None:
        """Record a successful ``GetRecords``; ``idle`` when it found the shard caught up and empty."""
        pace = self._pace(shard_id)
        pace.throttled_in_a_row = 0
        pace.next_call_at = self.clock() + (self.idle_interval_s if idle else self.min_interval_s)

    def throttled(self, shard_id: str) -> float:
        """Record a throttled call; returns the backoff (seconds) before the shard's next call."""
        pace = self._pace(shard_id)
        pace.throttled_in_a_row += 1
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (pace.throttled_in_a_row - 1))
        backoff = ceiling * (0.5 + random.random() / 2)
        pace.next_call_at = self.clock() + backoff
        return backoff

    def throttled_in_a_row(self, shard_id: str) -> int:
        """Consecutive throttled calls on ``shard_id`` since its last successful call."""
        return self._pace(shard_id).throttled_in_a_row
