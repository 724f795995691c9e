"""Kinesis service limits (reads and writes) and the per-shard pacing that respects the read ones.

Writes: ``PutRecords`` takes at most 500 records and 5 MiB per call (data plus partition
keys), one record is at most 1 MiB (data plus partition key), a partition key 1-256
characters; the producer batches by these (``PUT_RECORDS_*``, ``RECORD_MAX_BYTES``,
``PARTITION_KEY_MAX_CHARS``).

Real Kinesis (shared-throughput consumers) allows 5 ``GetRecords`` calls per second per shard,
shared by every consumer of the stream, returns at most 10,000 records (10 MiB) per call, and
a shard iterator expires 5 minutes after it was issued. ``ShardPacer`` keeps, per shard, the
earliest moment the next ``GetRecords`` may go out: ``min_interval_s`` after a call that found
records or a backlog, ``idle_interval_s`` after a call that found the shard caught up, and an
exponential backoff after a throttled call (``ProvisionedThroughputExceededException``) or a
failed one (HTTP 5xx, a lost connection). ``ReadFailureLimit`` says when a shard that keeps
failing stops the query; ``is_fatal`` names the errors no retry can fix.

Times are ``time.monotonic()`` seconds. A pacer lives in one process (the driver's reader, or
one executor task) and is safe to use from several threads, one shard per thread.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

MIB = 1024 * 1024

PUT_RECORDS_MAX_RECORDS = 500
"""``PutRecords`` accepts at most 500 entries per call."""
PUT_RECORDS_MAX_BYTES = 5 * MIB
"""``PutRecords`` accepts at most 5 MiB per call, data plus partition keys."""
RECORD_MAX_BYTES = 1 * MIB
"""One Kinesis record (data plus partition key) is at most 1 MiB."""
PARTITION_KEY_MAX_CHARS = 256
"""A partition key is 1 to 256 Unicode characters."""

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
FATAL_ERRORS = frozenset(
    {
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
        "InvalidSignatureException",
        "ExpiredTokenException",
    }
)
"""Error codes no retry can fix: permissions, the stream's KMS key, a bad request, a missing
stream, unknown or expired credentials. ``KMSThrottlingException`` is a throttle, not here."""
FATAL_CLIENT_ERRORS = (NoCredentialsError, PartialCredentialsError, NoRegionError, ParamValidationError)
"""botocore errors raised before any request is sent (no credentials or region, a bad parameter)."""

READ_FAILURE_MAX_ATTEMPTS = 10
"""Default of ``ReadFailureLimit.max_attempts``."""
READ_FAILURE_MAX_SECONDS = 60.0
"""Default of ``ReadFailureLimit.max_seconds``."""


def error_code(error: ClientError) -> str:
    """The AWS error code of a botocore ``ClientError`` (empty when absent)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_throttling(error: ClientError) -> bool:
    """True when AWS refused the call for exceeding a rate limit: back off and retry."""
    return error_code(error) in THROTTLING_ERRORS


def is_expired_iterator(error: ClientError) -> bool:
    """True when the shard iterator is older than 5 minutes: get a new one and retry."""
    return error_code(error) in EXPIRED_ITERATOR_ERRORS


def is_fatal(error: ClientError | BotoCoreError) -> bool:
    """True when retrying cannot fix the error (``FATAL_ERRORS``, ``FATAL_CLIENT_ERRORS``): fail at once.

    Every other error but throttling and an expired iterator (HTTP 5xx such as ``InternalFailure``
    or ``ServiceUnavailable``, connection errors, codes not listed) is retried within ``ReadFailureLimit``.
    """
    if isinstance(error, ClientError):
        return error_code(error) in FATAL_ERRORS
    return isinstance(error, FATAL_CLIENT_ERRORS)


@dataclass(frozen=True)
class ReadFailureLimit:
    """When a shard's failing reads stop the query: ``max_attempts`` failed calls in a row, or
    ``max_seconds`` (``ShardPacer`` clock) since the first of them, whichever comes first.

    A successful ``GetRecords`` starts the count over. Throttled calls are not counted here
    (``reader.MAX_THROTTLES_IN_A_ROW`` bounds them). Each call is already up to 3 HTTP attempts
    (botocore's standard retry mode).
    """

    max_attempts: int = READ_FAILURE_MAX_ATTEMPTS
    max_seconds: float = READ_FAILURE_MAX_SECONDS

    def reached(self, failures_in_a_row: int, failing_for_s: float) -> bool:
        """True when a shard with this many failures in a row, over this many seconds, must stop."""
        return failures_in_a_row >= self.max_attempts or failing_for_s >= self.max_seconds


@dataclass
class _ShardPace:
    next_call_at: float = 0.0
    throttled_in_a_row: int = 0
    failed_in_a_row: int = 0
    failing_since: float | None = None


class ShardPacer:
    """When each shard may next be polled with ``GetRecords``.

    ``min_interval_s`` defaults to 0.2 s (the 5 calls/s limit); raise it when other consumers
    share the stream. ``backoff_base_s`` doubles per consecutive throttle (or per consecutive
    failure) up to ``backoff_max_s``, with jitter in [50 %, 100 %] so that shards and consumers
    spread out.
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
        pace.throttled_in_a_row = pace.failed_in_a_row = 0
        pace.failing_since = None
        pace.next_call_at = self.clock() + (self.idle_interval_s if idle else self.min_interval_s)

    def throttled(self, shard_id: str) -> float:
        """Record a throttled call; returns the backoff (seconds) before the shard's next call."""
        pace = self._pace(shard_id)
        pace.throttled_in_a_row += 1
        return self._back_off(pace, pace.throttled_in_a_row)

    def failed(self, shard_id: str) -> float:
        """Record a failed call a retry may fix; returns the backoff (seconds) before the shard's next call."""
        pace = self._pace(shard_id)
        pace.failed_in_a_row += 1
        if pace.failing_since is None:
            pace.failing_since = self.clock()
        return self._back_off(pace, pace.failed_in_a_row)

    def _back_off(self, pace: _ShardPace, in_a_row: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (in_a_row - 1))
        backoff = ceiling * (0.5 + random.random() / 2)
        pace.next_call_at = self.clock() + backoff
        return backoff

    def throttled_in_a_row(self, shard_id: str) -> int:
        """Consecutive throttled calls on ``shard_id`` since its last successful call."""
        return self._pace(shard_id).throttled_in_a_row

    def failing(self, shard_id: str) -> tuple[int, float]:
        """Failed calls on ``shard_id`` since its last successful call, and seconds since the first of them."""
        pace = self._pace(shard_id)
        since = pace.failing_since
        return pace.failed_in_a_row, 0.0 if since is None else self.clock() - since
