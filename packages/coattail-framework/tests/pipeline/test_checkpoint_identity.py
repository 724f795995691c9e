"""Checkpoint identity: a new or reset checkpoint neither skips nor silently duplicates Iceberg rows.

The identity files are read and written through the Spark session's Hadoop file system in
``tmp_path``; tables are pyiceberg tables on SQLite. The last test runs the whole job on the
local stack twice: a second job on new checkpoints is refused, then, accepted and started at a
timestamp after the first job's records, writes every batch of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as st

from coattail_devstack.localstack import LocalStack
from coattail_devstack.testing import trade
from coattail_devstack.testing.detectors import TradeCountDetector
from coattail_framework.config.model import CoattailConfig, IcebergConfig, StorageConfig
from coattail_framework.iceberg import open_catalog
from coattail_framework.pipeline import PipelineRunner
from coattail_framework.pipeline.checkpoints import (
    IDENTITY_FILE,
    CheckpointFileError,
    CheckpointFiles,
    NewCheckpointError,
    prepare_checkpoints,
    read_identity,
)
from coattail_framework.sinks import IcebergSink
from coattail_framework.sinks.iceberg import CheckpointIdentity

ROWS = st.StructType([st.StructField("id", st.LongType(), nullable=False)])
WRITERS = {"ingest": ["raw"], "detector-x": ["x_out", "shared"]}


def _config(tmp_path: Path, **storage: Any) -> CoattailConfig:
    return CoattailConfig(
        iceberg=IcebergConfig(uri=f"sqlite:///{tmp_path}/iceberg/catalog.db", warehouse=str(tmp_path / "warehouse")),
        storage=StorageConfig(raw_zone=str(tmp_path / "raw"), checkpoint_root=str(tmp_path / "checkpoints"), **storage),
    )


def _location(tmp_path: Path, writer: str) -> str:
    return str(tmp_path / "checkpoints" / writer)


def _prepare(spark: SparkSession, sink: IcebergSink, tmp_path: Path, *, accept: bool = False) -> dict[str, Any]:
    return prepare_checkpoints(
        spark,
        sink,
        WRITERS,
        lambda writer: _location(tmp_path, writer),
        accept=accept,
        starting_position="TRIM_HORIZON",
    )


def _append(sink: IcebergSink, table: str, writer: str, batch_id: int, count: int) -> int:
    rows = pa.table({"id": list(range(count))})
    return sink.append(table, ROWS, (), rows, batch_id=batch_id, writer=writer).rows


def _ran_a_batch(tmp_path: Path, writer: str) -> None:
    """What Spark leaves in a checkpoint that planned batch 0."""
    offsets = tmp_path / "checkpoints" / writer / "offsets"
    offsets.mkdir(parents=True, exist_ok=True)
    (offsets / "0").write_text("v1\n{}\n")


def _stored(tmp_path: Path, writer: str) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads((tmp_path / "checkpoints" / writer / IDENTITY_FILE).read_text())
    return stored


def test_fresh_checkpoints_on_empty_tables_get_new_identities_and_keep_them(
    spark: SparkSession, tmp_path: Path
) -> None:
    sink = IcebergSink(_config(tmp_path))
    states = _prepare(spark, sink, tmp_path)

    assert sorted(states) == ["detector-x", "ingest"]
    assert all(state.fresh and not state.identity.legacy for state in states.values())
    ids = {writer: state.identity.checkpoint_id for writer, state in states.items()}
    assert len(set(ids.values())) == 2
    assert all(str(uuid.UUID(value)) == value for value in ids.values())
    assert {w: _stored(tmp_path, w)["checkpoint_id"] for w in WRITERS} == ids
    assert {w: sink.checkpoint_of(w) for w in WRITERS} == {w: CheckpointIdentity(i) for w, i in ids.items()}

    assert _append(sink, "raw", "ingest", 0, 3) == 3
    _ran_a_batch(tmp_path, "ingest")
    _ran_a_batch(tmp_path, "detector-x")
    again = _prepare(spark, IcebergSink(_config(tmp_path)), tmp_path)
    assert {w: (s.identity.checkpoint_id, s.fresh) for w, s in again.items()} == {w: (i, False) for w, i in ids.items()}


def test_a_checkpoint_that_ran_batches_before_checkpoint_ids_becomes_legacy(
    spark: SparkSession, tmp_path: Path
) -> None:
    old = IcebergSink(_config(tmp_path))  # the job before checkpoint ids: commits carry none
    assert [_append(old, "raw", "ingest", batch, 2) for batch in range(3)] == [2, 2, 2]
    _ran_a_batch(tmp_path, "ingest")
    _ran_a_batch(tmp_path, "detector-x")

    sink = IcebergSink(_config(tmp_path))
    states = _prepare(spark, sink, tmp_path)

    assert {w: (s.fresh, s.identity.legacy) for w, s in states.items()} == {w: (False, True) for w in WRITERS}
    assert _stored(tmp_path, "ingest")["legacy"] is True
    assert _append(sink, "raw", "ingest", 2, 2) == 0  # the replay of its last batch is still skipped
    assert _append(sink, "raw", "ingest", 3, 5) == 5
    assert len(open_catalog(sink.iceberg, sink._config.aws).load_table(("coattail", "raw")).scan().to_arrow()) == 11


def test_a_fresh_checkpoint_on_written_tables_is_refused_naming_table_writer_and_both_ids(
    spark: SparkSession, tmp_path: Path
) -> None:
    first = IcebergSink(_config(tmp_path))
    old_ids = {w: s.identity.checkpoint_id for w, s in _prepare(spark, first, tmp_path).items()}
    assert _append(first, "raw", "ingest", 0, 4) == 4
    assert _append(first, "raw", "ingest", 1, 4) == 4
    assert _append(first, "shared", "detector-x", 0, 1) == 1
    assert _append(first, "shared", "detector-y", 5, 1) == 1  # another writer's commits do not count
    legacy = IcebergSink(_config(tmp_path))  # and a commit from before checkpoint ids
    assert _append(legacy, "x_out", "detector-x", 7, 2) == 2

    for writer in WRITERS:  # the checkpoints are lost
        for path in sorted((tmp_path / "checkpoints" / writer).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()

    sink = IcebergSink(_config(tmp_path))
    with pytest.raises(NewCheckpointError) as refused:
        _prepare(spark, sink, tmp_path)
    new_ids = {w: _stored(tmp_path, w)["checkpoint_id"] for w in WRITERS}
    message = str(refused.value)
    assert message.splitlines()[0] == (
        "refusing to start: new checkpoints meet Iceberg tables written from other checkpoints "
        "(storage.accept_new_checkpoints):"
    )
    assert message.splitlines()[1:4] == [
        f"- table 'raw' holds writer 'ingest''s commits up to batch 1 from checkpoint {old_ids['ingest']}; "
        f"the new checkpoint {_location(tmp_path, 'ingest')} has id {new_ids['ingest']}",
        f"- table 'x_out' holds writer 'detector-x''s commits up to batch 7 from a checkpoint from before checkpoint "
        f"ids (no coattail.checkpoint-id); the new checkpoint {_location(tmp_path, 'detector-x')} has id "
        f"{new_ids['detector-x']}",
        f"- table 'shared' holds writer 'detector-x''s commits up to batch 0 from checkpoint {old_ids['detector-x']}; "
        f"the new checkpoint {_location(tmp_path, 'detector-x')} has id {new_ids['detector-x']}",
    ]
    assert "kinesis.starting_position (TRIM_HORIZON)" in message
    assert (
        "TRIM_HORIZON re-reads every record the stream still holds and appends them again (duplicate rows)" in message
    )
    assert "restore the old checkpoint folder" in message
    assert "storage.accept_new_checkpoints: true (environment COATTAIL_STORAGE__ACCEPT_NEW_CHECKPOINTS=true)" in message
    assert sink.checkpoint_of("ingest") is None

    with pytest.raises(NewCheckpointError, match=new_ids["ingest"]):  # refused again, with the same new ids
        _prepare(spark, sink, tmp_path)

    accepted = _prepare(spark, sink, tmp_path, accept=True)
    assert {w: s.identity.checkpoint_id for w, s in accepted.items()} == new_ids
    assert [_append(sink, "raw", "ingest", batch, 3) for batch in range(3)] == [3, 3, 3]
    table = open_catalog(sink.iceberg, sink._config.aws).load_table(("coattail", "raw"))
    assert len(table.scan().to_arrow()) == 8 + 9
    assert sink.checkpoint_batches("raw", "ingest") == {old_ids["ingest"]: 1, new_ids["ingest"]: 2}


def test_a_checkpoint_reset_by_deleting_its_offsets_gets_a_new_identity(spark: SparkSession, tmp_path: Path) -> None:
    sink = IcebergSink(_config(tmp_path))
    first = _prepare(spark, sink, tmp_path)["ingest"].identity
    assert _append(sink, "raw", "ingest", 0, 2) == 2
    _ran_a_batch(tmp_path, "ingest")
    (tmp_path / "checkpoints" / "ingest" / "offsets" / "0").unlink()  # reset: the identity file stays

    with pytest.raises(NewCheckpointError, match=f"from checkpoint {first.checkpoint_id}; the new checkpoint"):
        _prepare(spark, IcebergSink(_config(tmp_path)), tmp_path)
    reset = IcebergSink(_config(tmp_path))
    second = _prepare(spark, reset, tmp_path, accept=True)["ingest"].identity
    assert second.checkpoint_id != first.checkpoint_id
    assert _append(reset, "raw", "ingest", 0, 2) == 2  # batch 0 of the reset checkpoint is written


def test_an_unreadable_identity_file_is_an_error_naming_it(spark: SparkSession, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints" / "ingest"
    folder.mkdir(parents=True)
    (folder / IDENTITY_FILE).write_text('{"checkpoint_id": "not-a-uuid", "legacy": false}')

    with pytest.raises(CheckpointFileError, match=rf"{folder / IDENTITY_FILE} is not a checkpoint identity"):
        read_identity(CheckpointFiles(spark), str(folder))


T0 = datetime(2024, 8, 8, 23, 54, 0, tzinfo=UTC)
STACK_CONFIG = CoattailConfig.model_validate(
    {
        "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}},
        "exchanges": {"binance": {"connector": "binance"}},
        "kinesis": {"shard_count": 1, "min_poll_interval_ms": 200, "idle_poll_interval_ms": 500},
        "metrics": {"enabled": False},
        # 2024 trades put today: judged against their ingestion clock, as in a replay.
        "quality": {"max_event_age_seconds": 300, "event_time_reference": "ingestion"},
    }
)


@pytest.fixture
def stack(named_stack: Any) -> Iterator[LocalStack]:
    with named_stack(STACK_CONFIG, "checkpoints") as running:
        yield running


def _put(stack: LocalStack, first_id: int, count: int) -> None:
    kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=stack.endpoint_url)
    records = [
        {
            "Data": trade(T0 + timedelta(seconds=i), 60_000 + i, "0.5", trade_id=first_id + i).to_json().encode(),
            "PartitionKey": "BTCUSDT",
        }
        for i in range(count)
    ]
    assert kinesis.put_records(StreamName=stack.config.kinesis.stream_name, Records=records)["FailedRecordCount"] == 0


def _run(spark: SparkSession, config: CoattailConfig) -> PipelineRunner:
    detector = TradeCountDetector()
    detector.configure(config)
    runner = PipelineRunner(spark, config, detectors=[detector])
    runner.run(drain=True, handle_signals=False)
    return runner


def test_the_job_on_new_checkpoints_is_refused_then_accepted_writes_all_its_batches(
    spark: SparkSession, stack: LocalStack
) -> None:
    _put(stack, 1, 5)
    _run(spark, stack.config)
    catalog = open_catalog(stack.config.iceberg, stack.config.aws)
    raw = catalog.load_table((stack.config.iceberg.database, "raw_trades"))
    assert len(raw.scan().to_arrow()) == 5
    after_first = datetime.now(UTC)
    _put(stack, 100, 4)

    moved = stack.config.storage.checkpoint_root + "-new"
    config = stack.config.model_copy(
        update={
            "storage": stack.config.storage.model_copy(update={"checkpoint_root": moved}),
            "kinesis": stack.config.kinesis.model_copy(
                update={"starting_position": "AT_TIMESTAMP", "starting_timestamp": after_first}
            ),
        }
    )
    detector = TradeCountDetector()
    detector.configure(config)
    refused = PipelineRunner(spark, config, detectors=[detector])
    with pytest.raises(NewCheckpointError, match=r"table 'raw_trades' holds writer 'ingest''s commits up to batch"):
        refused.start(drain=True)
    assert refused.queries == []

    accepted = config.model_copy(update={"storage": config.storage.model_copy(update={"accept_new_checkpoints": True})})
    runner = _run(spark, accepted)

    ids = sorted(row["event_id"] for row in raw.refresh().scan().to_arrow().to_pylist())
    assert ids == sorted(
        [f"binance:BTCUSDT:{i}" for i in range(1, 6)] + [f"binance:BTCUSDT:{i}" for i in range(100, 104)]
    )
    assert runner.stats.table_rows["raw_trades"] == 4
    new_id = runner.router.sink.checkpoint_of("ingest")
    assert new_id is not None
    batches = runner.router.sink.checkpoint_batches("raw_trades", "ingest")
    assert list(batches)[1] == new_id.checkpoint_id
    assert len(batches) == 2
