"""Alerts to DynamoDB through the router (executors -> moto): exact items, replays, throttling."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import BaseModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

from coattail_framework.alerts import alert_frame, make_alert_id
from coattail_framework.aws.alert_table import ttl_epoch
from coattail_framework.config.model import CoattailConfig
from coattail_framework.detector import BaseDetector
from coattail_framework.iceberg import open_catalog
from coattail_framework.partitioning import PartitionField, day
from coattail_framework.schemas import BASE_ALERT_RECORD
from coattail_framework.sinks import AlertRouter, AlertWriteError, DynamoAlertWriter
from coattail_framework.sinks.dynamodb import dynamodb_client

TTL_SECONDS = 30 * 86_400
WRITTEN_AT = datetime(2026, 12, 6, 14, 0, 0, 900_000, tzinfo=UTC)
"""The router's injected wall clock: alerts of 2024 written "now"."""
WRITTEN_EPOCH = 1_796_565_600
"""``WRITTEN_AT`` in whole seconds since the epoch."""


def ticking(*times: datetime) -> Callable[[], datetime]:
    """A wall clock that returns ``times`` in order, one per reading (fails when read once too often)."""
    readings = iter(times)
    return lambda: next(readings)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def alert(at: str, symbol: str = "BTCUSDT", severity: str = "high", notional: float = 847_000.5) -> dict[str, Any]:
    return {
        "alert_id": make_alert_id("MOD-002", "binance", symbol, at, "buy"),
        "alert_type": "whale_trade",
        "module_id": "MOD-002",
        "symbol": symbol,
        "exchange": "binance",
        "severity": severity,
        "detected_at": utc(at),
        "message": f"taker buy of {notional} USDT on {symbol}",
        "ttl_epoch": None,
        "details": json.dumps({"notional": notional, "fills": 12}),
    }


def frame(spark: SparkSession, rows: list[dict[str, Any]]) -> DataFrame:
    return spark.createDataFrame(rows, BASE_ALERT_RECORD)


ALERTS = [
    alert("2024-08-08T23:58:01.123456Z"),
    alert("2024-08-08T23:59:59.000001Z", symbol="ETHUSDT", severity="medium", notional=120_000.0),
    alert("2024-08-09T00:00:00Z", severity="critical", notional=2_500_000.0),
]


def test_route_writes_exact_items(
    spark: SparkSession, sink_config: CoattailConfig, stored_alerts: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    router = AlertRouter.from_config(sink_config, clock=ticking(WRITTEN_AT))

    result = router.route(frame(spark, ALERTS), 0, writer="detector-whale")

    assert (result.written, result.duplicates, result.throttled_retries) == (3, 0, 0)
    assert (result.iceberg_rows, result.skipped) == (3, False)
    expected_times = ["2024-08-08T23:58:01.123456Z", "2024-08-08T23:59:59.000001Z", "2024-08-09T00:00:00.000000Z"]
    expected = {
        row["alert_id"]: {**row, "detected_at": text, "ttl_epoch": Decimal(WRITTEN_EPOCH + TTL_SECONDS)}
        for row, text in zip(ALERTS, expected_times, strict=True)
    }
    assert stored_alerts() == expected
    cold = open_catalog(sink_config.iceberg, sink_config.aws).load_table(("coattail", "alerts"))
    assert sorted(cold.scan().to_arrow().to_pylist(), key=lambda row: row["detected_at"]) == [
        {**row, "ttl_epoch": WRITTEN_EPOCH + TTL_SECONDS} for row in ALERTS
    ]


def test_an_alert_detected_in_2024_written_now_lives_ttl_days_from_now(
    spark: SparkSession, sink_config: CoattailConfig, stored_alerts: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    router = AlertRouter.from_config(sink_config, clock=ticking(WRITTEN_AT))

    counts = router.put_alerts(frame(spark, ALERTS[:1]))

    assert (counts.written, counts.duplicates) == (1, 0)
    stored = stored_alerts()[ALERTS[0]["alert_id"]]
    assert (stored["detected_at"], stored["ttl_epoch"]) == ("2024-08-08T23:58:01.123456Z", Decimal(1_799_157_600))
    assert datetime.fromtimestamp(int(stored["ttl_epoch"]), tz=UTC) == datetime(2027, 1, 5, 14, 0, 0, tzinfo=UTC)


def test_the_ttl_needs_an_aware_write_time() -> None:
    assert ttl_epoch(WRITTEN_AT.astimezone(timezone(timedelta(hours=9))), 30) == WRITTEN_EPOCH + TTL_SECONDS
    with pytest.raises(ValueError, match="written_at must be timezone-aware"):
        ttl_epoch(datetime(2026, 12, 6, 14, 0), 30)


def test_replayed_batch_writes_nothing_and_counts_duplicates(
    spark: SparkSession, sink_config: CoattailConfig, stored_alerts: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    later = datetime(2026, 12, 7, tzinfo=UTC)
    router = AlertRouter.from_config(sink_config, clock=ticking(WRITTEN_AT, later, later))
    router.route(frame(spark, ALERTS[:2]), 4, writer="detector-whale")
    before = stored_alerts()

    replay = router.route(frame(spark, ALERTS[:2]), 4, writer="detector-whale")

    assert (replay.written, replay.duplicates, replay.iceberg_rows, replay.skipped) == (0, 2, 0, True)
    assert stored_alerts() == before
    assert {item["ttl_epoch"] for item in before.values()} == {Decimal(WRITTEN_EPOCH + TTL_SECONDS)}
    overlapping = router.route(frame(spark, ALERTS), 5, writer="detector-whale")
    assert (overlapping.written, overlapping.duplicates, overlapping.iceberg_rows) == (1, 2, 3)
    assert {alert_id: item["ttl_epoch"] for alert_id, item in stored_alerts().items()} == {
        ALERTS[0]["alert_id"]: Decimal(WRITTEN_EPOCH + TTL_SECONDS),
        ALERTS[1]["alert_id"]: Decimal(WRITTEN_EPOCH + TTL_SECONDS),
        ALERTS[2]["alert_id"]: Decimal(int(later.timestamp()) + TTL_SECONDS),
    }


def test_write_through_puts_every_row_and_returns_exactly_the_rows_with_counts(
    spark: SparkSession, sink_config: CoattailConfig, stored_alerts: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    writer = AlertRouter.from_config(sink_config).dynamodb
    rows = [{**row, "ttl_epoch": 1_700_000_000 + n} for n, row in enumerate(ALERTS)]
    alerts = frame(spark, rows).repartition(2)

    collected, counts = writer.write_through(alerts)

    assert (counts.written, counts.duplicates, counts.retries) == (3, 0, 0)
    assert collected.schema.names == BASE_ALERT_RECORD.fieldNames()
    assert sorted(collected.to_pylist(), key=lambda row: row["alert_id"]) == sorted(rows, key=lambda r: r["alert_id"])
    assert stored_alerts() == {
        row["alert_id"]: {**row, "detected_at": text, "ttl_epoch": Decimal(row["ttl_epoch"])}
        for row, text in zip(
            rows,
            ["2024-08-08T23:58:01.123456Z", "2024-08-08T23:59:59.000001Z", "2024-08-09T00:00:00.000000Z"],
            strict=True,
        )
    }
    replayed, counts = writer.write_through(alerts)
    assert (counts.written, counts.duplicates, replayed.num_rows) == (0, 3, 3)


class ThrottlingClients:
    """Client factory whose clients raise a throttling error on the first ``failures`` puts."""

    def __init__(self, failures: int, code: str) -> None:
        self.failures = failures
        self.code = code
        self.calls = 0

    def __call__(self, region: str, endpoint_url: str | None) -> Any:
        client = dynamodb_client(region, endpoint_url)
        put_item = client.put_item

        def throttled_put_item(**kwargs: Any) -> Any:
            self.calls += 1
            if self.calls <= self.failures:
                raise ClientError({"Error": {"Code": self.code, "Message": "slow down"}}, "PutItem")
            return put_item(**kwargs)

        client.put_item = throttled_put_item
        return client


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_throttling_is_retried_with_backoff(
    sink_config: CoattailConfig, stored_alerts: Callable[[], dict[str, dict[str, Any]]], code: str
) -> None:
    clients = ThrottlingClients(failures=3, code=code)
    writer = DynamoAlertWriter(
        table_name=sink_config.dynamodb.table_name,
        region=sink_config.aws.region,
        endpoint_url=sink_config.aws.endpoint_url,
        base_delay_s=0.001,
        client_factory=clients,
    )
    rows = [{**row, "detected_at": "2024-08-08T23:58:01.123456Z", "ttl_epoch": 1} for row in ALERTS[:2]]

    counts = writer.write_rows(rows)

    assert (counts.written, counts.duplicates, counts.retries) == (2, 0, 3)
    assert clients.calls == 5
    assert set(stored_alerts()) == {row["alert_id"] for row in rows}


def test_throttling_gives_up_after_max_attempts(sink_config: CoattailConfig) -> None:
    writer = DynamoAlertWriter(
        table_name=sink_config.dynamodb.table_name,
        region=sink_config.aws.region,
        endpoint_url=sink_config.aws.endpoint_url,
        max_attempts=3,
        base_delay_s=0.001,
        client_factory=ThrottlingClients(failures=10, code="ThrottlingException"),
    )
    row = {**ALERTS[0], "detected_at": "2024-08-08T23:58:01.123456Z", "ttl_epoch": 1}

    with pytest.raises(AlertWriteError, match=r"not written after 3 attempts .*ThrottlingException"):
        writer.write_rows([row])


def test_other_errors_fail_with_the_reason(sink_config: CoattailConfig) -> None:
    writer = DynamoAlertWriter(
        table_name="no-such-table", region=sink_config.aws.region, endpoint_url=sink_config.aws.endpoint_url
    )
    row = {**ALERTS[0], "detected_at": "2024-08-08T23:58:01.123456Z", "ttl_epoch": 1}

    with pytest.raises(AlertWriteError, match=r"'no-such-table' rejected alert .*ResourceNotFoundException"):
        writer.write_rows([row])


def test_alerts_with_other_columns_or_a_non_utc_session_are_refused(
    spark: SparkSession, sink_config: CoattailConfig
) -> None:
    router = AlertRouter.from_config(sink_config)
    alerts = frame(spark, ALERTS[:1])

    with pytest.raises(AlertWriteError, match=r"missing \['ttl_epoch'\], undeclared \['score'\]"):
        router.route(alerts.drop("ttl_epoch").withColumn("score", F.lit(1.0)), 0, writer="w")
    spark.conf.set("spark.sql.session.timeZone", "Europe/Paris")
    try:
        with pytest.raises(AlertWriteError, match=r"spark.sql.session.timeZone is 'Europe/Paris'.*must be UTC"):
            router.route(alerts, 0, writer="w")
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


class NoSettings(BaseModel):
    pass


class BigOrders(BaseDetector[NoSettings]):
    """Output rows are orders; an alert per order of at least $100K (severity by size)."""

    config_model = NoSettings
    module_id = "MOD-951"
    module_name = "big-orders"
    alert_types: Sequence[str] = ("big_order",)
    output_table = "big_orders"
    output_schema = StructType(
        [
            StructField("symbol", StringType(), False),
            StructField("at", TimestampType(), False),
            StructField("notional", DoubleType(), False),
        ]
    )
    partition_spec: Sequence[PartitionField] = (day("at"),)

    def __init__(self) -> None:
        super().__init__()
        self.build_alerts_calls = 0

    def process(self, events: DataFrame) -> DataFrame:
        return events

    def build_alerts(self, output: DataFrame) -> DataFrame:
        self.build_alerts_calls += 1
        big = output.where(F.col("notional") >= 100_000)
        return alert_frame(
            big,
            module_id=self.module_id,
            alert_type="big_order",
            id_parts=[F.col("symbol"), F.unix_micros(F.col("at"))],
            symbol=F.col("symbol"),
            exchange=F.lit("binance"),
            severity=F.when(F.col("notional") >= 1_000_000, "high").otherwise("medium"),
            detected_at=F.col("at"),
            message=F.format_string("%s order of %.0f", F.col("symbol"), F.col("notional")),
            details=[F.col("notional")],
        )


def test_a_detector_batch_writes_alerts_before_its_module_table_and_skips_alert_work_when_empty(
    spark: SparkSession, sink_config: CoattailConfig, stored_alerts: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    router = AlertRouter.from_config(sink_config)
    detector = BigOrders()
    order = [
        ("BTCUSDT", utc("2024-08-08T23:58:01Z"), 2_500_000.0),
        ("BTCUSDT", utc("2024-08-08T23:58:02Z"), 150_000.0),
        ("ETHUSDT", utc("2024-08-08T23:58:03Z"), 9_000.0),
    ]
    commits: list[str] = []
    append = router.sink.append

    def recording(table: str, *args: Any, **kwargs: Any) -> Any:
        commits.append(f"{table}:{len(stored_alerts())} alerts in DynamoDB")
        return append(table, *args, **kwargs)

    router.sink.append = recording  # type: ignore[method-assign]

    empty = router.route_detector_batch(
        detector, spark.createDataFrame([], detector.output_schema), 0, writer="detector-big-orders"
    )
    assert (empty.module_rows, empty.alerts, detector.build_alerts_calls) == (0, None, 0)

    result = router.route_detector_batch(
        detector, spark.createDataFrame(order, detector.output_schema), 1, writer="detector-big-orders"
    )

    assert result.module_rows == 3
    assert result.alerts is not None
    assert (result.alerts.written, result.alerts.iceberg_rows, result.alerts.by_severity) == (
        2,
        2,
        {"high": 1, "medium": 1},
    )
    assert commits == [
        "big_orders:0 alerts in DynamoDB",
        "alerts:2 alerts in DynamoDB",
        "big_orders:2 alerts in DynamoDB",
    ]
    assert sorted(a["symbol"] + ":" + a["severity"] for a in stored_alerts().values()) == [
        "BTCUSDT:high",
        "BTCUSDT:medium",
    ]
