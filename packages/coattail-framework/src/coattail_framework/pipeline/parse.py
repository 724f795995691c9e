"""Kinesis records -> ``UNIFIED_TRADE_EVENT`` rows, keeping what the dead-letter path needs.

Builds a plan on the driver; executors run it. The payload is the ``TradeEvent`` JSON the
producer publishes (UTF-8). A payload that is not a JSON object of that shape gets
``parse_ok = false`` (the ``validity_json`` rule sends it to the DLQ) and keeps its text
in ``raw``; ``kinesis_arrival`` (UTC instant) and ``kinesis_sequence`` say when and
where it arrived.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from coattail_framework.schemas import UNIFIED_TRADE_EVENT

_CORRUPT = "_corrupt_record"
_PAYLOAD_SCHEMA = StructType(
    [
        StructField(field.name, StringType() if isinstance(field.dataType, TimestampType) else field.dataType)
        for field in UNIFIED_TRADE_EVENT.fields
    ]
    + [StructField(_CORRUPT, StringType())]
)
METADATA_COLUMNS = ("raw", "parse_ok", "kinesis_arrival", "kinesis_sequence", "kinesis_shard")


def parse_trades(records: DataFrame) -> DataFrame:
    """Trade rows (``UNIFIED_TRADE_EVENT`` columns) plus ``METADATA_COLUMNS``."""
    raw = F.col("data").cast("string")
    parsed = records.select(
        raw.alias("raw"),
        F.from_json(raw, _PAYLOAD_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}).alias("p"),
        F.col("approximateArrivalTimestamp").alias("kinesis_arrival"),
        F.col("sequenceNumber").alias("kinesis_sequence"),
        F.col("shardId").alias("kinesis_shard"),
    )
    fields = [
        F.col(f"p.{field.name}").cast(field.dataType).alias(field.name)
        if isinstance(field.dataType, TimestampType)
        else F.col(f"p.{field.name}").alias(field.name)
        for field in UNIFIED_TRADE_EVENT.fields
    ]
    parse_ok = F.col("p").isNotNull() & F.col(f"p.{_CORRUPT}").isNull()
    return parsed.select(
        *fields,
        "raw",
        F.coalesce(parse_ok, F.lit(False)).alias("parse_ok"),
        "kinesis_arrival",
        "kinesis_sequence",
        "kinesis_shard",
    )


def trade_columns(df: DataFrame) -> DataFrame:
    """Only the ``UNIFIED_TRADE_EVENT`` columns, in schema order."""
    return df.select(*UNIFIED_TRADE_EVENT.fieldNames())
