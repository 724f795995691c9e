"""Spark schema of MOD-002: the ``whale_trades`` output rows.

Declared once here; the detector, the Iceberg table and the tests derive from it. Nullability
is what Spark derives for the plan (the Iceberg table's optional fields follow it); in practice
only ``first_trade_id``, ``last_trade_id`` and ``taker_order_id`` are ever null.
Times are UTC instants; amounts are doubles in the instrument's quote currency (``notional``,
prices) or its base currency (``base_quantity``).
"""

from __future__ import annotations

from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampType

WHALE_TRADES = StructType(
    [
        StructField("exchange", StringType(), nullable=True),
        StructField("symbol", StringType(), nullable=True),
        StructField("side", StringType(), nullable=True),
        StructField("order_time", TimestampType(), nullable=True),
        StructField("notional", DoubleType(), nullable=True),
        StructField("base_quantity", DoubleType(), nullable=True),
        StructField("fill_count", LongType(), nullable=False),
        StructField("first_trade_id", StringType(), nullable=True),
        StructField("last_trade_id", StringType(), nullable=True),
        StructField("first_price", DoubleType(), nullable=True),
        StructField("last_price", DoubleType(), nullable=True),
        StructField("vwap_price", DoubleType(), nullable=True),
        StructField("price_impact_bps", DoubleType(), nullable=True),
        StructField("taker_order_id", StringType(), nullable=True),
    ]
)
"""One whale taker order (``whale_trades``).

``side`` is the taker's side; ``order_time`` the trade time its fills share (the event time);
``notional`` the summed quote volume of its fills and
``base_quantity`` their summed size; ``vwap_price`` = notional / base_quantity.
``price_impact_bps`` = (last_price - first_price) / first_price x 10,000, sign flipped for a
sell, so positive means the price moved against the taker. ``taker_order_id`` is set where the
exchange publishes it (Coinbase) and null where fills were grouped by trade time (Binance)."""
