"""Alerts written by the stream job's own Spark path (``dynamodb_rows`` + executors) read back by the API."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import SparkSession

from coattail_framework.schemas import BASE_ALERT_RECORD, SEVERITIES
from coattail_framework.sinks.dynamodb import DynamoAlertWriter, dynamodb_rows


def test_spark_written_alerts_are_served_with_exact_times(
    spark: SparkSession, api: Any, alert_table: str, moto_endpoint: str
) -> None:
    detected = [
        datetime(2024, 8, 8, 23, 58, 1, 123000, tzinfo=timezone.utc),
        datetime(2024, 8, 8, 23, 59, 0, 0, tzinfo=timezone.utc),
    ]
    records = [
        (
            f"{index:032x}",
            "whale_trade",
            "MOD-002",
            "BTCUSDT",
            "binance",
            "critical",
            moment,
            f"whale {index}",
            1_725_753_481 + index,
            json.dumps({"side": "buy", "notional": 847_123.5 + index, "fill_count": 12}),
        )
        for index, moment in enumerate(detected)
    ]
    rows = dynamodb_rows(spark.createDataFrame(records, BASE_ALERT_RECORD))

    counts = DynamoAlertWriter(table_name=alert_table, region="us-east-1", endpoint_url=moto_endpoint).write(rows)
    listing = api("/whales", symbol="BTCUSDT", min_notional=847_124)
    single = api(f"/alerts/{0:032x}")

    assert (counts.written, counts.duplicates) == (2, 0)
    assert [(a["alert_id"], a["detected_at"]) for a in listing.body["alerts"]] == [
        (f"{1:032x}", "2024-08-08T23:59:00.000000Z")
    ]
    assert single.body["detected_at"] == "2024-08-08T23:58:01.123000Z"
    assert single.body["ttl_epoch"] == 1_725_753_481
    assert single.body["details"] == {"side": "buy", "notional": 847_123.5, "fill_count": 12}


def test_the_api_severity_choices_are_the_frameworks() -> None:
    from typing import get_args

    from coattail_api.app import Severity

    assert get_args(Severity) == SEVERITIES
