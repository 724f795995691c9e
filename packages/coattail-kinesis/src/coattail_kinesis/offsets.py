"""Offsets of the Kinesis source: how far each shard has been read.

An offset is a JSON object ``{shardId: position}`` that Spark writes to the checkpoint's
offset log. A position is a string, one of:

- a sequence number (decimal digits, e.g. ``"4959033827149025660855969253836"``): the last
  record read; reading resumes AFTER it. Compared as integers, never as strings.
- ``"TRIM_HORIZON"``: nothing read yet; start at the oldest record still retained.
- ``"AT_TIMESTAMP:<epoch milliseconds, UTC>"``: nothing read yet; start at the first record
  whose approximate arrival time is at or after that instant.
- ``"SHARD_END"``: the shard is closed and every record in it has been read.

Order: starting markers < sequence numbers < ``SHARD_END``. Pure functions, run in whichever
process calls them (the driver when planning, executors when replaying).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TRIM_HORIZON = "TRIM_HORIZON"
SHARD_END = "SHARD_END"
_AT_TIMESTAMP = "AT_TIMESTAMP:"

Positions = dict[str, str]
"""``{shardId: position}``: the offset Spark checkpoints."""


def at_timestamp(moment: datetime) -> str:
    """The starting marker for records that arrived at or after ``moment`` (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{_AT_TIMESTAMP}{int(moment.timestamp() * 1000)}"


def is_sequence(position: str) -> bool:
    """True when ``position`` is a sequence number (a record was read)."""
    return position.isdigit()


def is_start_marker(position: str) -> bool:
    """True when nothing has been read yet in the shard."""
    return position == TRIM_HORIZON or position.startswith(_AT_TIMESTAMP)


def order_key(position: str) -> tuple[int, int]:
    """A sort key: starting markers, then sequence numbers as integers, then ``SHARD_END``."""
    if is_sequence(position):
        return (1, int(position))
    if position == SHARD_END:
        return (2, 0)
    return (0, 0)


def is_after(position: str, other: str) -> bool:
    """True when ``position`` lies strictly after ``other`` in the same shard."""
    return order_key(position) > order_key(other)


def iterator_request(position: str) -> dict[str, Any]:
    """The ``GetShardIterator`` arguments that resume reading right after ``position``."""
    if is_sequence(position):
        return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": position}
    if position == TRIM_HORIZON:
        return {"ShardIteratorType": TRIM_HORIZON}
    if position.startswith(_AT_TIMESTAMP):
        millis = int(position[len(_AT_TIMESTAMP) :])
        return {
            "ShardIteratorType": "AT_TIMESTAMP",
            "Timestamp": datetime.fromtimestamp(millis / 1000, tz=UTC),
        }
    raise ValueError(f"shard position {position!r} has nothing left to read; no iterator can start there")


def validate_position(position: object) -> str:
    """``position`` if it is a well-formed position, else a ValueError naming it."""
    if isinstance(position, str) and (
        is_sequence(position)
        or position in (TRIM_HORIZON, SHARD_END)
        or (position.startswith(_AT_TIMESTAMP) and position[len(_AT_TIMESTAMP) :].isdigit())
    ):
        return position
    raise ValueError(
        f"invalid Kinesis shard position {position!r}: expected a sequence number, "
        f"'{TRIM_HORIZON}', '{_AT_TIMESTAMP}<epoch ms>' or '{SHARD_END}'"
    )


def parse_positions(offset: Mapping[str, object]) -> Positions:
    """The positions of an offset read back from Spark's offset log, validated.

    Raises ValueError naming the shard when a checkpoint holds something this source did not
    write (for instance a checkpoint of another source reused by mistake).
    """
    positions: Positions = {}
    for shard_id, position in offset.items():
        try:
            positions[str(shard_id)] = validate_position(position)
        except ValueError as error:
            raise ValueError(f"checkpointed offset of shard {shard_id}: {error}") from error
    return positions
