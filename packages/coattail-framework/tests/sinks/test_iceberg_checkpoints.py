"""The sink's exactly-once check is per (writer, checkpoint): a new checkpoint's batch 0 is not an old batch 0.

pyiceberg appends go to real tables on SQLite under ``tmp_path`` and are read back; the
``spark`` writer's decision and snapshot properties are checked at the function level (no
Iceberg Spark runtime here): its snapshot reads go through ``spark_snapshot_summaries`` over
a frame shaped like Iceberg's ``snapshots`` metadata table, its appends are recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.table import Table
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as st

from coattail_framework.config.model import CoattailConfig, IcebergConfig, StorageConfig
from coattail_framework.iceberg import open_catalog
from coattail_framework.sinks import IcebergSink
from coattail_framework.sinks.iceberg import (
    BATCH_ID_PROPERTY,
    CHECKPOINT_ID_PROPERTY,
    CheckpointIdentity,
    SparkIcebergWriter,
    checkpoint_batches,
    latest_batch_id,
    spark_snapshot_summaries,
)
from coattail_framework.sinks.retention import WRITER_PROPERTY

ROWS = st.StructType(
    [st.StructField("id", st.LongType(), nullable=False), st.StructField("batch", st.StringType(), nullable=True)]
)
OLD = CheckpointIdentity("0b6c1f4e-7a4e-4d6f-9c57-1d0c3f2f8a01")
NEW = CheckpointIdentity("5f1e2d3c-4b5a-4968-8776-655443322110")
LEGACY = CheckpointIdentity("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", legacy=True)
WRITER = "ingest"


@pytest.fixture
def sink(tmp_path: Path) -> IcebergSink:
    return IcebergSink(_config(tmp_path))


def _config(tmp_path: Path, **iceberg: Any) -> CoattailConfig:
    return CoattailConfig(
        iceberg=IcebergConfig(
            uri=f"sqlite:///{tmp_path}/iceberg/catalog.db", warehouse=str(tmp_path / "warehouse"), **iceberg
        ),
        storage=StorageConfig(raw_zone=str(tmp_path / "raw"), checkpoint_root=str(tmp_path / "checkpoints")),
    )


def _rows(label: str, count: int, first: int = 0) -> pa.Table:
    return pa.table({"id": list(range(first, first + count)), "batch": [label] * count})


def _write(sink: IcebergSink, batch_id: int, label: str, count: int, first: int = 0) -> tuple[int, bool]:
    outcome = sink.append("t", ROWS, (), _rows(label, count, first), batch_id=batch_id, writer=WRITER)
    return outcome.rows, outcome.skipped


def _table(sink: IcebergSink) -> Table:
    return open_catalog(sink.iceberg, sink._config.aws).load_table((sink.iceberg.database, "t"))


def _labels(sink: IcebergSink) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in _table(sink).scan().to_arrow().to_pylist():
        counts[row["batch"]] = counts.get(row["batch"], 0) + 1
    return dict(sorted(counts.items()))


def _summaries(sink: IcebergSink) -> list[tuple[str | None, str | None, str | None]]:
    return [
        (s.summary.get(WRITER_PROPERTY), s.summary.get(BATCH_ID_PROPERTY), s.summary.get(CHECKPOINT_ID_PROPERTY))
        for s in sorted(_table(sink).snapshots(), key=lambda snapshot: snapshot.sequence_number or 0)
        if s.summary is not None
    ]


def test_a_new_checkpoint_on_a_written_table_writes_every_batch_from_zero(sink: IcebergSink) -> None:
    sink.use_checkpoint(WRITER, OLD)
    assert [_write(sink, batch, f"old-{batch}", 3, 10 * batch) for batch in range(3)] == [(3, False)] * 3

    sink.use_checkpoint(WRITER, NEW)
    written = [_write(sink, batch, f"new-{batch}", 2 + batch, 100 + 10 * batch) for batch in range(4)]

    assert written == [(2, False), (3, False), (4, False), (5, False)]
    assert _labels(sink) == {
        "new-0": 2,
        "new-1": 3,
        "new-2": 4,
        "new-3": 5,
        "old-0": 3,
        "old-1": 3,
        "old-2": 3,
    }
    assert len(_table(sink).scan().to_arrow()) == 23
    assert _summaries(sink) == [(WRITER, str(b), OLD.checkpoint_id) for b in range(3)] + [
        (WRITER, str(b), NEW.checkpoint_id) for b in range(4)
    ]
    assert sink.committed_batch("t", WRITER) == 3
    assert sink.checkpoint_batches("t", WRITER) == {OLD.checkpoint_id: 2, NEW.checkpoint_id: 3}


def test_a_replay_on_the_same_checkpoint_is_skipped_after_another_checkpoint_wrote(sink: IcebergSink) -> None:
    sink.use_checkpoint(WRITER, OLD)
    _write(sink, 0, "old-0", 3)
    _write(sink, 1, "old-1", 3, 10)
    sink.use_checkpoint(WRITER, NEW)
    _write(sink, 0, "new-0", 2, 100)

    assert _write(sink, 0, "new-0", 2, 100) == (0, True)
    sink.use_checkpoint(WRITER, OLD)
    assert _write(sink, 1, "old-1", 3, 10) == (0, True)
    assert _write(sink, 0, "old-0", 3) == (0, True)
    assert _write(sink, 2, "old-2", 1, 20) == (1, False)

    assert _labels(sink) == {"new-0": 2, "old-0": 3, "old-1": 3, "old-2": 1}


def test_legacy_snapshots_belong_to_a_legacy_checkpoint_only(tmp_path: Path) -> None:
    before = IcebergSink(_config(tmp_path))  # a writer without checkpoint identity: commits carry none
    assert [_write(before, batch, f"legacy-{batch}", 2, 10 * batch) for batch in range(3)] == [(2, False)] * 3
    assert _summaries(before) == [(WRITER, str(b), None) for b in range(3)]
    assert before.committed_batch("t", WRITER) == 2

    upgraded = IcebergSink(_config(tmp_path))
    upgraded.use_checkpoint(WRITER, LEGACY)
    assert _write(upgraded, 2, "legacy-2", 2, 20) == (0, True)
    assert _write(upgraded, 3, "upgraded-3", 1, 30) == (1, False)
    assert _write(upgraded, 3, "upgraded-3", 1, 30) == (0, True)

    fresh = IcebergSink(_config(tmp_path))
    fresh.use_checkpoint(WRITER, NEW)
    assert fresh.committed_batch("t", WRITER) is None
    assert [_write(fresh, batch, f"fresh-{batch}", 1, 100 + batch) for batch in range(2)] == [(1, False)] * 2

    assert _labels(fresh) == {"fresh-0": 1, "fresh-1": 1, "legacy-0": 2, "legacy-1": 2, "legacy-2": 2, "upgraded-3": 1}
    assert fresh.checkpoint_batches("t", WRITER) == {None: 2, LEGACY.checkpoint_id: 3, NEW.checkpoint_id: 1}


def test_a_writer_without_checkpoint_compares_with_its_latest_snapshot_of_any_checkpoint() -> None:
    summaries = [
        {WRITER_PROPERTY: WRITER, BATCH_ID_PROPERTY: "7", CHECKPOINT_ID_PROPERTY: None},
        {WRITER_PROPERTY: WRITER, BATCH_ID_PROPERTY: "4", CHECKPOINT_ID_PROPERTY: OLD.checkpoint_id},
        {WRITER_PROPERTY: "detector-whale", BATCH_ID_PROPERTY: "9", CHECKPOINT_ID_PROPERTY: NEW.checkpoint_id},
        {WRITER_PROPERTY: None, BATCH_ID_PROPERTY: None, CHECKPOINT_ID_PROPERTY: None},
    ]
    assert latest_batch_id(summaries, WRITER) == 4
    assert latest_batch_id(summaries, WRITER, OLD) == 4
    assert latest_batch_id(summaries, WRITER, NEW) is None
    assert latest_batch_id(summaries, WRITER, LEGACY) == 7
    assert latest_batch_id(summaries, "detector-whale", NEW) == 9
    assert checkpoint_batches(summaries, WRITER) == {None: 7, OLD.checkpoint_id: 4}


SNAPSHOTS = st.StructType(
    [
        st.StructField("committed_at", st.TimestampType()),
        st.StructField("snapshot_id", st.LongType()),
        st.StructField("parent_id", st.LongType()),
        st.StructField("operation", st.StringType()),
        st.StructField("manifest_list", st.StringType()),
        st.StructField("summary", st.MapType(st.StringType(), st.StringType())),
    ]
)
"""The columns of Iceberg's ``<table>.snapshots`` metadata table in Spark (no sequence number)."""


class _RecordedAppend:
    """Stands in for ``DataFrame.writeTo(name)``: records options and rows as a snapshot on ``append()``."""

    def __init__(self, log: list[tuple[dict[str, str], int]], rows: DataFrame) -> None:
        self._log, self._rows, self._options = log, rows, {}

    def option(self, key: str, value: str) -> _RecordedAppend:
        self._options[key] = value
        return self

    def append(self) -> None:
        self._log.append((dict(self._options), self._rows.count()))


def test_the_spark_writer_records_and_checks_the_checkpoint_like_pyiceberg(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = IcebergSink(_config(tmp_path, writer="spark"))
    appended: list[tuple[dict[str, str], int]] = []
    t0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def snapshots() -> DataFrame:
        rows = [
            (
                t0 + timedelta(seconds=i),
                i,
                None,
                "append",
                f"m{i}",
                {k.removeprefix("snapshot-property."): v for k, v in o.items()},
            )
            for i, (o, _) in enumerate(appended)
        ]
        rows.append((t0 - timedelta(days=1), 99, None, "replace", "m", {"coattail.operation": "compact"}))
        return spark.createDataFrame(rows, SNAPSHOTS)

    monkeypatch.setattr(SparkIcebergWriter, "_ensure_table", lambda *args: None)
    monkeypatch.setattr(
        SparkIcebergWriter,
        "_summaries",
        staticmethod(lambda _spark, _name, writer: spark_snapshot_summaries(snapshots(), writer)),
    )
    # The session's concrete DataFrame class (PySpark 4: pyspark.sql.classic.dataframe.DataFrame).
    monkeypatch.setattr(type(spark.range(1)), "writeTo", lambda self, name: _RecordedAppend(appended, self))

    def write(batch_id: int, count: int) -> tuple[int, bool]:
        frame = spark.createDataFrame([(i, f"b{batch_id}") for i in range(count)], ROWS)
        outcome = sink.append("t", ROWS, (), frame, batch_id=batch_id, writer=WRITER)
        return outcome.rows, outcome.skipped

    sink.use_checkpoint(WRITER, OLD)
    assert [write(0, 3), write(1, 2), write(1, 2)] == [(3, False), (2, False), (0, True)]
    sink.use_checkpoint(WRITER, NEW)
    assert [write(0, 4), write(1, 1), write(0, 4)] == [(4, False), (1, False), (0, True)]

    properties = [
        (o[f"snapshot-property.{BATCH_ID_PROPERTY}"], o[f"snapshot-property.{CHECKPOINT_ID_PROPERTY}"])
        for o, _ in appended
    ]
    assert properties == [
        ("0", OLD.checkpoint_id),
        ("1", OLD.checkpoint_id),
        ("0", NEW.checkpoint_id),
        ("1", NEW.checkpoint_id),
    ]
    assert {o[f"snapshot-property.{WRITER_PROPERTY}"] for o, _ in appended} == {WRITER}
    assert [count for _, count in appended] == [3, 2, 4, 1]
    assert spark_snapshot_summaries(snapshots(), WRITER) == [
        {WRITER_PROPERTY: WRITER, BATCH_ID_PROPERTY: b, CHECKPOINT_ID_PROPERTY: c} for b, c in properties
    ]
