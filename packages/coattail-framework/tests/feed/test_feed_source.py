"""The ``coattail-feed`` source on a real SparkSession over a real raw_trades table (pyiceberg on SQLite)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from coattail_framework.config.model import CoattailConfig
from coattail_framework.errors import ConfigError
from coattail_framework.feed import feed_options, read_trade_feed
from coattail_framework.feed.source import FeedOptions
from coattail_framework.pipeline.ingest import RAW_TRADES_TABLE

Commit = Callable[[list[str]], None]


def _start(spark: SparkSession, config: CoattailConfig, checkpoint: Path, seen: list[list[str]]) -> StreamingQuery:
    def collect(batch: DataFrame, _: int) -> None:
        seen.append(sorted(row.trade_id for row in batch.select("trade_id").collect()))

    writer = read_trade_feed(spark, config).writeStream.foreachBatch(collect)
    return writer.option("checkpointLocation", str(checkpoint)).trigger(processingTime="0.2 seconds").start()


def _run(spark: SparkSession, config: CoattailConfig, checkpoint: Path) -> list[list[str]]:
    """One run of a feed query until it read every commit; the trade ids of each data batch."""
    seen: list[list[str]] = []
    query = _start(spark, config, checkpoint, seen)
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    return [batch for batch in seen if batch]


def test_reads_each_commit_once_one_commit_a_batch_and_resumes(
    spark: SparkSession, feed_config: CoattailConfig, commit: Commit, tmp_path: Path
) -> None:
    commit(["1", "2"])
    commit(["3"])
    commit(["4", "5", "6", "7"])

    first = _run(spark, feed_config, tmp_path / "checkpoint")
    commit(["8"])
    second = _run(spark, feed_config, tmp_path / "checkpoint")  # the same checkpoint: only the new commit

    assert first == [["1", "2"], ["3"], ["4", "5", "6", "7"]]  # the batches are ingest's, whatever the timing
    assert second == [["8"]]


def test_rows_carry_the_trade_columns_exactly(
    spark: SparkSession, feed_config: CoattailConfig, commit: Commit, tmp_path: Path
) -> None:
    commit(["42"])
    rows: list[dict[str, object]] = []

    def collect(batch: DataFrame, _: int) -> None:
        rows.extend(row.asDict() for row in batch.collect())

    query = (
        read_trade_feed(spark, feed_config)
        .writeStream.foreachBatch(collect)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    query.processAllAvailable()
    query.stop()

    assert len(rows) == 1
    row = rows[0]
    assert (row["event_id"], row["exchange"], row["symbol"], row["side"], row["trade_id"]) == (
        "binance:BTCUSDT:42",
        "binance",
        "BTCUSDT",
        "buy",
        "42",
    )
    assert (row["price"], row["quantity"], row["quote_volume"], row["taker_order_id"]) == (
        60_000.0,
        0.5,
        30_000.0,
        None,
    )
    assert row["timestamp"].isoformat() == "2024-08-08T23:00:42"  # the session is UTC: naive UTC wall time


def test_a_new_checkpoint_at_latest_reads_only_later_commits(
    spark: SparkSession, feed_config: CoattailConfig, commit: Commit, tmp_path: Path
) -> None:
    commit(["1"])
    config = feed_config.model_copy(
        update={"kinesis": feed_config.kinesis.model_copy(update={"starting_position": "LATEST"})}
    )
    seen: list[list[str]] = []
    query = _start(spark, config, tmp_path / "checkpoint", seen)
    try:
        query.processAllAvailable()
        commit(["2"])
        query.processAllAvailable()
    finally:
        query.stop()

    assert [batch for batch in seen if batch] == [["2"]]


def test_options_name_what_is_wrong(feed_config: CoattailConfig) -> None:
    options = {key.lower(): value for key, value in feed_options(feed_config, RAW_TRADES_TABLE).items()}

    assert FeedOptions.from_spark(options).table == ("coattail", "raw_trades")
    with pytest.raises(ConfigError, match=r"table='raw_trades': expected database\.table"):
        FeedOptions.from_spark({**options, "table": "raw_trades"})
    with pytest.raises(ConfigError, match="partitions=0: must be at least 1"):
        FeedOptions.from_spark({**options, "partitions": "0"})
    with pytest.raises(ConfigError, match="startingPosition='soon'"):
        FeedOptions.from_spark({**options, "startingposition": "soon"})
