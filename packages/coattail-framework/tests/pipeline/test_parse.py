"""parse_trades: payloads that are and are not TradeEvents, and one JSON parse per record in the valid-trade plan."""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession

from coattail_framework.config.model import CoattailConfig
from coattail_framework.kinesis.source import KINESIS_SCHEMA
from coattail_framework.pipeline.parse import parse_trades
from coattail_framework.quality import DataQualityChecker
from coattail_framework.testing import trade

ARRIVAL = datetime(2024, 8, 8, 23, 54, 16, tzinfo=timezone.utc)
CONFIG = CoattailConfig.model_validate(
    {"symbols": {"BTC/USDT": {"binance": "BTCUSDT"}}, "exchanges": {"binance": {"connector": "binance"}}}
)


def records(spark: SparkSession, payloads: list[bytes | None]) -> DataFrame:
    """Kinesis source rows holding ``payloads``; sequence numbers 1, 2, ... in order."""
    rows = [(payload, "s", "k", str(n), ARRIVAL, "shardId-0") for n, payload in enumerate(payloads, start=1)]
    return spark.createDataFrame(rows, KINESIS_SCHEMA)


def test_payloads_parse_or_keep_their_text(spark: SparkSession) -> None:
    event = trade(ARRIVAL, 60_000, 0.5, trade_id="7")
    payloads = [event.to_json().encode(), b"not json", None, b"[1, 2]", b'{"event_id": "x"}']
    rows = {row["kinesis_sequence"]: row for row in parse_trades(records(spark, payloads)).collect()}

    parsed = rows["1"]
    assert parsed["parse_ok"] is True
    assert (parsed["event_id"], parsed["trade_id"], parsed["exchange"]) == (event.event_id, "7", "binance")
    assert parsed["timestamp"] == event.timestamp.replace(tzinfo=None)
    assert (parsed["kinesis_arrival"], parsed["kinesis_shard"]) == (ARRIVAL.replace(tzinfo=None), "shardId-0")
    assert [(rows[n]["parse_ok"], rows[n]["raw"], rows[n]["event_id"]) for n in ("2", "3", "4")] == [
        (False, "not json", None),
        (False, None, None),
        (False, "[1, 2]", None),
    ]
    # Well-formed JSON missing fields parses: the quality rules reject it, with reasons.
    assert (rows["5"]["parse_ok"], rows["5"]["event_id"], rows["5"]["price"]) == (True, "x", None)


def test_valid_trades_parse_each_record_once(spark: SparkSession) -> None:
    checker = DataQualityChecker(spark, CONFIG)
    parsed = parse_trades(records(spark, [trade(ARRIVAL, 60_000, 0.5).to_json().encode()]))
    valid, _ = DataQualityChecker.split(checker.flag(parsed))
    filtered = valid.filter("quote_volume > 1000 AND symbol = 'BTCUSDT'")

    plan = filtered._jdf.queryExecution().optimizedPlan().toString()

    assert plan.count("from_json(") == 1
    assert filtered.count() == 1
