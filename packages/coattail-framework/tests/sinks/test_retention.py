"""Snapshot expiry: which snapshots stay (pure selection) and what a real pyiceberg table looks like after it."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyspark.sql import types as st

from coattail_framework.config.model import CoattailConfig, IcebergMaintenanceConfig, SnapshotRetention
from coattail_framework.iceberg import open_catalog
from coattail_framework.partitioning import day
from coattail_framework.sinks import IcebergSink
from coattail_framework.sinks.iceberg import maintenance as maintenance_module
from coattail_framework.sinks.retention import (
    MS_PER_MINUTE,
    SnapshotFacts,
    expire_table_snapshots,
    snapshots_to_expire,
)

ORDERS = st.StructType(
    [
        st.StructField("symbol", st.StringType(), nullable=False),
        st.StructField("trade_time", st.TimestampType(), nullable=False),
        st.StructField("notional", st.DoubleType(), nullable=True),
    ]
)
PARTITION = (day("trade_time"),)
NOW_MS = 1_764_158_400_000  # 2025-11-26T12:00:00Z, on an hour boundary


def facts(snapshot_id: int, minutes_ago: float, writer: str | None = "w") -> SnapshotFacts:
    return SnapshotFacts(snapshot_id, snapshot_id, int(NOW_MS - minutes_ago * MS_PER_MINUTE), writer)


def test_keeps_snapshots_younger_than_keep_all_minutes() -> None:
    history = [facts(1, 30), facts(2, 11), facts(3, 9), facts(4, 1)]

    assert snapshots_to_expire(history, SnapshotRetention(keep_all_minutes=10), now_ms=NOW_MS) == [1, 2]


def test_keeps_each_writers_latest_and_the_current_snapshot_however_old() -> None:
    history = [
        facts(1, 900, "ingest"),
        facts(2, 800, "detector-whale"),
        facts(3, 700, "ingest"),
        facts(4, 600, None),  # e.g. a compaction: no writer
        facts(5, 500, "detector-whale"),
        facts(6, 400, None),
    ]

    expired = snapshots_to_expire(history, SnapshotRetention(keep_all_minutes=0), now_ms=NOW_MS)

    assert expired == [1, 2, 4]


def test_keeps_the_last_snapshot_of_each_utc_hour_within_keep_hourly_days() -> None:
    retention = SnapshotRetention(keep_all_minutes=60, keep_hourly_days=1)
    history = [
        facts(1, 25 * 60 + 5),  # older than a day: expired
        facts(2, 3 * 60 + 50),  # 08:10
        facts(3, 3 * 60 + 10),  # 08:50, last of 08:00-09:00
        facts(4, 2 * 60 + 30),  # 09:30, alone in its hour
        facts(5, 90),  # 10:30
        facts(6, 61),  # 10:59, last of 10:00-11:00 older than an hour
        facts(7, 59),  # kept: younger than keep_all_minutes
        facts(8, 1),
    ]

    assert snapshots_to_expire(history, retention, now_ms=NOW_MS) == [1, 2, 5]


def test_protected_snapshots_stay_and_an_empty_table_expires_nothing() -> None:
    history = [facts(1, 100), facts(2, 90), facts(3, 80)]

    assert snapshots_to_expire(history, SnapshotRetention(keep_all_minutes=0), now_ms=NOW_MS, protected={1}) == [2]
    assert snapshots_to_expire([], SnapshotRetention(keep_all_minutes=0), now_ms=NOW_MS) == []


def test_retention_for_a_table_falls_back_to_the_default() -> None:
    maintenance = IcebergMaintenanceConfig(table_retention={"raw_trades": SnapshotRetention(keep_hourly_days=7)})

    assert maintenance.retention_for("raw_trades") == SnapshotRetention(keep_all_minutes=5, keep_hourly_days=7)
    assert maintenance.retention_for("alerts") == SnapshotRetention(keep_all_minutes=5, keep_hourly_days=0)


def with_maintenance(config: CoattailConfig, **settings: Any) -> CoattailConfig:
    maintenance = config.iceberg.maintenance.model_copy(update=settings)
    return config.model_copy(update={"iceberg": config.iceberg.model_copy(update={"maintenance": maintenance})})


def batch(first: int, rows: int = 3) -> pa.Table:
    start = datetime(2024, 8, 8, 12, tzinfo=UTC)
    return pa.table(
        {
            "symbol": [f"S{n}" for n in range(first, first + rows)],
            "trade_time": [start + timedelta(seconds=n) for n in range(first, first + rows)],
            "notional": [float(n) for n in range(first, first + rows)],
        }
    )


def batch_ids(table: Any) -> list[str | None]:
    return [s.summary.get("coattail.batch-id") if s.summary else None for s in table.snapshots()]


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def test_expiry_keeps_every_row_and_each_writers_exactly_once_check(sink_config: CoattailConfig) -> None:
    config = with_maintenance(sink_config, enabled=False, retention=SnapshotRetention(keep_all_minutes=0))
    sink = IcebergSink(config)
    for batch_id in range(6):
        sink.append("orders", ORDERS, PARTITION, batch(10 * batch_id), batch_id=batch_id, writer="a")
        if batch_id < 4:
            sink.append("orders", ORDERS, PARTITION, batch(10 * batch_id + 5), batch_id=batch_id, writer="b")
    table = open_catalog(config.iceberg, config.aws).load_table(("coattail", "orders"))
    before = table.snapshots()
    latest = {"a": before[-1].snapshot_id, "b": before[-3].snapshot_id}

    result = sink.expire_snapshots("orders", now=datetime.now(UTC) + timedelta(minutes=1))

    table = table.refresh()
    assert (result.expired, result.kept, result.manifest_lists_deleted) == (8, 2, 8)
    assert sorted(s.snapshot_id for s in table.snapshots()) == sorted(latest.values())
    assert table.scan().to_arrow().num_rows == 30
    assert sorted(table.scan().to_arrow().column("notional").to_pylist()) == sorted(
        float(10 * b + offset + n) for b in range(6) for offset in (0, 5) if offset == 0 or b < 4 for n in range(3)
    )
    assert (sink.committed_batch("orders", "a"), sink.committed_batch("orders", "b")) == (5, 3)
    expired_lists = [s.manifest_list for s in before if s.snapshot_id not in latest.values()]
    assert [local_path(path).exists() for path in expired_lists] == [False] * 8
    assert all(local_path(s.manifest_list).exists() for s in table.snapshots())
    replayed = sink.append("orders", ORDERS, PARTITION, batch(50), batch_id=5, writer="a")
    assert (replayed.rows, replayed.skipped) == (0, True)
    assert sink.append("orders", ORDERS, PARTITION, batch(60), batch_id=6, writer="a").rows == 3
    assert table.refresh().scan().to_arrow().num_rows == 33


def appended(config: CoattailConfig, batches: int) -> Table:
    """``orders`` after ``batches`` appends of 3 rows by writer ``a`` through one sink."""
    sink = IcebergSink(config)
    for batch_id in range(batches):
        sink.append("orders", ORDERS, PARTITION, batch(10 * batch_id), batch_id=batch_id, writer="a")
    return open_catalog(config.iceberg, config.aws).load_table(("coattail", "orders"))


def test_an_append_expires_the_tables_snapshots_when_due(sink_config: CoattailConfig) -> None:
    config = with_maintenance(sink_config, expire_every_seconds=0, retention=SnapshotRetention(keep_all_minutes=0))

    table = appended(config, 5)

    assert len(table.snapshots()) == 1
    assert batch_ids(table) == ["4"]
    assert table.scan().to_arrow().num_rows == 15
    assert table.properties["commit.manifest-merge.enabled"] == "true"
    assert table.properties["write.metadata.delete-after-commit.enabled"] == "true"


def test_expiry_waits_expire_every_seconds_between_checks_of_a_table(sink_config: CoattailConfig) -> None:
    config = with_maintenance(sink_config, expire_every_seconds=3600, retention=SnapshotRetention(keep_all_minutes=0))

    table = appended(config, 4)

    assert len(table.snapshots()) == 4  # checked after the first append only, when it was alone


def test_a_failed_expiry_leaves_the_append_committed_and_is_retried_next_time(
    sink_config: CoattailConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = with_maintenance(sink_config, expire_every_seconds=3600, retention=SnapshotRetention(keep_all_minutes=0))
    sink = IcebergSink(config)
    real = expire_table_snapshots
    calls: list[str] = []

    def flaky(table: Any, retention: SnapshotRetention, *, now: datetime) -> Any:
        calls.append("call")
        if len(calls) == 1:
            raise OSError("warehouse unreachable")
        if len(calls) == 2:
            raise CommitFailedException("a concurrent append won")
        return real(table, retention, now=now)

    monkeypatch.setattr(maintenance_module, "expire_table_snapshots", flaky)
    with caplog.at_level(logging.WARNING, logger=maintenance_module.__name__):
        first = sink.append("orders", ORDERS, PARTITION, batch(0), batch_id=0, writer="a")
    second = sink.append("orders", ORDERS, PARTITION, batch(10), batch_id=1, writer="a")

    assert (first.rows, second.rows) == (3, 3)
    assert "snapshot expiry failed (warehouse unreachable); retried after the next append" in caplog.text
    assert len(calls) == 3  # the failure, then the lost race and its retry after the second append
    table = open_catalog(config.iceberg, config.aws).load_table(("coattail", "orders"))
    assert batch_ids(table) == ["1"]
    assert table.scan().to_arrow().num_rows == 6


def test_metadata_files_are_bounded_by_previous_versions_max(sink_config: CoattailConfig) -> None:
    config = with_maintenance(sink_config, enabled=False)
    sink = IcebergSink(config)
    catalog = open_catalog(config.iceberg, config.aws)
    sink.append("orders", ORDERS, PARTITION, batch(0), batch_id=0, writer="a")
    table = catalog.load_table(("coattail", "orders"))
    table.transaction().set_properties({"write.metadata.previous-versions-max": "3"}).commit_transaction()

    for batch_id in range(1, 8):
        sink.append("orders", ORDERS, PARTITION, batch(10 * batch_id), batch_id=batch_id, writer="a")

    folder = local_path(catalog.load_table(("coattail", "orders")).metadata_location).parent
    assert len([name for name in os.listdir(folder) if name.endswith(".metadata.json")]) == 4
