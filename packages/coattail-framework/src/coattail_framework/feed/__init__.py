"""The validated trade feed: what the ingest query committed to ``raw_trades``, as a stream (ADR-041).

Runs on the Spark driver when a query is defined; the ``coattail-feed`` source (``source``)
plans each batch from Iceberg metadata (``increments``) and executors read the Parquet files.

    trades = read_trade_feed(spark, config)       # UNIFIED_TRADE_EVENT, valid trades only
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coattail_framework.feed.increments import FeedRewriteError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from coattail_framework.config.model import CoattailConfig

__all__ = ["FeedRewriteError", "feed_options", "read_trade_feed"]


def _starting_position(config: CoattailConfig, table: str) -> str:
    """``kinesis.starting_position`` in feed terms: TRIM_HORIZON = earliest, LATEST = latest, a time = its commit."""
    kinesis = config.kinesis
    if kinesis.starting_position == "TRIM_HORIZON":
        return "earliest"
    if kinesis.starting_position == "LATEST":
        return "latest"
    from pyiceberg.exceptions import NoSuchTableError

    from coattail_framework.iceberg import open_catalog

    assert kinesis.starting_timestamp is not None  # enforced by KinesisConfig
    try:
        iceberg_table = open_catalog(config.iceberg, config.aws).load_table((config.iceberg.database, table))
    except NoSuchTableError:
        return "earliest"
    snapshot = iceberg_table.snapshot_as_of_timestamp(round(kinesis.starting_timestamp.timestamp() * 1000))
    return "earliest" if snapshot is None else str(snapshot.sequence_number or 0)


def feed_options(config: CoattailConfig, table: str, read_delay_ms: int = 0) -> dict[str, str]:
    """The ``coattail-feed`` options that read ``table`` of the configured catalog."""
    from coattail_framework.feed.source import FeedOptions

    options = {
        "table": f"{config.iceberg.database}.{table}",
        "catalog": FeedOptions.catalog_json(config.iceberg, config.aws),
        "startingPosition": _starting_position(config, table),
    }
    if read_delay_ms:
        options["readDelayMs"] = str(read_delay_ms)
    return options


def read_trade_feed(spark: SparkSession, config: CoattailConfig, read_delay_ms: int = 0) -> DataFrame:
    """The trades the ingest query committed to ``raw_trades``, oldest commit first (``UNIFIED_TRADE_EVENT``).

    ``read_delay_ms``: seconds/1000 each trigger waits before it plans (staggered live queries).
    The table must exist before the query starts (``PipelineRunner`` creates it).
    """
    from coattail_framework.feed.source import FEED_FORMAT, register
    from coattail_framework.pipeline.ingest import RAW_TRADES_TABLE

    register(spark)
    return spark.readStream.format(FEED_FORMAT).options(**feed_options(config, RAW_TRADES_TABLE, read_delay_ms)).load()
