"""Checkpoint identity: each streaming checkpoint's UUID, and the start-up check of new checkpoints.

Runs on the Spark driver, in ``PipelineRunner.start`` before any query starts. Spark numbers
a query's micro-batches from 0 in each checkpoint, and the Iceberg sink skips a batch its
writer already committed (``sinks.iceberg``), so the sink must know which checkpoint a batch
id belongs to: otherwise a new or reset checkpoint's batches 0..N would be skipped as
"already committed" by the old one, and their rows lost (issue 20).

Each checkpoint folder (``storage.checkpoint_root/<query name>``, local or ``s3://``) holds
``coattail-checkpoint.json`` = ``{"checkpoint_id": <uuid4>, "legacy": <bool>, "created_at":
<ISO 8601 UTC>}``, read and written with Hadoop's ``FileSystem`` of the Spark session (the same
file system Spark writes the checkpoint with; the file is written to a temporary name and
renamed). Spark ignores it. Per Iceberg writer (query) at start:

- The checkpoint has run batches (Spark's ``offsets/`` log has an entry) and has the file:
  its id is used; nothing is checked.
- It has run batches but no file: it was written by a job before checkpoint ids. It gets a
  new id with ``legacy: true``: the writer's snapshots without a checkpoint id are its own,
  so its replay after an upgrade is still skipped.
- It has run no batch (new, or reset by deleting its folder or its ``offsets/``): it is
  *fresh*. It gets a new id (or keeps the one a refused start wrote, when no table holds a
  commit of it). When a table of the writer already holds the writer's commits from another
  checkpoint (or from before checkpoint ids), the start is refused with
  ``NewCheckpointError`` unless ``storage.accept_new_checkpoints`` is true; accepted, the new
  checkpoint's batches are all written, next to the old rows.

Example (driver)::

    states = prepare_checkpoints(spark, sink, {"ingest": ["raw_trades"]}, checkpoint_of, accept=False)
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from coattail_framework.errors import CoattailError
from coattail_framework.sinks.iceberg import CheckpointIdentity

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from coattail_framework.sinks.iceberg import IcebergSink

IDENTITY_FILE = "coattail-checkpoint.json"
"""The file in each checkpoint folder that holds its ``CheckpointIdentity``."""
ACCEPT_KEY = "storage.accept_new_checkpoints"
ACCEPT_VARIABLE = "COATTAIL_STORAGE__ACCEPT_NEW_CHECKPOINTS"

LOG = logging.getLogger(__name__)


class NewCheckpointError(CoattailError):
    """A fresh checkpoint would write to tables that hold its writer's commits from another checkpoint."""


class CheckpointFileError(CoattailError):
    """A checkpoint's identity file cannot be read or written."""


@dataclass(frozen=True)
class CheckpointState:
    """One writer's checkpoint at start: its folder, identity, and whether it had run no batch yet."""

    writer: str
    location: str
    identity: CheckpointIdentity
    fresh: bool


@dataclass(frozen=True)
class ForeignCommits:
    """Commits of ``writer`` in ``table`` from a checkpoint other than the fresh one at ``location``.

    ``checkpoint_id`` None: commits written before checkpoint ids. ``batch_id``: that
    checkpoint's latest committed batch.
    """

    table: str
    writer: str
    location: str
    new_checkpoint_id: str
    checkpoint_id: str | None
    batch_id: int

    def describe(self) -> str:
        """One line naming the table, the writer and both checkpoints."""
        old = (
            f"checkpoint {self.checkpoint_id}"
            if self.checkpoint_id is not None
            else "a checkpoint from before checkpoint ids (no coattail.checkpoint-id)"
        )
        return (
            f"table {self.table!r} holds writer {self.writer!r}'s commits up to batch {self.batch_id} from {old}; "
            f"the new checkpoint {self.location} has id {self.new_checkpoint_id}"
        )


class CheckpointFiles:
    """Reads and writes checkpoint folders with the Hadoop ``FileSystem`` of a Spark session (driver, py4j)."""

    def __init__(self, spark: SparkSession) -> None:
        jvm: Any = getattr(spark, "_jvm", None)
        jsc: Any = getattr(spark, "_jsc", None)
        if jvm is None or jsc is None:
            raise CheckpointFileError("checkpoint identity needs a classic (JVM) SparkSession on the driver")
        self._jvm = jvm
        self._conf = jsc.hadoopConfiguration()

    def _path(self, location: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(location)
        return path.getFileSystem(self._conf), path

    def has_batches(self, location: str) -> bool:
        """True when Spark's offset log under ``location`` has an entry (a batch was planned)."""
        fs, offsets = self._path(f"{location.rstrip('/')}/offsets")
        if not fs.exists(offsets):
            return False
        return any(status.getPath().getName().isdigit() for status in fs.listStatus(offsets))

    def read_text(self, location: str) -> str | None:
        """The UTF-8 text of the file at ``location``; None when it does not exist."""
        fs, path = self._path(location)
        if not fs.exists(path):
            return None
        stream = fs.open(path)
        try:
            data: bytes = stream.readAllBytes()
        finally:
            stream.close()
        return data.decode("utf-8")

    def write_text(self, location: str, text: str) -> None:
        """Replace the file at ``location`` with ``text`` (temporary file, then rename; folders created)."""
        fs, path = self._path(location)
        temporary = self._jvm.org.apache.hadoop.fs.Path(path.getParent(), f".{path.getName()}.{uuid.uuid4().hex}.tmp")
        fs.mkdirs(path.getParent())
        stream = fs.create(temporary, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        if fs.exists(path):
            fs.delete(path, False)
        if not fs.rename(temporary, path):
            fs.delete(temporary, False)
            raise CheckpointFileError(f"could not rename {temporary} to {location}")


def read_identity(files: CheckpointFiles, location: str) -> CheckpointIdentity | None:
    """The identity stored in the checkpoint folder ``location``; None without one."""
    path = f"{location.rstrip('/')}/{IDENTITY_FILE}"
    text = files.read_text(path)
    if text is None:
        return None
    try:
        stored = json.loads(text)
        return CheckpointIdentity(str(uuid.UUID(str(stored["checkpoint_id"]))), legacy=bool(stored["legacy"]))
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointFileError(
            f"{path} is not a checkpoint identity ({error}); it is written by the stream job: restore it, or delete "
            "the whole checkpoint folder to start a new checkpoint"
        ) from error


def write_identity(files: CheckpointFiles, location: str, identity: CheckpointIdentity) -> None:
    """Store ``identity`` in the checkpoint folder ``location``."""
    text = json.dumps(
        {
            "checkpoint_id": identity.checkpoint_id,
            "legacy": identity.legacy,
            "created_at": datetime.now(UTC).isoformat(),
        }
    )
    files.write_text(f"{location.rstrip('/')}/{IDENTITY_FILE}", text)


def new_identity(*, legacy: bool = False) -> CheckpointIdentity:
    """A checkpoint identity with a new random UUID."""
    return CheckpointIdentity(str(uuid.uuid4()), legacy=legacy)


def resolve_checkpoint(
    files: CheckpointFiles, sink: IcebergSink, writer: str, tables: Sequence[str], location: str
) -> tuple[CheckpointState, list[ForeignCommits]]:
    """``writer``'s checkpoint at ``location`` (identity stored if new) and, if fresh, the tables' foreign commits."""
    stored = read_identity(files, location)
    if files.has_batches(location):
        if stored is not None:
            return CheckpointState(writer, location, stored, fresh=False), []
        identity = new_identity(legacy=True)
        write_identity(files, location, identity)
        LOG.info(
            "checkpoint %s predates checkpoint ids: it is %s, and %s's snapshots without one are its own",
            location,
            identity.checkpoint_id,
            writer,
        )
        return CheckpointState(writer, location, identity, fresh=False), []
    committed = {table: sink.checkpoint_batches(table, writer) for table in tables}
    reusable = (
        stored is not None
        and not stored.legacy
        and not any(stored.checkpoint_id in batches for batches in committed.values())
    )
    identity = stored if reusable and stored is not None else new_identity()
    if identity != stored:
        write_identity(files, location, identity)
    foreign = [
        ForeignCommits(table, writer, location, identity.checkpoint_id, checkpoint_id, batch_id)
        for table, batches in committed.items()
        for checkpoint_id, batch_id in batches.items()
        if checkpoint_id != identity.checkpoint_id
    ]
    return CheckpointState(writer, location, identity, fresh=True), foreign


def prepare_checkpoints(
    spark: SparkSession,
    sink: IcebergSink,
    writers: Mapping[str, Sequence[str]],
    checkpoint_of: Callable[[str], str],
    *,
    accept: bool,
    starting_position: str,
) -> dict[str, CheckpointState]:
    """Resolve each writer's checkpoint, register it with ``sink``; refuse fresh checkpoints on written tables.

    ``writers``: query name -> the Iceberg tables it appends to; ``checkpoint_of``: query
    name -> checkpoint folder. Raises ``NewCheckpointError`` (every conflict, one per line,
    and how to proceed) unless ``accept``; with ``accept`` the conflicts are logged as a
    warning and the new checkpoints write all their batches.
    """
    files = CheckpointFiles(spark)
    states: dict[str, CheckpointState] = {}
    conflicts: list[ForeignCommits] = []
    for writer, tables in writers.items():
        state, foreign = resolve_checkpoint(files, sink, writer, tables, checkpoint_of(writer))
        states[writer] = state
        conflicts.extend(foreign)
    if conflicts and not accept:
        raise NewCheckpointError(refusal_message(conflicts, starting_position))
    for conflict in conflicts:
        LOG.warning("%s: accepted (%s), its batches are written from batch 0", conflict.describe(), ACCEPT_KEY)
    for writer, state in states.items():
        sink.use_checkpoint(writer, state.identity)
    return states


def refusal_message(conflicts: Sequence[ForeignCommits], starting_position: str) -> str:
    """The ``NewCheckpointError`` text: each conflict, then what a new checkpoint re-reads and how to proceed."""
    lines = [f"refusing to start: new checkpoints meet Iceberg tables written from other checkpoints ({ACCEPT_KEY}):"]
    lines += [f"- {conflict.describe()}" for conflict in conflicts]
    lines.append(
        f"A new checkpoint reads the stream from kinesis.starting_position ({starting_position}), not from where the "
        "old checkpoint stopped: TRIM_HORIZON re-reads every record the stream still holds and appends them again "
        "(duplicate rows); LATEST skips what arrived since the old checkpoint stopped; AT_TIMESTAMP starts at "
        "kinesis.starting_timestamp."
    )
    lines.append(
        "To proceed: restore the old checkpoint folder if it was lost or moved (storage.checkpoint_root), or accept "
        f"the new checkpoints for this start with {ACCEPT_KEY}: true (environment {ACCEPT_VARIABLE}=true); "
        "once a checkpoint has run a batch it is no longer new."
    )
    return "\n".join(lines)
