"""Iceberg appends through the sink and the router, read back from real pyiceberg tables."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from pydantic import BaseModel
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as st

from coattail_framework.alerts import make_alert_id
from coattail_framework.config.model import CoattailConfig
from coattail_framework.detector import BaseDetector
from coattail_framework.iceberg import open_catalog, to_iceberg_schema
from coattail_framework.partitioning import PartitionField, day, identity
from coattail_framework.schemas import BASE_ALERT_RECORD, UNIFIED_TRADE_EVENT
from coattail_framework.sinks import (
    ALERTS_TABLE,
    AlertRouter,
    IcebergRuntimeMissingError,
    IcebergSink,
    IcebergWriteError,
)
from coattail_framework.sinks.iceberg import BATCH_ID_PROPERTY, to_table_arrow
from coattail_framework.sinks.retention import WRITER_PROPERTY

TAKER_ORDERS = st.StructType(
    [
        st.StructField("symbol", st.StringType(), nullable=False),
        st.StructField("trade_time", st.TimestampType(), nullable=False),
        st.StructField("taker_side", st.StringType(), nullable=True),
        st.StructField("notional", st.DoubleType(), nullable=True),
        st.StructField("fills", st.LongType(), nullable=True),
    ]
)


class NoSettings(BaseModel):
    pass


class TakerOrders(BaseDetector[NoSettings]):
    """Just enough detector to name an output table, schema and partition spec."""

    config_model = NoSettings
    module_id = "MOD-950"
    module_name = "taker-orders"
    alert_types: Sequence[str] = ("taker_order",)
    output_table = "taker_orders"
    output_schema = TAKER_ORDERS
    partition_spec: Sequence[PartitionField] = (day("trade_time"), identity("symbol"))

    def process(self, events: DataFrame) -> DataFrame:
        return events.select(
            "symbol",
            F.col("timestamp").alias("trade_time"),
            F.col("side").alias("taker_side"),
            F.col("quote_volume").alias("notional"),
            F.lit(1).cast("long").alias("fills"),
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        raise AssertionError("not used")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def orders(spark: SparkSession, *rows: tuple[str, str, str | None, float | None, int | None]) -> DataFrame:
    return spark.createDataFrame([(s, utc(t), side, n, f) for s, t, side, n, f in rows], TAKER_ORDERS)


def alerts(spark: SparkSession, module: str, *times: str) -> DataFrame:
    rows = [
        {
            "alert_id": make_alert_id(module, "binance", "BTCUSDT", at),
            "alert_type": "whale_trade",
            "module_id": module,
            "symbol": "BTCUSDT",
            "exchange": "binance",
            "severity": "high",
            "detected_at": utc(at),
            "message": f"{module} at {at}",
            "ttl_epoch": None,
            "details": json.dumps({"at": at}),
        }
        for at in times
    ]
    return spark.createDataFrame(rows, BASE_ALERT_RECORD)


def table(config: CoattailConfig, name: str) -> Table:
    return open_catalog(config.iceberg, config.aws).load_table((config.iceberg.database, name))


def rows_of(iceberg_table: Table, snapshot_id: int | None = None) -> list[dict[str, Any]]:
    return sorted(iceberg_table.scan(snapshot_id=snapshot_id).to_arrow().to_pylist(), key=lambda row: repr(row))


def summaries(iceberg_table: Table) -> list[tuple[str | None, str | None]]:
    return [
        (snapshot.summary.get(WRITER_PROPERTY), snapshot.summary.get(BATCH_ID_PROPERTY))
        for snapshot in iceberg_table.snapshots()
        if snapshot.summary is not None
    ]


def test_module_output_table_created_from_declaration_and_read_back(
    spark: SparkSession, sink_config: CoattailConfig
) -> None:
    router = AlertRouter.from_config(sink_config)
    output = orders(
        spark,
        ("BTCUSDT", "2024-08-08T23:58:01.123456Z", "buy", 847_000.25, 41),
        ("ETHUSDT", "2024-08-09T00:00:00Z", None, None, None),
    )

    written = router.route_module_output(TakerOrders(), output, 7, writer="detector-taker", table_suffix="_v2")

    assert written == 2
    created = table(sink_config, "taker_orders_v2")
    assert created.schema().as_struct() == to_iceberg_schema(TAKER_ORDERS).as_struct()
    symbol_id = created.schema().find_field("symbol").field_id
    time_id = created.schema().find_field("trade_time").field_id
    assert [(f.source_id, f.transform, f.name) for f in created.spec().fields] == [
        (time_id, DayTransform(), "trade_time_day"),
        (symbol_id, IdentityTransform(), "symbol"),
    ]
    assert rows_of(created) == [
        {
            "symbol": "BTCUSDT",
            "trade_time": utc("2024-08-08T23:58:01.123456Z"),
            "taker_side": "buy",
            "notional": 847_000.25,
            "fills": 41,
        },
        {
            "symbol": "ETHUSDT",
            "trade_time": utc("2024-08-09T00:00:00Z"),
            "taker_side": None,
            "notional": None,
            "fills": None,
        },
    ]
    assert summaries(created) == [("detector-taker", "7")]
    assert router.sink.committed_batch("taker_orders_v2", "detector-taker") == 7


def test_raw_trades_append_with_quality_columns_dropped(spark: SparkSession, sink_config: CoattailConfig) -> None:
    trade = {
        "event_id": "binance:BTCUSDT:1",
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "price": 61234.5,
        "quantity": 0.25,
        "quote_volume": 15308.625,
        "side": "sell",
        "timestamp": utc("2024-08-08T23:58:01.123Z"),
        "ingestion_timestamp": utc("2024-08-08T23:58:01.223Z"),
        "trade_id": "1",
        "taker_order_id": None,
    }
    schema = st.StructType([*UNIFIED_TRADE_EVENT.fields, st.StructField("dq_warnings", st.ArrayType(st.StringType()))])
    checked = spark.createDataFrame([{**trade, "dq_warnings": []}], schema)
    sink = IcebergSink(sink_config)
    partition = (day("timestamp"), identity("exchange"))

    with pytest.raises(IcebergWriteError, match=r"missing \[\], undeclared \['dq_warnings'\]"):
        sink.append("raw_trades", UNIFIED_TRADE_EVENT, partition, checked, batch_id=0, writer="ingest")
    written = sink.append(
        "raw_trades", UNIFIED_TRADE_EVENT, partition, checked.drop("dq_warnings"), batch_id=0, writer="ingest"
    )

    assert written.rows == 1
    raw = table(sink_config, "raw_trades")
    assert [field.name for field in raw.spec().fields] == ["timestamp_day", "exchange"]
    assert rows_of(raw) == [trade]


def test_rows_of_another_type_are_refused_naming_it(sink_config: CoattailConfig) -> None:
    sink = IcebergSink(sink_config)

    with pytest.raises(IcebergWriteError, match=r"taker_orders: w batch 2: rows must be .* not list"):
        sink.append("taker_orders", TAKER_ORDERS, (), [{"symbol": "BTCUSDT"}], batch_id=2, writer="w")  # type: ignore[arg-type]
    assert sink.committed_batch("taker_orders", "w") is None


def test_same_batch_twice_is_skipped(spark: SparkSession, sink_config: CoattailConfig) -> None:
    sink = IcebergSink(sink_config)
    batch = orders(spark, ("BTCUSDT", "2024-08-08T23:58:01Z", "buy", 1.0, 1))
    write = dict(batch_id=3, writer="detector-taker")

    first = sink.append("taker_orders", TAKER_ORDERS, TakerOrders.partition_spec, batch, **write)  # type: ignore[arg-type]
    second = sink.append("taker_orders", TAKER_ORDERS, TakerOrders.partition_spec, batch, **write)  # type: ignore[arg-type]
    older = sink.append("taker_orders", TAKER_ORDERS, (), batch, batch_id=2, writer="detector-taker")

    assert (first.rows, first.skipped, second.rows, second.skipped, older.rows) == (1, False, 0, True, 0)
    written = table(sink_config, "taker_orders")
    assert len(written.snapshots()) == 1
    assert len(rows_of(written)) == 1
    metadata = Path(urlparse(written.location()).path) / "metadata"
    assert len(list(metadata.glob("*.metadata.json"))) == 2  # created + one append; a skip writes nothing


def test_empty_batch_creates_the_table_and_commits_nothing(spark: SparkSession, sink_config: CoattailConfig) -> None:
    sink = IcebergSink(sink_config)

    outcome = sink.append("taker_orders", TAKER_ORDERS, (), orders(spark), batch_id=0, writer="w")

    assert (outcome.rows, outcome.skipped) == (0, False)
    assert table(sink_config, "taker_orders").snapshots() == []
    assert sink.committed_batch("taker_orders", "w") is None
    assert sink.committed_batch("never_written", "w") is None


def test_two_writers_interleaved_keep_their_own_batch_ids(spark: SparkSession, sink_config: CoattailConfig) -> None:
    router = AlertRouter.from_config(sink_config)
    whale_0 = alerts(spark, "MOD-002", "2024-08-08T10:00:00Z")
    spread_0 = alerts(spark, "MOD-003", "2024-08-08T10:00:00Z")
    whale_1 = alerts(spark, "MOD-002", "2024-08-08T11:00:00Z", "2024-08-09T11:00:00Z")
    spread_1 = alerts(spark, "MOD-003", "2024-08-08T11:00:00Z")

    results = [
        router.sink.append(ALERTS_TABLE, BASE_ALERT_RECORD, (), frame, batch_id=batch, writer=writer)
        for frame, batch, writer in [
            (whale_0, 0, "detector-whale"),
            (spread_0, 0, "detector-spread"),
            (whale_1, 1, "detector-whale"),
            (spread_1, 1, "detector-spread"),
            (whale_1, 1, "detector-whale"),
            (spread_0, 0, "detector-spread"),
        ]
    ]

    assert [(r.rows, r.skipped) for r in results] == [
        (1, False),
        (1, False),
        (2, False),
        (1, False),
        (0, True),
        (0, True),
    ]
    stored = table(sink_config, ALERTS_TABLE)
    assert sorted(row["message"] for row in rows_of(stored)) == [
        "MOD-002 at 2024-08-08T10:00:00Z",
        "MOD-002 at 2024-08-08T11:00:00Z",
        "MOD-002 at 2024-08-09T11:00:00Z",
        "MOD-003 at 2024-08-08T10:00:00Z",
        "MOD-003 at 2024-08-08T11:00:00Z",
    ]
    assert router.sink.committed_batch(ALERTS_TABLE, "detector-whale") == 1
    assert router.sink.committed_batch(ALERTS_TABLE, "detector-spread") == 1


def test_lost_commit_race_is_retried_on_the_refreshed_table(
    spark: SparkSession, sink_config: CoattailConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = IcebergSink(sink_config)
    sink.append(
        ALERTS_TABLE, BASE_ALERT_RECORD, (), alerts(spark, "MOD-002", "2024-08-08T09:00:00Z"), batch_id=0, writer="a"
    )
    rival = to_table_arrow(ALERTS_TABLE, BASE_ALERT_RECORD, alerts(spark, "MOD-003", "2024-08-08T10:00:00Z"))
    with table(sink_config, ALERTS_TABLE).transaction() as transaction:  # no pyiceberg retries: the sink's own
        transaction.set_properties({"commit.retry.num-retries": "0"})
    original_append = Table.append
    calls: list[dict[str, str]] = []

    def append_after_a_rival(self: Table, df: Any, snapshot_properties: dict[str, str], **kwargs: Any) -> None:
        calls.append(snapshot_properties)
        if len(calls) == 1:  # another process commits between our load and our commit
            other = table(sink_config, ALERTS_TABLE)
            original_append(other, rival, snapshot_properties={WRITER_PROPERTY: "b", BATCH_ID_PROPERTY: "0"})
        original_append(self, df, snapshot_properties=snapshot_properties, **kwargs)

    monkeypatch.setattr(Table, "append", append_after_a_rival)
    written = sink.append(
        ALERTS_TABLE, BASE_ALERT_RECORD, (), alerts(spark, "MOD-002", "2024-08-08T11:00:00Z"), batch_id=1, writer="a"
    )

    assert written.rows == 1
    assert len(calls) == 2
    stored = table(sink_config, ALERTS_TABLE)
    assert summaries(stored) == [("a", "0"), ("b", "0"), ("a", "1")]
    assert len(rows_of(stored)) == 3


def test_concurrent_writers_lose_no_rows(spark: SparkSession, sink_config: CoattailConfig) -> None:
    sink = IcebergSink(sink_config)
    batches = {
        writer: [alerts(spark, module, *(f"2024-08-08T{10 + b:02d}:{m:02d}:00Z" for m in range(2))) for b in range(3)]
        for writer, module in (("detector-whale", "MOD-002"), ("detector-spread", "MOD-003"))
    }
    sink.append(
        ALERTS_TABLE, BASE_ALERT_RECORD, (day("detected_at"),), alerts(spark, "MOD-001"), batch_id=0, writer="x"
    )
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(writer: str) -> None:
        try:
            for batch_id, frame in enumerate(batches[writer]):
                start.wait() if batch_id == 0 else None
                sink.append(
                    ALERTS_TABLE, BASE_ALERT_RECORD, (day("detected_at"),), frame, batch_id=batch_id, writer=writer
                )
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(writer,)) for writer in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    stored = table(sink_config, ALERTS_TABLE)
    assert len(rows_of(stored)) == 12
    assert len({row["alert_id"] for row in rows_of(stored)}) == 12
    assert sorted(batch for writer, batch in summaries(stored) if writer == "detector-whale") == ["0", "1", "2"]
    assert sorted(batch for writer, batch in summaries(stored) if writer == "detector-spread") == ["0", "1", "2"]


def test_time_travel_to_the_previous_snapshot(spark: SparkSession, sink_config: CoattailConfig) -> None:
    sink = IcebergSink(sink_config)
    sink.append(
        "taker_orders",
        TAKER_ORDERS,
        (),
        orders(spark, ("BTCUSDT", "2024-08-08T10:00:00Z", "buy", 1.0, 1)),
        batch_id=0,
        writer="w",
    )
    sink.append(
        "taker_orders",
        TAKER_ORDERS,
        (),
        orders(spark, ("ETHUSDT", "2024-08-08T11:00:00Z", "sell", 2.0, 2)),
        batch_id=1,
        writer="w",
    )

    stored = table(sink_config, "taker_orders")
    first, second = stored.snapshots()

    assert [row["symbol"] for row in rows_of(stored, first.snapshot_id)] == ["BTCUSDT"]
    assert [row["symbol"] for row in rows_of(stored, second.snapshot_id)] == ["BTCUSDT", "ETHUSDT"]
    as_of = stored.snapshot_as_of_timestamp(first.timestamp_ms)
    assert as_of is not None
    assert as_of.snapshot_id == first.snapshot_id


def test_null_in_a_required_column_is_refused(spark: SparkSession, sink_config: CoattailConfig) -> None:
    nullable = st.StructType([st.StructField(f.name, f.dataType, nullable=True) for f in TAKER_ORDERS.fields])
    bad = spark.createDataFrame([(None, utc("2024-08-08T10:00:00Z"), "buy", 1.0, 1)], nullable)

    with pytest.raises(
        IcebergWriteError, match=r"column 'symbol' of Iceberg table 'taker_orders' is required but 1 rows"
    ):
        IcebergSink(sink_config).append("taker_orders", TAKER_ORDERS, (), bad, batch_id=0, writer="w")


def test_compact_rewrites_small_files_and_keeps_rows_and_batch_ids(
    spark: SparkSession, sink_config: CoattailConfig
) -> None:
    sink = IcebergSink(sink_config)
    spec = (day("trade_time"),)
    for batch_id in range(3):
        frame = orders(spark, ("BTCUSDT", f"2024-08-08T1{batch_id}:00:00Z", "buy", float(batch_id), batch_id))
        sink.append("taker_orders", TAKER_ORDERS, spec, frame, batch_id=batch_id, writer="w")
    sink.append(
        "taker_orders",
        TAKER_ORDERS,
        spec,
        orders(spark, ("BTCUSDT", "2024-08-09T10:00:00Z", "buy", 9.0, 9)),
        batch_id=3,
        writer="w",
    )
    before = rows_of(table(sink_config, "taker_orders"))

    result = sink.compact("taker_orders", "trade_time < '2024-08-09T00:00:00+00:00'")

    assert (result.files_before, result.files_after, result.rows) == (3, 1, 3)
    compacted = table(sink_config, "taker_orders")
    assert rows_of(compacted) == before
    assert len(list(compacted.scan().plan_files())) == 2
    assert sink.committed_batch("taker_orders", "w") == 3
    assert sink.compact("taker_orders", "trade_time >= '2024-08-09T00:00:00+00:00'").files_before == 1


def test_spark_writer_without_iceberg_runtime_is_a_clear_error(
    spark: SparkSession, sink_config: CoattailConfig
) -> None:
    config = sink_config.model_copy(
        update={"iceberg": sink_config.iceberg.model_copy(update={"writer": "spark", "catalog_name": "lake"})}
    )
    sink = IcebergSink(config)
    batch = orders(spark, ("BTCUSDT", "2024-08-08T10:00:00Z", "buy", 1.0, 1))

    with pytest.raises(IcebergRuntimeMissingError, match=r"iceberg.writer is 'spark' .* no Iceberg catalog 'lake'"):
        sink.append("taker_orders", TAKER_ORDERS, (day("trade_time"),), batch, batch_id=0, writer="w")
    spark.conf.set("spark.sql.catalog.lake", "org.apache.iceberg.spark.SparkCatalog")
    try:
        with pytest.raises(
            IcebergRuntimeMissingError,
            match=r"iceberg.writer: pyiceberg \(.*(plugin class for catalog 'lake'|ClassNotFoundException: org.apache)",
        ):
            sink.append("taker_orders", TAKER_ORDERS, (day("trade_time"),), batch, batch_id=0, writer="w")
    finally:
        spark.conf.unset("spark.sql.catalog.lake")
    arrow = to_table_arrow("taker_orders", TAKER_ORDERS, batch)
    for rows in (arrow, lambda: arrow):
        with pytest.raises(IcebergWriteError, match=r"taker_orders: w batch 4: Arrow rows are appended with pyiceberg"):
            sink.append("taker_orders", TAKER_ORDERS, (), rows, batch_id=4, writer="w")
    assert sink.spark_ddl("taker_orders", TAKER_ORDERS, (day("trade_time"), identity("symbol"))) == (
        "CREATE TABLE IF NOT EXISTS lake.coattail.taker_orders (\n"
        "  `symbol` string NOT NULL,\n"
        "  `trade_time` timestamp NOT NULL,\n"
        "  `taker_side` string,\n"
        "  `notional` double,\n"
        "  `fills` bigint\n"
        ") USING iceberg\n"
        "PARTITIONED BY (days(trade_time), symbol)\n"
        "TBLPROPERTIES ('format-version' = '2', 'write.parquet.compression-codec' = 'zstd', "
        "'commit.manifest-merge.enabled' = 'true', 'write.metadata.delete-after-commit.enabled' = 'true', "
        "'write.metadata.previous-versions-max' = '100')"
    )
    with pytest.raises(IcebergWriteError, match=r"CALL lake.system.expire_snapshots\(table => 'coattail.taker_orders'"):
        sink.expire_snapshots("taker_orders")
    with pytest.raises(
        IcebergWriteError, match=r"CALL lake.system.rewrite_data_files\(table => 'coattail.taker_orders'\)"
    ):
        sink.compact("taker_orders")
