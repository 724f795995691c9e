"""Early queries: a detector's early alerts reach DynamoDB once, beside its stateful query; the carry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pyarrow as pa
import pytest
from pydantic import BaseModel, ConfigDict
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from coattail_devstack.localstack import LocalStack, start_local_stack
from coattail_devstack.testing import trade
from coattail_devstack.testing.detectors import TradeCountDetector
from coattail_framework.alerts import alert_frame, make_alert_id
from coattail_framework.config.model import CoattailConfig
from coattail_framework.detector import BaseDetector, EarlyAlerts
from coattail_framework.iceberg import open_catalog, to_arrow_schema
from coattail_framework.metrics import MetricsPublisher
from coattail_framework.partitioning import day
from coattail_framework.pipeline import PipelineRunner
from coattail_framework.pipeline.early import EarlyAlertHandler
from coattail_framework.pipeline.listener import PipelineStats
from coattail_framework.resilience import wait_until
from coattail_framework.schemas import UNIFIED_TRADE_EVENT
from coattail_framework.sinks.dynamodb import WriteCounts

T0 = datetime(2024, 8, 8, 23, 54, 0, tzinfo=UTC)
MIN_USD = 100_000


class BigTradeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BigTradeDetector(BaseDetector[BigTradeSettings]):
    """One alert per trade of at least $100K: stateless, so its early path alerts the same trades at once."""

    module_id = "MOD-T02"
    module_name = "big-trade"
    alert_types = ("big_trade",)
    output_table = "big_trades"
    output_schema = UNIFIED_TRADE_EVENT
    partition_spec = (day("timestamp"),)
    config_model: ClassVar[type[BaseModel]] = BigTradeSettings

    def process(self, events: DataFrame) -> DataFrame:
        return events.where(F.col("quote_volume") >= MIN_USD)

    def build_alerts(self, output: DataFrame) -> DataFrame:
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type="big_trade",
            id_parts=[F.col("event_id")],
            symbol=F.col("symbol"),
            exchange=F.col("exchange"),
            severity=F.lit("high"),
            detected_at=F.col("timestamp"),
            message=F.col("event_id"),
            details=[F.col("quote_volume")],
        )

    def early_alerts(self, trades: DataFrame) -> EarlyAlerts:
        return EarlyAlerts(alerts=self.build_alerts(self.process(trades)), carry=trades.limit(0))


class CarryRecorder(BaseDetector[BigTradeSettings]):
    """Records the event ids each early batch received; carries the batch's last trade."""

    module_id = "MOD-T03"
    module_name = "carry-recorder"
    alert_types = ("none",)
    output_table = "none"
    output_schema = UNIFIED_TRADE_EVENT
    partition_spec = ()
    config_model: ClassVar[type[BaseModel]] = BigTradeSettings
    received: ClassVar[list[list[str]]] = []

    def process(self, events: DataFrame) -> DataFrame:
        return events

    def build_alerts(self, output: DataFrame) -> DataFrame:
        return BigTradeDetector().build_alerts(output.limit(0))

    def early_alerts(self, trades: DataFrame) -> EarlyAlerts:
        self.received.append(sorted(row.event_id for row in trades.select("event_id").collect()))
        last = trades.orderBy(F.col("trade_id").cast("long").desc()).limit(1)
        return EarlyAlerts(alerts=self.build_alerts(trades), carry=last, shared=trades)


def _frame(spark: SparkSession, *trade_ids: int) -> DataFrame:
    rows = [trade(T0, 60_000, "0.1", trade_id=n).model_dump(mode="python") for n in trade_ids]
    for row in rows:
        for name in ("price", "quantity", "quote_volume"):
            row[name] = float(row[name])
    table = pa.Table.from_pylist(rows, schema=to_arrow_schema(UNIFIED_TRADE_EVENT))
    return spark.createDataFrame(table.to_pandas(), schema=UNIFIED_TRADE_EVENT)


def test_the_carry_joins_the_next_batch_only(spark: SparkSession) -> None:
    detector = CarryRecorder()
    detector.configure(CoattailConfig())
    CarryRecorder.received.clear()
    handler = EarlyAlertHandler(spark, detector, lambda alerts: WriteCounts(written=alerts.count()))

    handler(_frame(spark, 1, 2), 0)
    handler(_frame(spark, 3), 1)  # 2 carried into batch 1
    handler(_frame(spark, 4), 3)  # batch 2 never came (a restart): 3's carry is dropped
    handler(_frame(spark, 5), 4)

    assert CarryRecorder.received == [
        ["binance:BTCUSDT:1", "binance:BTCUSDT:2"],
        ["binance:BTCUSDT:2", "binance:BTCUSDT:3"],
        ["binance:BTCUSDT:4"],
        ["binance:BTCUSDT:4", "binance:BTCUSDT:5"],
    ]
    assert handler.carried_rows == 1


def test_a_failed_early_batch_is_logged_counted_and_the_query_goes_on(
    spark: SparkSession, caplog: pytest.LogCaptureFixture, moto_endpoint: str
) -> None:
    detector = CarryRecorder()
    detector.configure(CoattailConfig())
    CarryRecorder.received.clear()
    puts: list[int] = []

    def put_alerts(alerts: DataFrame) -> WriteCounts:
        if len(puts) == 1:
            puts.append(-1)
            raise RuntimeError("DynamoDB unavailable")
        puts.append(alerts.count())
        return WriteCounts(written=0)

    stats = PipelineStats()
    config = CoattailConfig.model_validate(
        {"metrics": {"namespace": "CoatTailEarlyFailureTest"}, "aws": {"endpoint_url": moto_endpoint}}
    )
    metrics = MetricsPublisher(config.metrics, config.aws)
    handler = EarlyAlertHandler(spark, detector, put_alerts, stats, metrics)

    handler(_frame(spark, 1, 2), 0)
    handler(_frame(spark, 3), 1)  # raises: logged, counted, the carry (3) dropped
    handler(_frame(spark, 4), 2)

    assert CarryRecorder.received == [
        ["binance:BTCUSDT:1", "binance:BTCUSDT:2"],
        ["binance:BTCUSDT:2", "binance:BTCUSDT:3"],
        ["binance:BTCUSDT:4"],
    ]
    assert puts == [0, -1, 0]
    assert stats.snapshot()["early_failures"] == {"MOD-T03": 1}
    cloudwatch = boto3.client("cloudwatch", region_name=config.aws.region, endpoint_url=moto_endpoint)
    published = cloudwatch.list_metrics(Namespace="CoatTailEarlyFailureTest")["Metrics"]
    assert [(m["MetricName"], m["Dimensions"]) for m in published] == [
        ("early_failures", [{"Name": "query", "Value": "early-carry-recorder"}])
    ]
    assert metrics.failed_publishes == 0
    failed = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in failed] == [
        "early-carry-recorder: batch 1 failed; its orders are left to the detector's stateful query"
    ]
    assert failed[0].exc_info is not None
    assert str(failed[0].exc_info[1]) == "DynamoDB unavailable"
    assert handler.carried_rows == 1


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    config = CoattailConfig.model_validate(
        {
            "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}},
            "exchanges": {"binance": {"connector": "binance"}},
            "kinesis": {"stream_name": "trades-early", "shard_count": 1, "min_poll_interval_ms": 200},
            "dynamodb": {"table_name": "alerts-early"},
            "quality": {"event_time_reference": "ingestion"},  # 2024 trades put today
            "metrics": {"enabled": False},
            "streaming": {"query_trigger_seconds": {"big-trade-early": 0.25, "big-trade": 2}},
        }
    )
    with start_local_stack(config, tmp_path / "stack") as running:
        yield running


def _runner(spark: SparkSession, config: CoattailConfig, *detectors: BaseDetector[Any]) -> PipelineRunner:
    for detector in detectors:
        detector.configure(config)
    return PipelineRunner(spark, config, detectors=list(detectors))


def test_early_alerts_are_put_once_and_the_stateful_query_stores_every_alert(
    spark: SparkSession, stack: LocalStack
) -> None:
    amounts = [0.5, 2.0, 0.1, 1.7, 3.0]  # BTC at $60,000: trades 2, 4 and 5 are at least $100K
    records = [
        {
            "Data": trade(T0 + timedelta(seconds=n), 60_000, str(btc), trade_id=n).to_json().encode(),
            "PartitionKey": "BTCUSDT",
        }
        for n, btc in enumerate(amounts, start=1)
    ]
    kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=stack.endpoint_url)
    kinesis.put_records(StreamName=stack.config.kinesis.stream_name, Records=records)

    runner = _runner(spark, stack.config, BigTradeDetector(), TradeCountDetector())
    assert runner.trigger_seconds() == {
        "ingest": 1.0,
        "detector-big-trade": 2.0,
        "detector-trade-count": 1.0,
        "early-big-trade": 0.25,
    }
    # Live (a drain runs no early query, ADR-041): until both queries handled all three alerts.
    runner.start()
    try:
        handled = wait_until(lambda: runner.stats.duplicates == 3 or runner._failed() is not None, 120, interval_s=0.2)
    finally:
        runner.stop()
    assert handled
    assert runner._failed() is None
    stats = runner.stats

    expected = sorted(make_alert_id("MOD-T02", f"binance:BTCUSDT:{n}") for n in (2, 4, 5))
    table = boto3.resource("dynamodb", region_name="us-east-1", endpoint_url=stack.endpoint_url).Table(
        stack.config.dynamodb.table_name
    )
    items = [item for item in table.scan()["Items"] if item["module_id"] == "MOD-T02"]
    assert sorted(item["alert_id"] for item in items) == expected
    assert stats.input_rows["early-big-trade"] == 5
    # Each alert is put twice (early query, stateful query; either may come first): one new item, one duplicate.
    assert stats.duplicates == 3
    assert stats.alerts[("MOD-T02", "high")] == 3
    catalog = open_catalog(stack.config.iceberg, stack.config.aws)
    stored = catalog.load_table((stack.config.iceberg.database, "alerts")).scan().to_arrow().to_pylist()
    assert sorted(row["alert_id"] for row in stored if row["module_id"] == "MOD-T02") == expected


def test_a_drain_runs_no_early_query_and_the_stateful_query_puts_every_alert(
    spark: SparkSession, stack: LocalStack
) -> None:
    records = [
        {
            "Data": trade(T0 + timedelta(seconds=n), 60_000, str(btc), trade_id=n).to_json().encode(),
            "PartitionKey": "BTCUSDT",
        }
        for n, btc in enumerate([0.5, 2.0, 0.1], start=101)
    ]
    kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=stack.endpoint_url)
    kinesis.put_records(StreamName=stack.config.kinesis.stream_name, Records=records)
    runner = _runner(spark, stack.config, BigTradeDetector())

    stats = runner.run(drain=True, handle_signals=False)

    assert [query.name for query in runner.queries] == ["ingest", "detector-big-trade"]
    assert "early-big-trade" not in stats.input_rows
    table = boto3.resource("dynamodb", region_name="us-east-1", endpoint_url=stack.endpoint_url).Table(
        stack.config.dynamodb.table_name
    )
    assert table.get_item(Key={"alert_id": make_alert_id("MOD-T02", "binance:BTCUSDT:102")}).get("Item") is not None


def test_early_queries_can_be_switched_off(spark: SparkSession, stack: LocalStack) -> None:
    streaming = stack.config.streaming.model_copy(update={"early_alerts": False})
    runner = _runner(spark, stack.config.model_copy(update={"streaming": streaming}), BigTradeDetector())

    assert runner.early_detectors() == []
    assert runner.trigger_seconds() == {"ingest": 1.0, "detector-big-trade": 2.0}
