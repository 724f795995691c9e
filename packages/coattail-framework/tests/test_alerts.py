"""Alert ids (Python and Spark agree) and severity tiers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from coattail_framework.alerts import SeverityTiers, alert_frame, alert_id_column, make_alert_id
from coattail_framework.schemas import BASE_ALERT_RECORD


def test_python_and_spark_alert_ids_agree(spark: SparkSession) -> None:
    df = spark.createDataFrame([("binance", "BTCUSDT", 1723161244123, None)], "ex string, sym string, t long, n string")
    (row,) = df.select(
        alert_id_column("MOD-002", F.col("ex"), F.col("sym"), F.col("t"), F.col("n")).alias("id")
    ).collect()
    assert row.id == make_alert_id("MOD-002", "binance", "BTCUSDT", "1723161244123", "")
    assert len(row.id) == 32
    assert make_alert_id("MOD-002", "a") != make_alert_id("MOD-003", "a")


def test_severity_tiers_classify_strictly_above_bounds(spark: SparkSession) -> None:
    tiers = SeverityTiers(medium=100_000, high=500_000, critical=1_000_000)
    assert tiers.threshold == 100_000
    expected = {100_000.0: None, 100_000.01: "medium", 500_000.0: "medium", 500_001.0: "high", 2e6: "critical"}
    assert {value: tiers.classify(value) for value in expected} == expected
    df = spark.createDataFrame([(value,) for value in expected], "v double")
    got = {row.v: row.s for row in df.select("v", tiers.column(F.col("v")).alias("s")).collect()}
    assert got == expected


def test_severity_tiers_must_increase() -> None:
    with pytest.raises(ValidationError, match=r"high \(5.0\) must be greater than medium \(10.0\)"):
        SeverityTiers(medium=10, high=5)
    with pytest.raises(ValidationError, match="at least one severity bound"):
        SeverityTiers()


def test_alert_frame_builds_base_alert_records(spark: SparkSession) -> None:
    rows = spark.createDataFrame(
        [
            ("BTCUSDT", "binance", 600_000.0, datetime(2024, 8, 8, 23, 58, tzinfo=UTC)),
            ("BTCUSDT", "binance", 5.0, None),
        ],
        "symbol string, exchange string, notional double, at timestamp",
    )
    tiers = SeverityTiers(medium=100_000, high=500_000)
    alerts = alert_frame(
        rows,
        module_id="MOD-002",
        alert_type="whale_trade",
        id_parts=[F.col("exchange"), F.col("symbol"), F.col("at")],
        symbol=F.col("symbol"),
        exchange=F.col("exchange"),
        severity=tiers.column(F.col("notional")),
        detected_at=F.col("at"),
        message=F.format_string("%s: $%,.0f", F.col("symbol"), F.col("notional")),
        details=[F.col("notional")],
    )
    assert alerts.schema.fieldNames() == BASE_ALERT_RECORD.fieldNames()
    (alert,) = alerts.collect()
    assert alert.severity == "high"
    assert alert.message == "BTCUSDT: $600,000"
    assert alert.details == '{"notional":600000.0}'
    assert alert.ttl_epoch is None
    assert alert.alert_id == make_alert_id("MOD-002", "binance", "BTCUSDT", "2024-08-08 23:58:00")
