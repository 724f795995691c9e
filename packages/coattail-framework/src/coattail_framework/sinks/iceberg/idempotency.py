"""Exactly once per (writer, checkpoint, batch id): what a commit records and when a batch is skipped (ADR-028).

Pure functions over snapshot summaries, shared by both writers (``pyiceberg_writer``,
``spark_writer``); they run on the Spark driver, inside ``foreachBatch``. Every snapshot a
writer commits records ``coattail.writer`` (the streaming query's name), ``coattail.batch-id``
and, once the writer's checkpoint is known, ``coattail.checkpoint-id``. A batch is skipped
when the latest snapshot of the same writer and the same checkpoint already holds a batch
id at or above it.

Example::

    >>> summaries = [{"coattail.writer": "ingest", "coattail.batch-id": "4", "coattail.checkpoint-id": "c1"}]
    >>> latest_batch_id(summaries, "ingest", CheckpointIdentity("c1"))
    4
    >>> latest_batch_id(summaries, "ingest", CheckpointIdentity("c2")) is None
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from coattail_framework.sinks.retention import WRITER_PROPERTY

BATCH_ID_PROPERTY = "coattail.batch-id"
CHECKPOINT_ID_PROPERTY = "coattail.checkpoint-id"
"""Snapshot summary key: the id of the checkpoint (``CheckpointIdentity``) whose batch the snapshot holds."""
SUMMARY_KEYS = (WRITER_PROPERTY, BATCH_ID_PROPERTY, CHECKPOINT_ID_PROPERTY)
"""The snapshot summary keys the exactly-once check reads."""


@dataclass(frozen=True)
class CheckpointIdentity:
    """Who a writer's batch ids belong to: one streaming checkpoint (its batch ids start at 0).

    ``checkpoint_id`` is a UUID minted when the checkpoint is created (``pipeline.checkpoints``).
    ``legacy`` is true for a checkpoint that had already run batches when it got its id
    (written by a job before checkpoint ids): the writer's snapshots without a checkpoint id
    are then its own.
    """

    checkpoint_id: str
    legacy: bool = False

    def owns(self, snapshot_checkpoint: str | None) -> bool:
        """True when a snapshot recording ``snapshot_checkpoint`` (None: none) holds a batch of this checkpoint."""
        if snapshot_checkpoint is None:
            return self.legacy
        return snapshot_checkpoint == self.checkpoint_id


def latest_batch_id(
    summaries: Sequence[Mapping[str, str | None]], writer: str, checkpoint: CheckpointIdentity | None = None
) -> int | None:
    """The batch id of the latest snapshot of ``writer`` and ``checkpoint``, given snapshot summaries oldest first.

    ``checkpoint`` None matches every snapshot of ``writer`` (a writer without checkpoint identity).
    """
    for summary in reversed(summaries):
        batch_id = summary.get(BATCH_ID_PROPERTY)
        if summary.get(WRITER_PROPERTY) != writer or batch_id is None:
            continue
        if checkpoint is None or checkpoint.owns(summary.get(CHECKPOINT_ID_PROPERTY)):
            return int(batch_id)
    return None


def already_committed(
    summaries: Sequence[Mapping[str, str | None]], writer: str, batch_id: int, checkpoint: CheckpointIdentity | None
) -> bool:
    """True when ``writer`` on ``checkpoint`` already committed ``batch_id`` or a later batch (skip it)."""
    committed = latest_batch_id(summaries, writer, checkpoint)
    return committed is not None and committed >= batch_id


def checkpoint_batches(summaries: Sequence[Mapping[str, str | None]], writer: str) -> dict[str | None, int]:
    """Each checkpoint id that committed for ``writer`` (None: snapshots without one) -> its latest batch id.

    ``summaries`` oldest first; insertion order of the result is the order of each id's first commit.
    """
    batches: dict[str | None, int] = {}
    for summary in summaries:
        batch_id = summary.get(BATCH_ID_PROPERTY)
        if summary.get(WRITER_PROPERTY) == writer and batch_id is not None:
            batches[summary.get(CHECKPOINT_ID_PROPERTY)] = int(batch_id)
    return batches


def snapshot_properties(writer: str, batch_id: int, checkpoint: CheckpointIdentity | None) -> dict[str, str]:
    """The summary properties of ``writer``'s commit of ``batch_id`` (with the checkpoint id when known)."""
    properties = {WRITER_PROPERTY: writer, BATCH_ID_PROPERTY: str(batch_id)}
    if checkpoint is not None:
        properties[CHECKPOINT_ID_PROPERTY] = checkpoint.checkpoint_id
    return properties
