"""Spark schemas shared by every stage, declared once and derived from, never retyped.

``UNIFIED_TRADE_EVENT`` is the parsed form of ``coattail_framework.events.TradeEvent``
(times as Spark ``TimestampType``, i.e. UTC instants; amounts as doubles).
``BASE_ALERT_RECORD`` is the alert every detector emits; DynamoDB items and the Iceberg
``alerts`` table hold exactly these fields (``details`` is a JSON string).
"""

from __future__ import annotations

from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

UNIFIED_TRADE_EVENT = StructType(
    [
        StructField("event_id", StringType(), nullable=True),
        StructField("exchange", StringType(), nullable=True),
        StructField("symbol", StringType(), nullable=True),
        StructField("price", DoubleType(), nullable=True),
        StructField("quantity", DoubleType(), nullable=True),
        StructField("quote_volume", DoubleType(), nullable=True),
        StructField("side", StringType(), nullable=True),
        StructField("timestamp", TimestampType(), nullable=True),
        StructField("ingestion_timestamp", TimestampType(), nullable=True),
        StructField("trade_id", StringType(), nullable=True),
        StructField("taker_order_id", StringType(), nullable=True),
    ]
)
"""One normalized fill. Fields are nullable on purpose: the data-quality rules, not the
parser, decide what a missing value means and send the row to the dead-letter path."""

EVENT_TIME_COLUMN = "timestamp"
"""The event-time column watermarks are declared on (exchange trade time, UTC)."""

BASE_ALERT_RECORD = StructType(
    [
        StructField("alert_id", StringType(), nullable=False),
        StructField("alert_type", StringType(), nullable=False),
        StructField("module_id", StringType(), nullable=False),
        StructField("symbol", StringType(), nullable=False),
        StructField("exchange", StringType(), nullable=False),
        StructField("severity", StringType(), nullable=False),
        StructField("detected_at", TimestampType(), nullable=False),
        StructField("message", StringType(), nullable=False),
        StructField("ttl_epoch", LongType(), nullable=True),
        StructField("details", StringType(), nullable=False),
    ]
)
"""One alert. ``detected_at`` is the event time (UTC) at which the condition held, so a
replay of the same trades gives the same record; ``ttl_epoch`` (seconds since the epoch)
is filled by the alert router from ``dynamodb.ttl_days``; ``details`` is the module's
payload as a JSON object string."""

SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
"""Alert severities, mildest first."""
