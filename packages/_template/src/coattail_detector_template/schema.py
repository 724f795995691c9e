"""Spark schema of MOD-999: the ``large_trades`` output rows.

Declared once here; the detector, the Iceberg table and the tests derive from it.
Nullability is what Spark derives for the plan (the Iceberg table's optional fields follow
it); only ``side`` is ever null in an emitted row.
"""

from __future__ import annotations

from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

LARGE_TRADES = StructType(
    [
        StructField("event_id", StringType(), nullable=True),
        StructField("exchange", StringType(), nullable=True),
        StructField("symbol", StringType(), nullable=True),
        StructField("side", StringType(), nullable=True),
        StructField("trade_time", TimestampType(), nullable=True),
        StructField("price", DoubleType(), nullable=True),
        StructField("quantity", DoubleType(), nullable=True),
        StructField("notional", DoubleType(), nullable=True),
    ]
)
"""One trade of at least ``min_notional`` (``large_trades``).

``event_id`` is the trade's ``{exchange}:{symbol}:{trade_id}``; ``side`` the taker's side;
``trade_time`` the exchange's trade time (UTC, the event time); ``price`` in quote currency
per base unit, ``quantity`` in base units, ``notional`` = price x quantity in the quote
currency (the trade's ``quote_volume``)."""
