"""DataQualityChecker: each default rule alone, static and streaming, metrics, and the DLQ layout."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from coattail_devstack.testing.stream import event_stream, write_event_batches
from coattail_framework.config.model import CoattailConfig
from coattail_framework.errors import ConfigError
from coattail_framework.quality import DataQualityChecker, QualityRule, write_dead_letters
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

T0 = datetime(2024, 8, 8, 23, 54, 15, tzinfo=UTC)
CONFIG = CoattailConfig.model_validate(
    {
        "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}, "BTC/USD": {"coinbase": "BTC-USD", "kraken": "XBTUSD"}},
        "exchanges": {
            "binance": {"connector": "binance"},
            "coinbase": {"connector": "coinbase"},
            "kraken": {"connector": "kraken", "enabled": False},
        },
        "quality": {"max_event_age_seconds": 60, "quote_volume_tolerance": 0.001},
    }
)


def good(event_id: str = "binance:BTCUSDT:1", **changes: Any) -> dict[str, Any]:
    row = {
        "event_id": event_id,
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "price": 60_000.0,
        "quantity": 0.5,
        "quote_volume": 30_000.0,
        "side": "buy",
        "timestamp": T0,
        "ingestion_timestamp": T0 + timedelta(seconds=1),
        "trade_id": "1",
        "taker_order_id": None,
    }
    return {**row, **changes}


# (row changes, error rules it fails, warn rules it fails): one default rule each.
CASES: dict[str, tuple[dict[str, Any], list[str], list[str]]] = {
    "completeness_event_id": ({"event_id": " "}, ["completeness_event_id"], []),
    "completeness_symbol": ({"symbol": None}, ["completeness_symbol"], []),
    "completeness_price": ({"price": None}, ["completeness_price"], []),
    "completeness_quantity": ({"quantity": None}, ["completeness_quantity"], []),
    "completeness_timestamp": ({"timestamp": None}, ["completeness_timestamp"], []),
    "validity_price_positive": ({"price": -1.0, "quote_volume": -0.5}, ["validity_price_positive"], []),
    "validity_price_nan": ({"price": float("nan")}, ["validity_price_positive"], []),
    "validity_quantity_positive": ({"quantity": 0.0, "quote_volume": 0.0}, ["validity_quantity_positive"], []),
    "validity_symbol_allowed": ({"symbol": "DOGEUSDT"}, ["validity_symbol_allowed"], []),
    "validity_exchange_allowed": (
        {"exchange": "kraken", "symbol": "XBTUSD"},
        ["validity_exchange_allowed"],
        [],
    ),
    "timeliness_recent": ({"ingestion_timestamp": T0 + timedelta(seconds=61)}, [], ["timeliness_recent"]),
    "consistency_quote_volume": ({"quote_volume": 30_100.0}, [], ["consistency_quote_volume"]),
}


def frame(spark: SparkSession, rows: list[dict[str, Any]]) -> DataFrame:
    return spark.createDataFrame(rows, UNIFIED_TRADE_EVENT)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_default_rule_on_its_own(spark: SparkSession, case: str) -> None:
    changes, errors, warnings = CASES[case]
    checker = DataQualityChecker(spark, CONFIG)
    valid, invalid, metrics = checker.validate(frame(spark, [good(**changes)]))
    if errors:
        (row,) = invalid.collect()
        assert row.dq_failed_rules == errors
        assert row.dq_reason == errors[0]
        assert valid.count() == 0
    else:
        (row,) = valid.collect()
        assert row.dq_warnings == warnings
        assert invalid.count() == 0
    counts = metrics.get()
    assert counts["total"] == 1
    assert counts["invalid"] == (1 if errors else 0)
    assert {rule for rule in metrics.rules if counts[rule]} == set(errors + warnings)


def test_valid_rows_pass_untouched(spark: SparkSession) -> None:
    checker = DataQualityChecker(spark, CONFIG)
    rows = [good("binance:BTCUSDT:1"), good("coinbase:BTC-USD:9", exchange="coinbase", symbol="BTC-USD")]
    valid, invalid, metrics = checker.validate(frame(spark, rows))
    assert sorted(r.event_id for r in valid.collect()) == ["binance:BTCUSDT:1", "coinbase:BTC-USD:9"]
    assert valid.columns == [*UNIFIED_TRADE_EVENT.fieldNames(), "dq_warnings"]
    assert invalid.count() == 0
    assert metrics.get()["valid"] == 2


def test_null_row_fails_every_completeness_rule_once(spark: SparkSession) -> None:
    checker = DataQualityChecker(spark, CONFIG)
    _, invalid, _ = checker.validate(frame(spark, [dict.fromkeys(UNIFIED_TRADE_EVENT.fieldNames())]))
    (row,) = invalid.collect()
    assert row.dq_failed_rules == [
        "completeness_event_id",
        "completeness_symbol",
        "completeness_price",
        "completeness_quantity",
        "completeness_timestamp",
        "completeness_ingestion_timestamp",
    ]


def test_unparseable_payload_is_reported_as_such(spark: SparkSession) -> None:
    checker = DataQualityChecker(spark, CONFIG)
    df = frame(spark, [good(), dict.fromkeys(UNIFIED_TRADE_EVENT.fieldNames())]).withColumn(
        "parse_ok", F.col("event_id").isNotNull()
    )
    _, invalid, _ = checker.validate(df)
    (row,) = invalid.collect()
    assert row.dq_reason == "validity_json"


def test_module_rules_and_disabled_rules(spark: SparkSession) -> None:
    side_rule = QualityRule(
        "validity_side_known", "error", "side is buy or sell", lambda ctx: F.col("side").isin("buy", "sell")
    )
    config = CONFIG.model_copy(
        update={"quality": CONFIG.quality.model_copy(update={"disabled_rules": ["timeliness_recent"]})}
    )
    checker = DataQualityChecker(spark, config, extra_rules=[side_rule])
    assert "timeliness_recent" not in [rule.name for rule in checker.rules]
    late = good(side="hold", ingestion_timestamp=T0 + timedelta(hours=1))
    _, invalid, _ = checker.validate(frame(spark, [late]))
    (row,) = invalid.collect()
    assert row.dq_failed_rules == ["validity_side_known"]
    assert row.dq_warnings == []
    with pytest.raises(ConfigError, match="quality rules defined twice: validity_side_known"):
        DataQualityChecker(spark, CONFIG, extra_rules=[side_rule, side_rule])
    unknown = CONFIG.model_copy(update={"quality": CONFIG.quality.model_copy(update={"disabled_rules": ["nope"]})})
    with pytest.raises(ConfigError, match=r"quality\.disabled_rules names unknown rule\(s\) nope"):
        DataQualityChecker(spark, unknown)


def test_streaming_dataframe_with_observed_metrics(spark: SparkSession, tmp_path: Path) -> None:
    checker = DataQualityChecker(spark, CONFIG)
    batches = [
        [good("binance:BTCUSDT:1"), good("binance:BTCUSDT:2", price=None)],
        [good("binance:BTCUSDT:3", ingestion_timestamp=T0 + timedelta(minutes=5)), good("x", symbol="ETHBTC")],
    ]
    stream = event_stream(spark, write_event_batches(batches, tmp_path / "in"))
    valid, invalid, metrics = checker.validate(stream)
    assert valid.isStreaming
    assert invalid.isStreaming
    seen: dict[int, tuple[list[str], list[tuple[str, str]]]] = {}

    def collect(batch: DataFrame, batch_id: int) -> None:
        rows = batch.collect()
        seen[batch_id] = (
            sorted(r.event_id for r in rows if not r.dq_failed_rules),
            sorted((r.event_id, r.dq_failed_rules[0]) for r in rows if r.dq_failed_rules),
        )

    query = (
        checker.flag(stream)
        .writeStream.foreachBatch(collect)
        .trigger(availableNow=True)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    query.awaitTermination()
    assert seen == {
        0: (["binance:BTCUSDT:1"], [("binance:BTCUSDT:2", "completeness_price")]),
        1: (["binance:BTCUSDT:3"], [("x", "validity_symbol_allowed")]),
    }

    observed: list[dict[str, int]] = []
    query = (
        valid.writeStream.format("noop")
        .trigger(availableNow=True)
        .option("checkpointLocation", str(tmp_path / "checkpoint-metrics"))
        .start()
    )
    query.awaitTermination()
    for progress in query.recentProgress:
        counts = metrics.from_progress(progress.observedMetrics)
        if counts is not None:
            observed.append(counts)
    totals = {key: sum(c[key] for c in observed) for key in ("total", "valid", "invalid", "timeliness_recent")}
    assert totals == {"total": 4, "valid": 2, "invalid": 2, "timeliness_recent": 1}


def test_dead_letters_land_under_reason_and_date(spark: SparkSession, tmp_path: Path) -> None:
    checker = DataQualityChecker(spark, CONFIG)
    rows = [
        good("a", price=None),
        good("b", price=None, timestamp=T0 + timedelta(days=1)),
        good("c", symbol="DOGEUSDT"),
        good("d"),
    ]
    _, invalid, _ = checker.validate(frame(spark, rows))
    written = write_dead_letters(invalid, str(tmp_path / "raw"), batch_id=7)
    assert written == {"completeness_price": 2, "validity_symbol_allowed": 1}
    folders = sorted(p.relative_to(tmp_path / "raw").as_posix() for p in (tmp_path / "raw").glob("dlq/*/*/*"))
    assert folders == [
        "dlq/completeness_price/dt=2024-08-08/batch=7",
        "dlq/completeness_price/dt=2024-08-09/batch=7",
        "dlq/validity_symbol_allowed/dt=2024-08-08/batch=7",
    ]
    records = [
        json.loads(line)
        for path in sorted((tmp_path / "raw" / "dlq" / "completeness_price").rglob("*.json"))
        for line in path.read_text().splitlines()
    ]
    assert sorted(r["event_id"] for r in records) == ["a", "b"]
    assert records[0]["dq_failed_rules"] == ["completeness_price"]
    again = write_dead_letters(invalid, str(tmp_path / "raw"), batch_id=7)
    assert again == written
    rewritten = list((tmp_path / "raw" / "dlq" / "validity_symbol_allowed").rglob("*.json"))
    assert sum(len(p.read_text().splitlines()) for p in rewritten) == 1
