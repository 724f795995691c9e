"""Raw record payloads into Kinesis as they are: a file's lines, or dead letters' ``raw`` texts.

Runs on an asyncio event loop in the calling process: ``coattail-producer replay
kinesis:FILE``, the end-to-end replay (``nox -s replay -- kinesis:FILE``) and
``coattail-stream-job redrive-dlq``. Records go through the producer's own
``KinesisPublisher`` (``put_records`` batches of at most 500 records / 5 MiB, ordered
retries, counted drops), so a payload reaches the stream exactly as a live one would.

- A line is the bytes between two ``\\n``: the ``\\n`` is not part of the payload, anything
  else is kept byte for byte (a ``\\r`` before the ``\\n``, invalid UTF-8, text that is not
  JSON). A last line without ``\\n`` counts. A file whose name ends ``.gz`` is decompressed.
- Empty lines (no bytes) are skipped and counted (``empty_lines``): there is nothing to
  replay in them.
- A payload whose record (payload plus UTF-8 partition key) exceeds Kinesis' 1 MiB cannot be
  put: it is counted in ``rejected["too_large"]`` and logged with its origin. A line that
  long is never held in memory whole (read at most 1 MiB + 1 byte, then skipped).
- Partition key (deterministic): the ``symbol`` of a JSON object whose ``symbol`` is a string
  of 1-256 characters (the producer's key for a ``TradeEvent``, so a replayed trade lands in
  its symbol's shard), else ``raw-`` + the first 32 hex digits of the payload's SHA-256.

Example::

    stats = await put_raw_files(kinesis, "coattail-trades", [Path("records.jsonl")], PublisherSettings())
    assert stats.put == stats.lines_read - stats.empty_lines - sum(stats.rejected.values())
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from io import BufferedIOBase
from pathlib import Path
from typing import Any

from coattail_framework.errors import ConfigError
from coattail_kinesis.limits import PARTITION_KEY_MAX_CHARS
from coattail_producer.publisher import KinesisPublisher
from coattail_producer.settings import PublisherSettings

LOG = logging.getLogger(__name__)

RAW_SOURCE = "kinesis"
"""The replay prefix of a raw-record file: ``kinesis:path``."""
REJECT_TOO_LARGE = "too_large"
REJECT_STALLED = "publisher_stalled"
HASH_KEY_PREFIX = "raw-"
_SKIP_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class RawPayload:
    """One payload to put. ``data`` is None when it is longer than a record may be (not held)."""

    data: bytes | None
    size: int
    """Bytes of the payload (known even when ``data`` was not kept)."""
    origin: str
    """Where it came from (``file:line``), for logs."""


@dataclass
class PutOutcome:
    """What ``put_payloads`` did with the payloads it was given."""

    offered: int = 0
    put: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    """Payloads never sent, by reason: ``too_large`` (cannot be a Kinesis record), ``publisher_stalled``
    (Kinesis accepted nothing for ``stall_seconds`` while the buffer was full; the rest is counted, not sent)."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Payloads the publisher gave up on (``shutdown_deadline``: Kinesis kept failing until the deadline)."""
    failed: int = 0
    retried: int = 0

    @property
    def unsent(self) -> int:
        """Payloads offered but not in the stream, whatever the reason."""
        return self.offered - self.put


@dataclass
class RawFileStats:
    """What putting raw-record files did (``clean``: nothing lost to Kinesis errors)."""

    files: list[str]
    lines_read: int = 0
    empty_lines: int = 0
    outcome: PutOutcome = field(default_factory=PutOutcome)

    @property
    def put(self) -> int:
        """Lines now in the stream."""
        return self.outcome.put

    @property
    def rejected(self) -> Counter[str]:
        """Lines that cannot be a Kinesis record, by reason."""
        return self.outcome.rejected

    @property
    def clean(self) -> bool:
        """Every line put, skipped as empty or rejected as too large; none lost to Kinesis errors."""
        outcome = self.outcome
        accounted = self.empty_lines + outcome.put + outcome.rejected[REJECT_TOO_LARGE]
        return not outcome.dropped and accounted == self.lines_read

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "files": self.files,
            "lines_read": self.lines_read,
            "empty_lines": self.empty_lines,
            "put": self.outcome.put,
            "rejected": dict(sorted(self.outcome.rejected.items())),
            "dropped": dict(sorted(self.outcome.dropped.items())),
            "failed": self.outcome.failed,
            "retried": self.outcome.retried,
            "clean": self.clean,
        }


def partition_key(payload: bytes) -> str:
    """The record's partition key: a JSON object's ``symbol`` (1-256 characters), else a hash of the payload.

    >>> partition_key(b'{"symbol": "BTCUSDT", "price": "1"}')
    'BTCUSDT'
    >>> partition_key(b"not json")
    'raw-7ccfa1fbf3940e6f0c0375d87c0f9235'
    """
    try:
        decoded = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than the parser goes
        decoded = None
    symbol = decoded.get("symbol") if isinstance(decoded, dict) else None
    if isinstance(symbol, str) and 1 <= len(symbol) <= PARTITION_KEY_MAX_CHARS:
        return symbol
    return HASH_KEY_PREFIX + hashlib.sha256(payload).hexdigest()[:32]


def record_key(payload: RawPayload, max_record_bytes: int) -> str | None:
    """The payload's partition key, or None when it cannot be a record (payload plus UTF-8 key over the limit)."""
    if payload.data is None:
        return None
    key = partition_key(payload.data)
    return key if payload.size + len(key.encode("utf-8")) <= max_record_bytes else None


def _skip_rest_of_line(handle: BufferedIOBase) -> int:
    """Read past the rest of the current line without keeping it; the bytes skipped (without ``\\n``)."""
    skipped = 0
    while chunk := handle.readline(_SKIP_CHUNK_BYTES):
        if chunk.endswith(b"\n"):
            return skipped + len(chunk) - 1
        skipped += len(chunk)
    return skipped


def read_lines(handle: BufferedIOBase, origin: str, max_bytes: int) -> Iterator[RawPayload]:
    """Every line of ``handle`` as a payload (see the module docstring); lines over ``max_bytes`` carry no data."""
    number = 0
    while line := handle.readline(max_bytes + 1):
        number += 1
        data = line[:-1] if line.endswith(b"\n") else line
        if len(data) > max_bytes:
            yield RawPayload(None, len(data) + _skip_rest_of_line(handle), f"{origin}:{number}")
        else:
            yield RawPayload(data, len(data), f"{origin}:{number}")


def _open_bytes(path: Path) -> BufferedIOBase:
    """``path`` opened for binary reading; gzip-decompressed when its name ends ``.gz``."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def check_files(paths: Sequence[Path]) -> None:
    """Raise ``ConfigError`` naming the first raw-record file that does not exist (before anything is put)."""
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{path}: raw-record file not found (given as {RAW_SOURCE}:{path})")


async def put_payloads(
    client: Any,
    stream_name: str,
    payloads: Iterable[RawPayload],
    *,
    settings: PublisherSettings | None = None,
    deadline_seconds: float = 30.0,
) -> PutOutcome:
    """Put ``payloads`` into ``stream_name`` through a ``KinesisPublisher``; what happened to each, counted.

    ``payloads`` is consumed lazily (backpressure: the publisher's bounded buffer). When the
    buffer stays full for ``settings.stall_seconds`` (Kinesis refuses every call), the rest is
    read and counted under ``publisher_stalled`` without waiting again: the call is bounded.
    ``deadline_seconds``: once every payload was handed over, how long the publisher may
    take to get the rest acknowledged; what it still holds then is dropped and counted.
    """
    settings = settings or PublisherSettings()
    outcome = PutOutcome()
    publisher = KinesisPublisher(client, stream_name, settings)
    await publisher.start()
    stalled = False
    try:
        for payload in payloads:
            outcome.offered += 1
            if stalled:
                outcome.rejected[REJECT_STALLED] += 1
                continue
            key = record_key(payload, settings.max_record_bytes)
            if key is None or payload.data is None:
                outcome.rejected[REJECT_TOO_LARGE] += 1
                LOG.error(
                    "raw records: %s: %d byte(s) cannot be a Kinesis record (at most %d with its partition key); "
                    "not put",
                    payload.origin,
                    payload.size,
                    settings.max_record_bytes,
                )
                continue
            try:
                await asyncio.wait_for(
                    publisher.put_serialized(payload.data, key, payload.origin), settings.stall_seconds
                )
            except TimeoutError:
                stalled = True
                outcome.rejected[REJECT_STALLED] += 1
                LOG.error(
                    "raw records: Kinesis stream %r accepted nothing for %.0fs (last error: %s); "
                    "%s and everything after it are not put",
                    stream_name,
                    settings.stall_seconds,
                    publisher.stats.last_error,
                    payload.origin,
                )
    finally:
        await publisher.close(deadline_seconds)
    stats = publisher.stats
    outcome.put = stats.published
    outcome.dropped = dict(stats.dropped)
    outcome.failed = stats.failed
    outcome.retried = stats.retried
    return outcome


async def put_raw_files(
    client: Any,
    stream_name: str,
    paths: Sequence[Path],
    settings: PublisherSettings | None = None,
    *,
    deadline_seconds: float = 30.0,
) -> RawFileStats:
    """Put every line of ``paths`` (in order, file after file) into ``stream_name``; see the module docstring."""
    check_files(paths)
    settings = settings or PublisherSettings()
    stats = RawFileStats([str(path) for path in paths])

    def lines() -> Iterator[RawPayload]:
        for path in paths:
            with _open_bytes(path) as handle:
                for payload in read_lines(handle, str(path), settings.max_record_bytes):
                    stats.lines_read += 1
                    if payload.size == 0:
                        stats.empty_lines += 1
                        continue
                    yield payload

    stats.outcome = await put_payloads(
        client, stream_name, lines(), settings=settings, deadline_seconds=deadline_seconds
    )
    LOG.info("raw records: %s", json.dumps(stats.as_dict()))
    return stats
