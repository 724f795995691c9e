"""End to end on the local stack: Kinesis -> quality -> raw table/DLQ -> detector -> DynamoDB + Iceberg.

Uses the real pieces: moto's server on 127.0.0.1, the coattail-kinesis source, pyiceberg
tables on SQLite, and the framework's TradeCountDetector (windows of 60 s, watermark 5 s,
alert above 1 trade).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from pyspark.sql import DataFrame, SparkSession

from coattail_devstack.localstack import LocalStack
from coattail_devstack.testing import trade
from coattail_devstack.testing.detectors import TradeCountDetector
from coattail_framework.alerts import make_alert_id
from coattail_framework.config.model import CoattailConfig, SnapshotRetention
from coattail_framework.errors import ConfigError
from coattail_framework.iceberg import open_catalog
from coattail_framework.pipeline import PipelineRunner
from coattail_framework.pipeline.runner import last_executed_batch
from coattail_framework.sinks import AlertRouter

T0 = datetime(2024, 8, 8, 23, 54, 0, tzinfo=UTC)
WRITTEN_AT = datetime(2026, 12, 6, 14, 0, 0, tzinfo=UTC)
"""The alert router's injected wall clock: trades of 2024 replayed "now"."""
BASE_CONFIG = CoattailConfig.model_validate(
    {
        "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}, "ETH/USDT": {"binance": "ETHUSDT"}},
        "exchanges": {"binance": {"connector": "binance"}},
        "kinesis": {
            "shard_count": 2,
            "max_records_per_trigger": 1000,
            "min_poll_interval_ms": 200,
            "idle_poll_interval_ms": 500,
        },
        "dynamodb": {"ttl_days": 30},
        "metrics": {"enabled": False},
        # 2024 trades put today: judged against their ingestion clock, as in a replay.
        "quality": {"max_event_age_seconds": 300, "event_time_reference": "ingestion"},
    }
)


@pytest.fixture
def stack(named_stack: Any) -> Iterator[LocalStack]:
    with named_stack(BASE_CONFIG, "trades") as running:
        yield running


def _put(stack: LocalStack, payloads: list[tuple[str, str]]) -> None:
    kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=stack.endpoint_url)
    records = [{"Data": data.encode(), "PartitionKey": key} for key, data in payloads]
    response = kinesis.put_records(StreamName=stack.config.kinesis.stream_name, Records=records)
    assert response["FailedRecordCount"] == 0


def _trades(minute: int, count: int, symbol: str = "BTCUSDT", first_id: int = 1) -> list[tuple[str, str]]:
    at = T0 + timedelta(minutes=minute)
    return [
        (symbol, trade(at + timedelta(seconds=i), 60_000 + i, "0.5", symbol=symbol, trade_id=first_id + i).to_json())
        for i in range(count)
    ]


def _runner(spark: SparkSession, config: CoattailConfig) -> PipelineRunner:
    detector = TradeCountDetector()
    detector.configure(config)
    return PipelineRunner(
        spark, config, detectors=[detector], router=AlertRouter.from_config(config, clock=lambda: WRITTEN_AT)
    )


def _alert_items(stack: LocalStack) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb", region_name="us-east-1", endpoint_url=stack.endpoint_url).Table(
        stack.config.dynamodb.table_name
    )
    return sorted(table.scan()["Items"], key=lambda item: str(item["detected_at"]))


def _table_rows(config: CoattailConfig, name: str) -> list[dict[str, Any]]:
    catalog = open_catalog(config.iceberg, config.aws)
    return catalog.load_table((config.iceberg.database, name)).scan().to_arrow().to_pylist()


def test_events_flow_to_dynamodb_iceberg_and_the_dlq(
    spark: SparkSession, stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    invalid = [
        ("BTCUSDT", "this is not json"),
        ("BTCUSDT", json.dumps({**json.loads(_trades(0, 1)[0][1]), "price": -5.0, "event_id": "neg"})),
        ("DOGEUSDT", _trades(0, 1, symbol="DOGEUSDT", first_id=900)[0][1]),
    ]
    _put(stack, _trades(0, 3) + _trades(0, 1, symbol="ETHUSDT", first_id=500) + _trades(1, 2, first_id=10) + invalid)
    _put(stack, _trades(3, 1, first_id=20))  # moves the watermark past minutes 0 and 1
    with caplog.at_level("WARNING", logger="coattail_framework.pipeline.runner"):
        stats = _runner(spark, stack.config).run(drain=True, handle_signals=False)
    assert "not delivered in time" not in caplog.text

    raw = _table_rows(stack.config, "raw_trades")
    assert sorted(row["event_id"] for row in raw) == sorted(
        [f"binance:BTCUSDT:{i}" for i in (1, 2, 3, 10, 11, 20)] + ["binance:ETHUSDT:500"]
    )
    counts = {
        (str(r["window_start"])[11:16], r["symbol"]): r["trades"] for r in _table_rows(stack.config, "trade_counts")
    }
    assert counts == {("23:54", "BTCUSDT"): 3, ("23:54", "ETHUSDT"): 1, ("23:55", "BTCUSDT"): 2}

    items = _alert_items(stack)
    expected_ids = [
        make_alert_id("MOD-T01", "binance", "BTCUSDT", "2024-08-08 23:54:00"),
        make_alert_id("MOD-T01", "binance", "BTCUSDT", "2024-08-08 23:55:00"),
    ]
    assert [item["alert_id"] for item in items] == expected_ids
    first = items[0]
    assert first["detected_at"] == "2024-08-08T23:55:00.000000Z"
    assert int(first["ttl_epoch"]) == int(datetime(2027, 1, 5, 14, 0, tzinfo=UTC).timestamp())
    assert (first["severity"], first["module_id"], first["alert_type"]) == ("medium", "MOD-T01", "busy_window")
    assert json.loads(first["details"])["trades"] == 3
    assert sorted(r["alert_id"] for r in _table_rows(stack.config, "alerts")) == sorted(expected_ids)

    dlq = Path(stack.config.storage.raw_zone) / "dlq"
    reasons = sorted(p.name for p in dlq.iterdir())
    assert reasons == ["validity_json", "validity_price_positive", "validity_symbol_allowed"]
    garbage = [json.loads(line) for p in (dlq / "validity_json").rglob("*.json") for line in p.read_text().splitlines()]
    assert [(g["raw"], g["dq_failed_rules"][0]) for g in garbage] == [("this is not json", "validity_json")]
    assert stats.quality["total"] == 10
    assert stats.quality["invalid"] == 3
    assert stats.dead_letters == {"validity_json": 1, "validity_price_positive": 1, "validity_symbol_allowed": 1}

    # Late events: the watermark is at 23:57:55; a trade at 23:54:30 is dropped and counted.
    _put(stack, _trades(0, 1, first_id=30) + _trades(4, 1, first_id=40))
    again = _runner(spark, stack.config).run(drain=True, handle_signals=False)
    assert again.late_rows["detector-trade-count"] == 1
    assert len(_alert_items(stack)) == 2


class _CrashAfterHotWriteError(Exception):
    pass


def test_crash_mid_batch_then_restart_writes_everything_once(spark: SparkSession, stack: LocalStack) -> None:
    _put(stack, _trades(0, 3) + _trades(1, 2, first_id=10) + _trades(3, 1, first_id=20))
    crashing = _runner(spark, stack.config)
    route = crashing.router.route
    calls = {"n": 0}

    def route_then_crash(alerts: DataFrame, batch_id: int, *, writer: str) -> Any:
        result = route(alerts, batch_id, writer=writer)
        if result.written:
            calls["n"] += 1
            raise _CrashAfterHotWriteError("crash between the alert writes and Spark's commit")
        return result

    crashing.router.route = route_then_crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="crash between the alert writes"):
        crashing.run(drain=True, handle_signals=False)
    assert calls["n"] == 1

    restarted = _runner(spark, stack.config)
    stats = restarted.run(drain=True, handle_signals=False)
    assert stats.duplicates == 2
    items = _alert_items(stack)
    assert len(items) == 2
    assert len({item["alert_id"] for item in items}) == 2
    alerts = _table_rows(stack.config, "alerts")
    assert sorted(r["alert_id"] for r in alerts) == sorted(item["alert_id"] for item in items)
    assert len(_table_rows(stack.config, "trade_counts")) == 2
    assert len(_table_rows(stack.config, "raw_trades")) == 6


def _with_triggers(config: CoattailConfig, **streaming: Any) -> CoattailConfig:
    return config.model_copy(update={"streaming": config.streaming.model_validate(streaming)})


def test_each_query_runs_on_its_own_trigger(spark: SparkSession, stack: LocalStack) -> None:
    config = _with_triggers(stack.config, trigger_seconds=2.0, query_trigger_seconds={"trade-count": 0.25})
    runner = _runner(spark, config)
    assert runner.trigger_seconds() == {"ingest": 2.0, "detector-trade-count": 0.25}
    # min_poll_interval_ms is 200: ingest reads once per 2 s; the detector reads raw_trades, no shard.
    assert runner.reads_per_shard_second() == pytest.approx(0.5)
    on_kinesis = _with_triggers(
        stack.config, trigger_seconds=2.0, query_trigger_seconds={"trade-count": 0.25}, detector_input="kinesis"
    )
    assert _runner(spark, on_kinesis).reads_per_shard_second() == pytest.approx(0.5 + 4.0)  # and once per 0.25 s
    try:
        queries = runner.start()
        triggers = {q.name: q._jsq.streamingQuery().trigger().toString() for q in queries}
    finally:
        runner.stop(timeout_seconds=0)
    assert triggers == {"ingest": "ProcessingTimeTrigger(2000)", "detector-trade-count": "ProcessingTimeTrigger(250)"}


def test_queries_on_one_interval_take_turns_within_it(
    spark: SparkSession, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _with_triggers(stack.config, trigger_seconds=2.0)
    runner = _runner(spark, config)
    assert runner.read_delays() == {"ingest": 0.0, "detector-trade-count": 1.0}
    apart = _with_triggers(stack.config, trigger_seconds=2.0, query_trigger_seconds={"trade-count": 0.5})
    assert _runner(spark, apart).read_delays() == {"ingest": 0.0, "detector-trade-count": 0.0}
    off = _with_triggers(stack.config, trigger_seconds=2.0, stagger_triggers=False)
    assert _runner(spark, off).read_delays() == {"ingest": 0.0, "detector-trade-count": 0.0}
    jvm_source = config.model_copy(update={"kinesis": config.kinesis.model_copy(update={"source": "aws-kinesis"})})
    assert _runner(spark, jvm_source).read_delays() == {"ingest": 0.0, "detector-trade-count": 0.0}

    asked: list[tuple[str, Any]] = []
    read, frame = runner._records, runner.detector_frame

    def records(read_delay_seconds: float = 0.0) -> DataFrame:
        asked.append(("kinesis", read_delay_seconds))
        return read(read_delay_seconds)

    def detector_frame(detector: Any, read_delay_seconds: float = 0.0) -> DataFrame:
        asked.append(("raw_trades", read_delay_seconds))
        return frame(detector, read_delay_seconds)

    monkeypatch.setattr(runner, "_records", records)
    monkeypatch.setattr(runner, "detector_frame", detector_frame)
    try:
        runner.start()
    finally:
        runner.stop(timeout_seconds=0)
    # ingest, then the detector: each source's readDelayMs (test_units, tests/feed)
    assert asked == [("kinesis", 0.0), ("raw_trades", 1.0)]


def test_triggers_that_exceed_the_shard_read_limit_are_reported_and_a_stopped_runner_leaves_no_listener(
    spark: SparkSession, stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    config = _with_triggers(stack.config, trigger_seconds=0.1, detector_input="kinesis")
    runner = _runner(spark, config)
    assert runner.reads_per_shard_second() == pytest.approx(10.0)  # two queries, each at most every 200 ms
    listeners = len(spark.streams._jsqm.listListeners())  # type: ignore[attr-defined]
    try:
        with caplog.at_level("WARNING", logger="coattail_framework.pipeline.runner"):
            runner.start()
        assert len(spark.streams._jsqm.listListeners()) == listeners + 1  # type: ignore[attr-defined]
    finally:
        runner.stop(timeout_seconds=0)
    assert "allow 10.0 GetRecords/s per shard, above Kinesis's 5" in caplog.text
    # A stopped runner leaves no listener on the session (it would take later runners' progress).
    assert len(spark.streams._jsqm.listListeners()) == listeners  # type: ignore[attr-defined]


def test_a_trigger_for_an_unknown_query_is_refused_and_one_for_an_inactive_module_is_not(
    spark: SparkSession, stack: LocalStack, small_tier_declared: None
) -> None:
    config = _with_triggers(stack.config, query_trigger_seconds={"wale": 0.5, "ingest": 3})
    with pytest.raises(
        ConfigError, match=r"names wale, neither ingest nor a module or its early query; known: .*\bingest, .*\bwhale\b"
    ):
        _runner(spark, config)
    inactive = _with_triggers(stack.config, query_trigger_seconds={"spread": 10})  # a module of the tier, not run here
    assert _runner(spark, inactive).trigger_seconds() == {"ingest": 1.0, "detector-trade-count": 1.0}


def test_a_retention_for_a_table_the_job_does_not_write_is_reported(
    spark: SparkSession, stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    def with_retention(*tables: str) -> CoattailConfig:
        maintenance = stack.config.iceberg.maintenance.model_copy(
            update={"table_retention": {table: SnapshotRetention(keep_hourly_days=7) for table in tables}}
        )
        iceberg = stack.config.iceberg.model_copy(update={"maintenance": maintenance})
        return stack.config.model_copy(update={"iceberg": iceberg})

    with caplog.at_level("WARNING", logger="coattail_framework.pipeline.runner"):
        _runner(spark, with_retention("raw_trades", "alerts", "trade_counts"))
        assert "table_retention" not in caplog.text
        _runner(spark, with_retention("raw_trade", "trade_counts"))
    assert (
        "iceberg.maintenance.table_retention names raw_trade, which this job does not write "
        "(it writes alerts, raw_trades, trade_counts)" in caplog.text
    )


def test_the_last_executed_batch_skips_a_final_trigger_that_ran_no_batch() -> None:
    ran = {"addBatch": 120, "triggerExecution": 300}
    progresses = [
        {"batchId": 5, "durationMs": ran},
        {"batchId": 6, "durationMs": ran},
        {"batchId": 7, "durationMs": {"latestOffset": 3, "triggerExecution": 4}},
    ]
    assert last_executed_batch(progresses) == 6
    assert last_executed_batch(progresses[:1]) == 5
    assert last_executed_batch(progresses[2:]) == -1
    assert last_executed_batch([]) == -1
