"""Drain completeness: a drain that ends with records it was asked to read still unread fails.

    check = check_drain(client, "coattail-trades", {"ingest": DrainedQuery(end_positions(p), 42)},
                        started_at=started, default_position="TRIM_HORIZON")
    check.raise_if_incomplete()   # DrainIncompleteError names the stream, shards and counts

Runs on the Spark driver after the drain's queries stopped. A drain is asked to read every
record that arrived before it started (``started_at``, the driver's UTC clock, compared with
each record's ``ApproximateArrivalTimestamp``): for every listed shard, each query's end
position (its last batch's end offset, ``{shardId: position}`` as in ``kinesis.offsets``)
must leave no such record after it. Records that arrived after the drain started are not
required (a processing-time drain may read some of them; an ``availableNow`` run does not).
The check reads only what lies after each end position with the source's own reader
(``ShardFetcher``): one ``GetRecords`` per shard and distinct position when the drain is
complete. Only when it is not does it count every record each shard held, for the message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from coattail_framework.errors import CoattailError
from coattail_kinesis.limits import ShardPacer
from coattail_kinesis.offsets import SHARD_END, TRIM_HORIZON, Positions, at_timestamp, parse_positions
from coattail_kinesis.reader import MAX_THROTTLES_IN_A_ROW, ShardCursor, ShardFetcher
from coattail_kinesis.shards import Shard, list_shards

LOG = logging.getLogger(__name__)


class DrainIncompleteError(CoattailError, RuntimeError):
    """A drain ended with records that arrived before it started still unread.

    Also a ``RuntimeError``, like a failed query: ``coattail-stream-job run --drain`` exits 1 with it.
    """


class DrainTimeLimitError(CoattailError, RuntimeError):
    """A drain's time limit passed before its queries had read what the stream held; they were stopped.

    ``pending`` names the queries still running at the limit; ``rows_read`` is every query's
    total rows read when they stopped (the listener's totals).
    """

    def __init__(self, message: str, *, pending: Sequence[str], rows_read: Mapping[str, int]) -> None:
        super().__init__(message)
        self.pending = tuple(pending)
        self.rows_read = dict(rows_read)


@dataclass(frozen=True)
class DrainedQuery:
    """What one query of the drain reached: its end positions (None: no batch ran) and rows read."""

    end: Positions | None
    rows_read: int


@dataclass(frozen=True)
class QueryCompleteness:
    """One query's unread records per shard (records after its end position that arrived in time)."""

    name: str
    rows_read: int
    positions: dict[str, str]
    unread: dict[str, int]

    @property
    def unread_total(self) -> int:
        """Records this query left unread, in all shards."""
        return sum(self.unread.values())


@dataclass(frozen=True)
class DrainCheck:
    """The outcome of ``check_drain``: per query, what it left unread; ``held`` only when incomplete."""

    stream: str
    started_at: datetime
    queries: tuple[QueryCompleteness, ...]
    held: dict[str, int] | None = None
    """Records each shard held (within retention) that arrived before the drain started."""

    @property
    def complete(self) -> bool:
        """True when no query left a record it was asked to read."""
        return all(query.unread_total == 0 for query in self.queries)

    def describe(self) -> str:
        """One line per query: rows read and records left unread, per shard."""
        lines = []
        if self.held is not None:
            lines.append(
                f"the stream held {sum(self.held.values())} record(s) that arrived before the drain started "
                f"({_per_shard(self.held)})"
            )
        for query in self.queries:
            left = [f"{shard}: {n} after {query.positions[shard]}" for shard, n in sorted(query.unread.items()) if n]
            lines.append(
                f"query {query.name} read {query.rows_read} row(s) and left {query.unread_total} unread"
                + (f" ({', '.join(left)})" if left else "")
            )
        return "; ".join(lines)

    def raise_if_incomplete(self) -> None:
        """Raise ``DrainIncompleteError`` naming the stream, the shards and the counts."""
        if self.complete:
            return
        raise DrainIncompleteError(
            f"Kinesis stream {self.stream!r}: the drain ended with records unread that arrived before it started "
            f"({self.started_at.isoformat()}): {self.describe()}. Look above for errors of the Kinesis source "
            "(GetRecords failures, a shard skipped every trigger), then drain again: each query resumes from its "
            "checkpoint"
        )


def _per_shard(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{shard}: {n}" for shard, n in sorted(counts.items()))


def end_offset(progresses: Sequence[Any]) -> dict[str, Any] | None:
    """The source end offset (parsed JSON) of a query's last reported trigger (``recentProgress``); None before any.

    Accepts PySpark's ``StreamingQueryProgress`` (its ``json`` keeps the offset as JSON;
    ``progress["sources"]`` holds a Python ``repr`` of it) or a progress already parsed to a dict.
    """
    for progress in reversed(progresses):
        parsed = json.loads(progress.json) if hasattr(progress, "json") else progress
        sources = parsed.get("sources") or []
        if sources and sources[0].get("endOffset") is not None:
            offset = sources[0]["endOffset"]
            found: dict[str, Any] = json.loads(offset) if isinstance(offset, str) else offset
            return found
    return None


def end_positions(progresses: Sequence[Any]) -> Positions | None:
    """The Kinesis positions a query's last reported trigger ended at (see ``end_offset``), None before any."""
    offset = end_offset(progresses)
    return None if offset is None else parse_positions(offset)


def count_arrived(fetcher: ShardFetcher, shard: Shard, position: str, arrived_by: datetime) -> int:
    """Records of ``shard`` after ``position`` that arrived at or before ``arrived_by`` (UTC).

    Reads with ``GetRecords`` until it meets a later record or catches up, keeping only the
    count. Raises ``DrainIncompleteError`` when the shard stays throttled or cannot be read:
    a drain whose completeness cannot be shown does not pass.
    """
    if position == SHARD_END:
        return 0
    cursor = ShardCursor(shard=shard, base=position)
    count = 0
    while not (cursor.ended or cursor.exhausted):
        if fetcher.pacer.throttled_in_a_row(shard.shard_id) >= MAX_THROTTLES_IN_A_ROW:
            raise DrainIncompleteError(
                f"Kinesis stream {fetcher.stream_name!r}: shard {shard.shard_id} stayed throttled; "
                "the drain's completeness could not be checked"
            )
        try:
            fetcher.fill(cursor, None, wait=True, max_calls=1, arrived_by=arrived_by)
        except (ClientError, BotoCoreError, RuntimeError) as error:  # RuntimeError: the reader's own read errors
            raise DrainIncompleteError(
                f"Kinesis stream {fetcher.stream_name!r}: shard {shard.shard_id} could not be read after "
                f"{position} to check that the drain read it ({error}); the drain is not known to be complete"
            ) from error
        count += len(cursor.consume())
    return count


def check_drain(
    client: Any,
    stream: str,
    queries: Mapping[str, DrainedQuery],
    *,
    started_at: datetime,
    default_position: str | None,
    pacer: ShardPacer | None = None,
) -> DrainCheck:
    """What each query of a drain left unread of the records that arrived before ``started_at``.

    ``default_position`` is where a query starts a shard its offset does not name (the
    configured starting position as a ``kinesis.offsets`` position); None when nothing before
    the drain is required there (``LATEST``). Positions shared by several queries are read once.
    """
    fetcher = ShardFetcher(client, stream, pacer or ShardPacer(idle_interval_s=0.2))
    shards = list_shards(client, stream)
    counted: dict[tuple[str, str], int] = {}

    def unread(shard: Shard, position: str) -> int:
        key = (shard.shard_id, position)
        if key not in counted:
            counted[key] = count_arrived(fetcher, shard, position, started_at)
        return counted[key]

    results = []
    for name, drained in queries.items():
        reached = drained.end or {}
        positions: dict[str, str] = {}
        left: dict[str, int] = {}
        for shard in shards:
            position = reached.get(shard.shard_id, default_position)
            if position is not None:
                positions[shard.shard_id] = position
                left[shard.shard_id] = unread(shard, position)
        results.append(QueryCompleteness(name, drained.rows_read, positions, left))
    check = DrainCheck(stream, started_at, tuple(results))
    if check.complete:
        return check
    held = {shard.shard_id: unread(shard, TRIM_HORIZON) for shard in shards}
    return DrainCheck(stream, started_at, check.queries, held)


def starting_position(position: str, timestamp: datetime | None) -> str | None:
    """The ``kinesis.starting_position`` setting as a position (None for ``LATEST``)."""
    if position == "AT_TIMESTAMP" and timestamp is not None:
        return at_timestamp(timestamp)
    if position == "LATEST":
        return None
    return TRIM_HORIZON
