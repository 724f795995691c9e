"""MOD-002's two paths agree when the stateful query drops an order's fills as late (ADR-029).

The early query (the job's ``EarlyAlertHandler``) and the stateful query (``process`` then
the job's ``AlertRouter``) share one ``EarlyLedger``, as in ``PipelineRunner``; alerts go to
DynamoDB (moto on 127.0.0.1) and Iceberg (pyiceberg, SQLite catalog). Each query reads its
own files, one micro-batch per file, so the test fixes which trades share a batch and the
order in which the two queries run; the stateful query's watermark comes from its
checkpoint's offset log, as in the job.

Watermark delay 2 s. ETHUSDT trades move the stateful query's watermark; the BTCUSDT whale
order at T (fills 11-12, buys) sits between sells 10 and 13, so one early batch proves it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from coattail_detector_whale import WhaleDetector
from coattail_devstack.localstack import LocalStack, start_local_stack
from coattail_devstack.testing import run_detector_stream, trade
from coattail_devstack.testing.stream import EventLike, event_stream, write_event_batches
from coattail_framework.alerts import as_parts, make_alert_id
from coattail_framework.aws.clients import aws_client
from coattail_framework.config import CoattailConfig
from coattail_framework.iceberg import open_catalog
from coattail_framework.pipeline.early import CheckpointWatermarks, EarlyAlertHandler, EarlyLedger
from coattail_framework.sinks import AlertRouter
from coattail_framework.sinks.dynamodb import WriteCounts
from coattail_framework.sinks.router import DetectorBatchResult

T = datetime(2024, 8, 9, 0, 10, tzinfo=UTC)
SYMBOLS = {"BTC/USDT": {"binance": "BTCUSDT"}, "ETH/USDT": {"binance": "ETHUSDT"}}
WRITER = "detector-whale"


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def eth(seconds: float, trade_id: int) -> EventLike:
    """A small ETHUSDT trade: it only moves the stateful query's watermark."""
    return trade(at(seconds), 2500, 0.1, symbol="ETHUSDT", trade_id=trade_id)


def btc(trade_id: int, btc_quantity: float, side: str = "buy", seconds: float = 0.0) -> EventLike:
    return trade(at(seconds), 60000, btc_quantity, trade_id=trade_id, side=side)


SELL_BEFORE = btc(10, 0.1, "sell", seconds=-0.1)
WHALE = [btc(11, 2.0), btc(12, 3.0)]  # $120,000 + $180,000 at T: one taker BUY order
SELL_AFTER = btc(13, 0.1, "sell", seconds=0.1)
WHALE_ID = make_alert_id(
    "MOD-002", *as_parts(["binance", "BTCUSDT", "buy", int(T.timestamp()) * 1_000_000, "11", None])
)
WHOLE_ORDER = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "side": "buy",
    "order_time": T.replace(tzinfo=None),
    "notional": 300_000.0,
    "base_quantity": 5.0,
    "fill_count": 2,
    "first_trade_id": "11",
    "last_trade_id": "12",
    "first_price": 60000.0,
    "last_price": 60000.0,
    "vwap_price": 60000.0,
    "price_impact_bps": 0.0,
    "taker_order_id": None,
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    # moto keeps its state per process: each test its own stream and table.
    suffix = uuid.uuid4().hex[:8]
    config = CoattailConfig.model_validate(
        {
            "symbols": SYMBOLS,
            "kinesis": {"stream_name": f"trades-whale-late-{suffix}", "shard_count": 1},
            "dynamodb": {"table_name": f"alerts-whale-late-{suffix}"},
            "metrics": {"enabled": False},
        }
    )
    with start_local_stack(config, tmp_path / "stack") as running:
        yield running


class WhaleJob:
    """MOD-002's early and stateful queries of the stream job, sharing a ledger, run one at a time."""

    def __init__(self, spark: SparkSession, stack: LocalStack, root: Path) -> None:
        self.spark, self.root, self.config = spark, root, stack.config
        self.detector = WhaleDetector()
        self.detector.configure(stack.config)
        self.router = AlertRouter.from_config(stack.config)
        self.checkpoint = root / "checkpoints" / WRITER
        self.ledger = EarlyLedger(spark, self.detector, CheckpointWatermarks(spark, str(self.checkpoint)))
        self.early = EarlyAlertHandler(spark, self.detector, self._put, ledger=self.ledger)
        self.early_puts: list[int] = []
        self.stateful_results: list[DetectorBatchResult] = []
        self._stateful_batches: list[list[EventLike]] = []

    def _put(self, alerts: DataFrame) -> WriteCounts:
        counts = self.router.put_alerts(alerts)
        self.early_puts.append(counts.written)
        return counts

    def run_early(self, batch: list[EventLike], batch_id: int) -> None:
        """One early micro-batch through the early query's handler, as the job calls it."""
        frame = event_stream(self.spark, write_event_batches([batch], self.root / f"early-{batch_id}"))
        query = (
            frame.writeStream.foreachBatch(lambda rows, _: self.early(rows, batch_id))
            .trigger(availableNow=True)
            .option("checkpointLocation", str(self.root / f"early-checkpoint-{batch_id}"))
            .start()
        )
        query.awaitTermination()
        assert query.exception() is None

    def run_stateful(self, *batches: list[EventLike]) -> None:
        """The stateful query over the files it already read plus ``batches`` (one micro-batch each)."""
        self._stateful_batches.extend(batches)
        events = event_stream(self.spark, write_event_batches(self._stateful_batches, self.root / "stateful"))

        def handler(batch: DataFrame, batch_id: int) -> None:
            output = self.ledger.record(batch, batch_id)
            self.stateful_results.append(
                self.router.route_detector_batch(self.detector, output, batch_id, writer=WRITER)
            )

        query = (
            self.detector.process(events)
            .writeStream.outputMode("append")
            .foreachBatch(handler)
            .trigger(availableNow=True)
            .option("checkpointLocation", str(self.checkpoint))
            .start()
        )
        query.awaitTermination()
        assert query.exception() is None

    def dynamodb_items(self) -> list[dict[str, Any]]:
        table = aws_client("dynamodb", region=self.config.aws.region, endpoint_url=self.config.aws.endpoint_url)
        items = table.scan(TableName=self.config.dynamodb.table_name)["Items"]
        return [{name: next(iter(value.values())) for name, value in item.items()} for item in items]

    def iceberg_rows(self, table: str) -> list[dict[str, Any]]:
        catalog = open_catalog(self.config.iceberg, self.config.aws)
        identifier = (self.config.iceberg.database, table)
        if not catalog.table_exists(identifier):
            return []
        rows: list[dict[str, Any]] = catalog.load_table(identifier).scan().to_arrow().to_pylist()
        return rows


def whale_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "order_time": row["order_time"].replace(tzinfo=None)} for row in rows]


def test_an_order_alerted_early_whose_fills_come_late_is_recorded_by_the_stateful_query(
    spark: SparkSession, stack: LocalStack, tmp_path: Path
) -> None:
    job = WhaleJob(spark, stack, tmp_path)
    job.run_stateful([eth(-5, 1)])  # the stateful query's first batch: watermark T - 7 s
    assert job.ledger.closed_through_us is not None

    job.run_early([SELL_BEFORE, *WHALE, SELL_AFTER], 0)  # proves 11-12: put at once, registered
    assert job.early_puts == [1]
    assert [item["alert_id"] for item in job.dynamodb_items()] == [WHALE_ID]

    # ETH at T + 10 s moves the watermark to T + 8 s (from the next batch on, which records the early
    # alert); Spark drops fills at or before the previous batch's watermark: the order's fills are late.
    job.run_stateful([eth(10, 2)], [eth(11, 3)], [SELL_BEFORE, *WHALE, SELL_AFTER], [eth(30, 4)])

    items = job.dynamodb_items()
    assert [item["alert_id"] for item in items] == [WHALE_ID]
    alerts = job.iceberg_rows("alerts")
    assert [row["alert_id"] for row in alerts] == [WHALE_ID]
    assert whale_rows(job.iceberg_rows("whale_trades")) == [WHOLE_ORDER]
    assert json.loads(alerts[0]["details"]) == json.loads(str(items[0]["details"]))
    # The batch that passed T recorded the early alert: a DynamoDB duplicate, one row in each table.
    recorded = [(r.module_rows, r.alerts.written, r.alerts.duplicates) for r in job.stateful_results if r.alerts]
    assert recorded == [(1, 0, 1)]
    # Batches: ETH -5 s, no-data (watermark T - 7 s), ETH +10 s, ETH +11 s (watermark T + 8 s: records
    # the order), the late BTCUSDT fills (dropped), ETH +30 s, no-data.
    assert [r.module_rows for r in job.stateful_results] == [0, 0, 0, 1, 0, 0, 0]
    assert job.ledger.pending_alerts == 0


def test_without_the_ledger_the_stateful_query_drops_that_order(spark: SparkSession, tmp_path: Path) -> None:
    detector = WhaleDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS}))
    batches = [[eth(-5, 1)], [eth(10, 2)], [eth(11, 3)], [SELL_BEFORE, *WHALE, SELL_AFTER], [eth(30, 4)]]

    run = run_detector_stream(spark, detector, batches, tmp_path)

    assert run.outputs == []  # every BTCUSDT fill was late: what the early query alerted is nowhere else


def test_a_partly_late_order_is_recorded_whole(spark: SparkSession, stack: LocalStack, tmp_path: Path) -> None:
    job = WhaleJob(spark, stack, tmp_path)
    job.run_stateful([eth(-5, 1)])
    job.run_early([SELL_BEFORE, *WHALE, SELL_AFTER], 0)

    # The stateful query reads fill 11 in the batch whose watermark (T + 8 s) passes T: it emits the
    # order with that fill alone ($120,000, same alert id); fill 12 comes in the next batch, late.
    job.run_stateful([eth(10, 2)], [SELL_BEFORE, WHALE[0]], [WHALE[1], SELL_AFTER], [eth(30, 3)])

    assert [item["alert_id"] for item in job.dynamodb_items()] == [WHALE_ID]
    assert [row["alert_id"] for row in job.iceberg_rows("alerts")] == [WHALE_ID]
    assert whale_rows(job.iceberg_rows("whale_trades")) == [WHOLE_ORDER]
    assert json.loads(job.iceberg_rows("alerts")[0]["details"])["notional"] == 300_000.0


def test_an_order_proven_after_the_stateful_query_passed_it_is_alerted_nowhere(
    spark: SparkSession, stack: LocalStack, tmp_path: Path
) -> None:
    job = WhaleJob(spark, stack, tmp_path)
    job.run_stateful([eth(10, 2)])  # watermark T + 8 s after its no-data batch: T is decided
    assert job.ledger.closed_through_us == int(at(8).timestamp()) * 1_000_000

    job.run_early([SELL_BEFORE, *WHALE, SELL_AFTER], 0)
    # Late: dropped. (Not in the first batch of the query's run: Spark keeps that batch's late rows.)
    job.run_stateful([eth(11, 3)], [SELL_BEFORE, *WHALE, SELL_AFTER], [eth(30, 4)])

    assert job.early_puts == []  # nothing admitted: no put at all
    assert job.dynamodb_items() == []
    assert job.iceberg_rows("alerts") == []
    assert job.iceberg_rows("whale_trades") == []


def test_an_early_order_the_stateful_query_keeps_is_stored_once(
    spark: SparkSession, stack: LocalStack, tmp_path: Path
) -> None:
    job = WhaleJob(spark, stack, tmp_path)
    job.run_stateful([eth(-5, 1)])
    job.run_early([SELL_BEFORE, *WHALE, SELL_AFTER], 0)
    job.run_stateful([SELL_BEFORE, *WHALE, SELL_AFTER], [eth(30, 3)])  # on time: the stateful row is the same

    assert [item["alert_id"] for item in job.dynamodb_items()] == [WHALE_ID]
    assert [row["alert_id"] for row in job.iceberg_rows("alerts")] == [WHALE_ID]
    assert whale_rows(job.iceberg_rows("whale_trades")) == [WHOLE_ORDER]
