"""Publish ``TradeEvent`` JSON to Kinesis with ``put_records``: batched, bounded, retried in order.

Runs on the producer's asyncio event loop; the blocking boto3 call runs in a worker thread
(``asyncio.to_thread``) so connectors keep reading while a batch is in flight.

- Batches hold at most 500 records and 5 MiB (data plus partition keys); a record over
  1 MiB cannot be published and is dropped, counted and logged with its event id.
- A batch is sent when full or when its oldest record has waited ``linger_seconds``.
- The partition key is the event's symbol (``TradeEvent.partition_key``).
- One call is in flight at a time. Entries that a call reports failed (throttling,
  internal errors) and every entry of a call that raised go back to the FRONT of the
  buffer in their original order and are re-sent after an exponential backoff
  (``coattail_framework.resilience.Backoff``, jitter in [50 %, 100 %], reset by a clean call), before
  any record that was not yet sent: a failed record is never overtaken by a record of
  the same key from a later call. Within ONE call Kinesis processes entries
  independently, so a later entry of a key can succeed where an earlier one failed; the
  publisher cannot undo that write and counts each such case in ``reordered``.
- The buffer is bounded (``buffer_records``, counting records in flight): ``put`` waits
  while it is full, which slows the connectors instead of growing memory.
- Nothing is dropped silently: the only drops are oversize records and what is still
  unpublished when ``close`` reaches its deadline, each counted by reason and logged.

Example::

    publisher = KinesisPublisher(client, "coattail-trades", PublisherSettings())
    await publisher.start()
    await publisher.put(event)
    await publisher.close(deadline_seconds=8)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from coattail_framework.events import TradeEvent
from coattail_framework.resilience import Backoff
from coattail_kinesis.limits import PARTITION_KEY_MAX_CHARS
from coattail_producer.settings import PublisherSettings

LOG = logging.getLogger(__name__)

DROP_OVERSIZE = "oversize"
DROP_SHUTDOWN_DEADLINE = "shutdown_deadline"
DROP_INVALID_KEY = "invalid_partition_key"


class PublisherClosedError(RuntimeError):
    """``put`` was called after ``close`` started."""


@dataclass(slots=True)
class PendingRecord:
    """One serialized event waiting for Kinesis. ``enqueued_at`` is monotonic seconds."""

    data: bytes
    partition_key: str
    event_id: str
    enqueued_at: float
    attempts: int = 0

    @property
    def size(self) -> int:
        """Bytes the record counts against Kinesis' limits: data plus UTF-8 partition key."""
        return len(self.data) + len(self.partition_key.encode("utf-8"))


@dataclass
class LatencyWindow:
    """Publish latencies (enqueue to Kinesis acknowledgement), in seconds."""

    count: int = 0
    total: float = 0.0
    minimum: float = float("inf")
    maximum: float = 0.0

    def add(self, seconds: float) -> None:
        """Record one latency."""
        self.count += 1
        self.total += seconds
        self.minimum = min(self.minimum, seconds)
        self.maximum = max(self.maximum, seconds)


@dataclass
class PublisherStats:
    """Counters since start. ``failed`` counts failed entries per attempt; ``retried`` re-sends."""

    received: int = 0
    published: int = 0
    failed: int = 0
    retried: int = 0
    reordered: int = 0
    calls: int = 0
    failed_calls: int = 0
    backpressure_waits: int = 0
    backpressure_seconds: float = 0.0
    dropped: Counter[str] = field(default_factory=Counter)
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    """Cumulative latency since start (Prometheus summary)."""
    latency_window: LatencyWindow = field(default_factory=LatencyWindow)
    """Latency since the last ``take_latency_window`` (CloudWatch statistic set)."""
    last_error: str | None = None

    @property
    def dropped_total(self) -> int:
        """Every dropped record, whatever the reason."""
        return sum(self.dropped.values())

    def take_latency_window(self) -> LatencyWindow:
        """The latencies since the previous call, and start a new window."""
        window, self.latency_window = self.latency_window, LatencyWindow()
        return window


def take_batch(pending: deque[PendingRecord], max_records: int, max_bytes: int) -> list[PendingRecord]:
    """Pop the longest prefix of ``pending`` within the record and byte limits (at least one record)."""
    batch: list[PendingRecord] = []
    size = 0
    while pending and len(batch) < max_records:
        record_size = pending[0].size
        if batch and size + record_size > max_bytes:
            break
        batch.append(pending.popleft())
        size += record_size
    return batch


def count_overtakes(batch: list[PendingRecord], failed: list[bool]) -> int:
    """Entries that succeeded after an earlier entry of the same key failed in the same call."""
    failed_keys: set[str] = set()
    overtakes = 0
    for record, did_fail in zip(batch, failed, strict=True):
        if did_fail:
            failed_keys.add(record.partition_key)
        elif record.partition_key in failed_keys:
            overtakes += 1
    return overtakes


class KinesisPublisher:
    """Buffers events and publishes them to one Kinesis stream (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        stream_name: str,
        settings: PublisherSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._stream_name = stream_name
        self._settings = settings or PublisherSettings()
        self._clock = clock
        self.stats = PublisherStats()
        self._pending: deque[PendingRecord] = deque()
        self._pending_bytes = 0
        self._in_flight = 0
        self._slots = asyncio.Semaphore(self._settings.buffer_records)
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._deadline: float | None = None
        self._retry_backoff = Backoff(
            initial=self._settings.retry_base_seconds, cap=self._settings.retry_max_seconds, jitter=0.5
        )
        """Waits after failed calls; reset by a call with no failed entry."""
        self._drained = asyncio.Event()
        self._drained.set()

    @property
    def stream_name(self) -> str:
        """The Kinesis stream records go to."""
        return self._stream_name

    @property
    def buffered(self) -> int:
        """Records not yet acknowledged by Kinesis (buffered plus in flight)."""
        return len(self._pending) + self._in_flight

    async def start(self) -> None:
        """Start the background flusher on the running loop."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name=f"kinesis-publisher:{self._stream_name}")

    async def put(self, event: TradeEvent) -> None:
        """Buffer one event; waits while the buffer is full (backpressure)."""
        await self.put_serialized(event.to_json().encode("utf-8"), event.partition_key, event.event_id)

    async def put_serialized(self, data: bytes, partition_key: str, event_id: str) -> None:
        """Buffer one already-serialized record (``data`` is the event's UTF-8 JSON)."""
        if self._closing:
            raise PublisherClosedError(
                f"publisher for stream {self._stream_name!r} is closing; event {event_id} refused"
            )
        self.stats.received += 1
        record = PendingRecord(data, partition_key, event_id, self._clock())
        if not 1 <= len(partition_key) <= PARTITION_KEY_MAX_CHARS:
            self._drop([record], DROP_INVALID_KEY)
            return
        if record.size > self._settings.max_record_bytes:
            self._drop([record], DROP_OVERSIZE)
            return
        if self._slots.locked():
            self.stats.backpressure_waits += 1
            started = self._clock()
            await self._slots.acquire()
            self.stats.backpressure_seconds += self._clock() - started
        else:
            await self._slots.acquire()
        record.enqueued_at = self._clock()
        self._pending.append(record)
        self._pending_bytes += record.size
        self._drained.clear()
        if len(self._pending) == 1 or self._batch_ready():
            self._wakeup.set()

    async def flush(self) -> None:
        """Wait until every record buffered so far is acknowledged (or dropped)."""
        self._wakeup.set()
        await self._drained.wait()

    async def close(self, deadline_seconds: float) -> None:
        """Refuse new records, publish what is buffered, stop.

        Records still unpublished after ``deadline_seconds`` are dropped and counted under
        ``shutdown_deadline``. A call already in flight at the deadline is awaited, never
        abandoned, so its outcome is known.
        """
        self._closing = True
        self._deadline = self._clock() + deadline_seconds
        self._wakeup.set()
        if self._flusher is None:
            await self.start()
        assert self._flusher is not None
        await self._flusher

    def health(self) -> tuple[bool, str]:
        """(healthy, reason): unhealthy when the oldest unpublished record is older than ``stall_seconds``."""
        if self._flusher is not None and self._flusher.done() and not self._closing:
            return False, "publisher flusher stopped"
        if self._pending:
            age = self._clock() - self._pending[0].enqueued_at
            if age > self._settings.stall_seconds:
                return False, f"oldest unpublished record waited {age:.1f}s (last error: {self.stats.last_error})"
        return True, "ok"

    def _batch_ready(self) -> bool:
        return len(self._pending) >= self._settings.max_batch_records or (
            self._pending_bytes >= self._settings.max_batch_bytes
        )

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    async def _flush_loop(self) -> None:
        while True:
            if not self._pending:
                self._drained.set()
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._closing and self._past_deadline():
                self._drop_pending(DROP_SHUTDOWN_DEADLINE)
                continue
            await self._linger()
            try:
                await self._send(
                    take_batch(self._pending, self._settings.max_batch_records, self._settings.max_batch_bytes)
                )
            except Exception:
                LOG.exception("kinesis publisher: unexpected error while publishing a batch; retrying")
                await self._backoff()

    async def _linger(self) -> None:
        """Wait until a full batch is buffered, the oldest record's linger is over, or close."""
        while not self._closing and not self._batch_ready():
            remaining = self._pending[0].enqueued_at + self._settings.linger_seconds - self._clock()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    async def _send(self, batch: list[PendingRecord]) -> None:
        self._pending_bytes -= sum(record.size for record in batch)
        self._in_flight = len(batch)
        self.stats.retried += sum(1 for record in batch if record.attempts)
        for record in batch:
            record.attempts += 1
        entries = [{"Data": record.data, "PartitionKey": record.partition_key} for record in batch]
        self.stats.calls += 1
        try:
            response = await asyncio.to_thread(self._client.put_records, StreamName=self._stream_name, Records=entries)
        except (BotoCoreError, ClientError) as error:
            self.stats.failed_calls += 1
            self.stats.failed += len(batch)
            self.stats.last_error = f"{type(error).__name__}: {error}"
            LOG.warning(
                "kinesis publisher: put_records of %d record(s) to %r failed (%s); retrying",
                len(batch),
                self._stream_name,
                self.stats.last_error,
            )
            self._requeue(batch)
            await self._backoff()
            return
        except BaseException:
            self._requeue(batch)
            raise
        results: list[dict[str, Any]] = response["Records"]
        if len(results) != len(batch):
            self.stats.failed_calls += 1
            self.stats.last_error = f"put_records answered {len(results)} entries for {len(batch)} sent"
            LOG.error("kinesis publisher: %s; re-sending the whole batch", self.stats.last_error)
            self._requeue(batch)
            await self._backoff()
            return
        failed_flags = [bool(result.get("ErrorCode")) for result in results]
        now = self._clock()
        retry: list[PendingRecord] = []
        errors: Counter[str] = Counter()
        for record, result, did_fail in zip(batch, results, failed_flags, strict=True):
            if did_fail:
                retry.append(record)
                errors[str(result["ErrorCode"])] += 1
                continue
            latency = now - record.enqueued_at
            self.stats.latency.add(latency)
            self.stats.latency_window.add(latency)
        published = len(batch) - len(retry)
        self.stats.published += published
        self._in_flight = 0
        self._slots_release(published)
        if not retry:
            self._retry_backoff.reset()
            return
        self.stats.failed += len(retry)
        self.stats.reordered += count_overtakes(batch, failed_flags)
        self.stats.last_error = ", ".join(f"{code} x{count}" for code, count in errors.items())
        LOG.warning(
            "kinesis publisher: %d of %d record(s) failed (%s); retrying them first",
            len(retry),
            len(batch),
            self.stats.last_error,
        )
        self._requeue(retry)
        await self._backoff()

    def _requeue(self, records: list[PendingRecord]) -> None:
        """Put records back at the front of the buffer, keeping their order."""
        self._in_flight = 0
        self._pending.extendleft(reversed(records))
        self._pending_bytes += sum(record.size for record in records)

    async def _backoff(self) -> None:
        delay = self._retry_backoff.next_delay()
        if self._deadline is not None:
            delay = max(0.0, min(delay, self._deadline - self._clock()))
        await asyncio.sleep(delay)

    def _slots_release(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _drop_pending(self, reason: str) -> None:
        records = list(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self._slots_release(len(records))
        self._drop(records, reason)

    def _drop(self, records: Iterable[PendingRecord], reason: str) -> None:
        dropped = list(records)
        if not dropped:
            return
        self.stats.dropped[reason] += len(dropped)
        LOG.error(
            "kinesis publisher: DROPPED %d record(s) for %r (%s); event ids: %s",
            len(dropped),
            self._stream_name,
            reason,
            ", ".join(record.event_id for record in dropped),
        )
