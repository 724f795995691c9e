"""Spark schemas of MOD-001, declared once: the ``volume_aggregates`` rows and the per-key state.

``VOLUME_AGGREGATES`` is what ``VolumeAnomalyDetector.process`` returns and what the
``volume_aggregates`` Iceberg table holds: one row per closed window of one
(exchange, symbol) that had at least one trade. Times are UTC instants; volumes are in
the base currency (``base_volume``) or the quote currency (everything named ``quote``).
Baseline statistics are over the previous ``baseline_windows`` windows of the same key,
quiet windows counted as zero; the standard deviation is the POPULATION one (divisor n).
A statistic is null when it is undefined: mean and standard deviation of an empty
baseline, and a z-score whose baseline standard deviation is zero.

``VOLUME_STATE`` is the streaming state of one key (see ``windows.KeyState``). Changing it
makes existing checkpoints unreadable: start the query on a new checkpoint.
"""

from __future__ import annotations

from pyspark.sql.types import (
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def _required(name: str, data_type: DoubleType | IntegerType | LongType | StringType | TimestampType) -> StructField:
    return StructField(name, data_type, nullable=False)


def _optional(name: str) -> StructField:
    return StructField(name, DoubleType(), nullable=True)


VOLUME_AGGREGATES = StructType(
    [
        _required("exchange", StringType()),
        _required("symbol", StringType()),
        _required("window_start", TimestampType()),
        _required("window_end", TimestampType()),
        _required("trade_count", LongType()),
        _required("base_volume", DoubleType()),
        _required("quote_volume", DoubleType()),
        _required("buy_quote_volume", DoubleType()),
        _required("sell_quote_volume", DoubleType()),
        _required("vwap", DoubleType()),
        _required("baseline_size", IntegerType()),
        _optional("baseline_mean"),
        _optional("baseline_std"),
        _optional("z_score"),
        _optional("buy_baseline_mean"),
        _optional("buy_baseline_std"),
        _optional("buy_z_score"),
        _optional("sell_baseline_mean"),
        _optional("sell_baseline_std"),
        _optional("sell_z_score"),
    ]
)
"""One closed window of one (exchange, symbol): its volumes and its rolling-baseline z-scores.

``buy``/``sell`` are the TAKER's side. ``vwap`` = quote_volume / base_volume.
``baseline_size`` is how many windows the baseline held (0 up to ``baseline_windows``)."""

VOLUME_STATE = StructType(
    [
        StructField("closed_through_us", LongType(), nullable=True),
        StructField("baseline_quote", StringType(), nullable=False),
        StructField("baseline_buy_quote", StringType(), nullable=False),
        StructField("baseline_sell_quote", StringType(), nullable=False),
        StructField("open_windows", StringType(), nullable=False),
    ]
)
"""The state of one key: end of its last closed window (microseconds since the epoch, UTC);
the quote volumes of its last closed windows, oldest first, for the total, taker buys and
taker sells (JSON arrays of numbers); its open windows (JSON array of
``[start_us, trade_count, base_volume, quote_volume, buy_quote_volume, sell_quote_volume]``).
JSON strings rather than Spark arrays: PySpark 4.3.0's worker cannot parse a state schema
holding an ``ArrayType`` (``KeyError: 'elementType'``)."""
