"""parse_trades: payloads that are and are not TradeEvents, and one JSON parse per record in the valid-trade plan."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession

from coattail_devstack.testing import trade
from coattail_framework.config.model import CoattailConfig
from coattail_framework.pipeline.parse import parse_trades
from coattail_framework.quality import DataQualityChecker
from coattail_kinesis.source import KINESIS_SCHEMA

ARRIVAL = datetime(2024, 8, 8, 23, 54, 16, tzinfo=UTC)
CONFIG = CoattailConfig.model_validate(
    {"symbols": {"BTC/USDT": {"binance": "BTCUSDT"}}, "exchanges": {"binance": {"connector": "binance"}}}
)


def records(spark: SparkSession, payloads: list[bytes | None]) -> DataFrame:
    """Kinesis source rows holding ``payloads``; sequence numbers 1, 2, ... in order."""
    rows = [(payload, "s", "k", str(n), ARRIVAL, "shardId-0") for n, payload in enumerate(payloads, start=1)]
    return spark.createDataFrame(rows, KINESIS_SCHEMA)


def test_payloads_parse_or_keep_their_text(spark: SparkSession) -> None:
    event = trade(ARRIVAL, 60_000, 0.5, trade_id="7")
    payloads = [event.to_json().encode(), b"not json", None, b"[1, 2]", b'{"event_id": "x"}', b'"text"', b"[]"]
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
    # JSON that is not an object is not a TradeEvent, although from_json reads it as nulls.
    assert [(rows[n]["parse_ok"], rows[n]["raw"]) for n in ("6", "7")] == [(False, '"text"'), (False, "[]")]


def test_valid_trades_parse_each_record_once(spark: SparkSession) -> None:
    checker = DataQualityChecker(spark, CONFIG)
    parsed = parse_trades(records(spark, [trade(ARRIVAL, 60_000, 0.5).to_json().encode()]))
    valid, _ = DataQualityChecker.split(checker.flag(parsed))
    filtered = valid.filter("quote_volume > 1000 AND symbol = 'BTCUSDT'")

    plan = filtered._jdf.queryExecution().optimizedPlan().toString()

    assert plan.count("from_json(") == 1
    assert filtered.count() == 1


def _payload(**fields: object) -> bytes:
    """A TradeEvent payload (trade 7 at ARRIVAL) with ``fields`` replaced; ``None`` drops a field."""
    base = json.loads(trade(ARRIVAL, 60_000, 0.5, trade_id="7").to_json())
    for name, value in fields.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return json.dumps(base).encode()


def test_times_that_are_not_times_are_dead_lettered_not_thrown(spark: SparkSession) -> None:
    """ANSI mode is on: a cast would fail the query (and the restart, on the same record) with CAST_INVALID_INPUT."""
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    payloads = [
        _payload(timestamp="yesterday"),
        _payload(timestamp="12345"),  # Spark reads the year 12345
        _payload(timestamp="9999-12-31T23:59:59-05:00"),  # year 10000 in UTC
        _payload(timestamp=""),
        _payload(ingestion_timestamp="-5000-01-01"),
        _payload(ingestion_timestamp=None),
        _payload(),
    ]
    parsed = parse_trades(records(spark, payloads))
    _, invalid, metrics = DataQualityChecker(spark, CONFIG.model_copy(update={"quality": INGESTION_CLOCK})).validate(
        parsed
    )
    reasons = {row["kinesis_sequence"]: row["dq_reason"] for row in invalid.collect()}
    times = {row["kinesis_sequence"]: (row["times_ok"], row["timestamp"]) for row in parsed.collect()}

    assert reasons == {
        "1": "validity_time_format",
        "2": "validity_time_format",
        "3": "validity_time_format",
        "4": "validity_time_format",
        "5": "validity_time_format",
        "6": "completeness_ingestion_timestamp",
    }
    assert [times[n] for n in ("1", "2", "3", "4")] == [(False, None)] * 4
    assert times["7"] == (True, ARRIVAL.replace(tzinfo=None))
    counts = metrics.get()
    assert (counts["total"], counts["valid"], counts["validity_time_format"]) == (7, 1, 5)


INGESTION_CLOCK = CONFIG.quality.model_copy(update={"event_time_reference": "ingestion"})


def test_event_time_guard_judges_trade_time_against_arrival(spark: SparkSession) -> None:
    """One trade 10 years ahead would move every watermark: it is dead-lettered, as are times a day behind."""
    ahead = (ARRIVAL + timedelta(days=3653)).isoformat()
    payloads = [
        _payload(timestamp=ahead, ingestion_timestamp=ahead),  # both clocks in the record lie
        _payload(timestamp=(ARRIVAL + timedelta(seconds=61)).isoformat()),
        _payload(timestamp=(ARRIVAL + timedelta(seconds=59)).isoformat()),
        _payload(timestamp=(ARRIVAL - timedelta(days=1, seconds=1)).isoformat()),
        _payload(timestamp=(ARRIVAL - timedelta(hours=23)).isoformat()),
    ]
    checker = DataQualityChecker(spark, CONFIG)
    valid, invalid, _ = checker.validate(parse_trades(records(spark, payloads)))

    assert sorted(row["kinesis_sequence"] for row in valid.collect()) == ["3", "5"]
    assert {row["kinesis_sequence"]: row["dq_reason"] for row in invalid.collect()} == {
        "1": "timeliness_event_time",
        "2": "timeliness_event_time",
        "4": "timeliness_event_time",
    }


def test_replays_judge_event_time_against_the_recorded_ingestion_clock(spark: SparkSession) -> None:
    """A 2024 recording replayed today: arrival is today, the records' ingestion clock is the recording's."""
    today = datetime.now(UTC)
    rows = [(_payload(), "s", "k", "1", today, "shardId-0")]
    replayed = parse_trades(spark.createDataFrame(rows, KINESIS_SCHEMA))
    live = DataQualityChecker(spark, CONFIG)
    replay = DataQualityChecker(spark, CONFIG.model_copy(update={"quality": INGESTION_CLOCK}))

    assert [row["dq_reason"] for row in live.validate(replayed)[1].collect()] == ["timeliness_event_time"]
    valid, invalid, _ = replay.validate(replayed)
    assert (valid.count(), invalid.count()) == (1, 0)
