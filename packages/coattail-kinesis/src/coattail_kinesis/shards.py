"""Shard discovery and lineage: which shards exist and which may be read now.

After a reshard (split, merge, ``UpdateShardCount``) the parent shards are closed and their
children receive the new records. To keep each partition key's records in order, a child is
read only once every parent still listed has been read to its end (position ``SHARD_END``).
A closed shard that has been read to its end stays in the offset until Kinesis stops listing
it (retention expired); then it is dropped.

Runs on the driver (planning); ``list_shards`` calls ``ListShards`` (limit: 100 calls/s per
stream, so the reader calls it at most once per second).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from coattail_kinesis.offsets import SHARD_END, TRIM_HORIZON, Positions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """One shard as listed by ``ListShards``."""

    shard_id: str
    parents: tuple[str, ...]
    ending_sequence: str | None
    """Set once the shard is closed (split or merged): no record will be added any more."""

    @property
    def closed(self) -> bool:
        """True when the shard no longer receives records."""
        return self.ending_sequence is not None

    @classmethod
    def from_api(cls, shard: dict[str, Any]) -> Shard:
        """A shard from one entry of the ``ListShards`` response."""
        parents = tuple(p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p)
        return cls(
            shard_id=shard["ShardId"],
            parents=parents,
            ending_sequence=shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber"),
        )


def list_shards(client: Any, stream_name: str) -> list[Shard]:
    """Every shard of ``stream_name`` still within retention, open and closed, in API order."""
    shards: list[Shard] = []
    response = client.list_shards(StreamName=stream_name)
    shards.extend(Shard.from_api(s) for s in response["Shards"])
    while token := response.get("NextToken"):
        response = client.list_shards(NextToken=token)
        shards.extend(Shard.from_api(s) for s in response["Shards"])
    return shards


def reconcile(positions: Positions, shards: Iterable[Shard]) -> Positions:
    """``positions`` brought in line with the current listing.

    Shards new since the last listing (children of a reshard) start at ``TRIM_HORIZON``: all
    their records are new. Shards no longer listed are dropped; one that was not read to its
    end lost records to retention, which is logged as an error with the shard id.
    """
    listed = {shard.shard_id for shard in shards}
    updated: Positions = {}
    for shard_id, position in positions.items():
        if shard_id in listed:
            updated[shard_id] = position
        elif position != SHARD_END:
            logger.error(
                "Kinesis shard %s expired from the stream before it was read to its end (last position %s): "
                "its remaining records are lost; raise the stream's retention period or read faster",
                shard_id,
                position,
            )
    for shard_id in listed:
        updated.setdefault(shard_id, TRIM_HORIZON)
    return updated


def readable(positions: Positions, shards: Iterable[Shard]) -> list[Shard]:
    """Shards with records left to read whose listed parents have all been read to their end."""
    return [
        shard
        for shard in shards
        if positions.get(shard.shard_id, TRIM_HORIZON) != SHARD_END
        and all(positions.get(parent, SHARD_END) == SHARD_END for parent in shard.parents)
    ]
