"""Alerts to DynamoDB through the router (executors -> moto): exact items, replays, throttling."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from coattail_framework.alerts import make_alert_id
from coattail_framework.config.model import CoattailConfig
from coattail_framework.iceberg import open_catalog
from coattail_framework.schemas import BASE_ALERT_RECORD
from coattail_framework.sinks import AlertRouter, AlertWriteError, DynamoAlertWriter
from coattail_framework.sinks.dynamodb import dynamodb_client

TTL_SECONDS = 30 * 86_400


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


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
    result = AlertRouter.from_config(sink_config).route(frame(spark, ALERTS), 0, writer="detector-whale")

    assert (result.written, result.duplicates, result.throttled_retries) == (3, 0, 0)
    assert (result.iceberg_rows, result.skipped) == (3, False)
    expected_times = ["2024-08-08T23:58:01.123456Z", "2024-08-08T23:59:59.000001Z", "2024-08-09T00:00:00.000000Z"]
    expected = {
        row["alert_id"]: {
            **row,
            "detected_at": text,
            "ttl_epoch": Decimal(int(row["detected_at"].timestamp()) + TTL_SECONDS),
        }
        for row, text in zip(ALERTS, expected_times, strict=True)
    }
    assert stored_alerts() == expected
    assert expected[ALERTS[0]["alert_id"]]["ttl_epoch"] == Decimal(1723161481 + TTL_SECONDS)
    cold = open_catalog(sink_config.iceberg, sink_config.aws).load_table(("coattail", "alerts"))
    assert sorted(cold.scan().to_arrow().to_pylist(), key=lambda row: row["detected_at"]) == [
        {**row, "ttl_epoch": int(row["detected_at"].timestamp()) + TTL_SECONDS} for row in ALERTS
    ]


def test_replayed_batch_writes_nothing_and_counts_duplicates(
    spark: SparkSession, sink_config: CoattailConfig, stored_alerts: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    router = AlertRouter.from_config(sink_config)
    router.route(frame(spark, ALERTS[:2]), 4, writer="detector-whale")
    before = stored_alerts()

    replay = router.route(frame(spark, ALERTS[:2]), 4, writer="detector-whale")

    assert (replay.written, replay.duplicates, replay.iceberg_rows, replay.skipped) == (0, 2, 0, True)
    assert stored_alerts() == before
    overlapping = router.route(frame(spark, ALERTS), 5, writer="detector-whale")
    assert (overlapping.written, overlapping.duplicates, overlapping.iceberg_rows) == (1, 2, 3)
    assert len(stored_alerts()) == 3


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
