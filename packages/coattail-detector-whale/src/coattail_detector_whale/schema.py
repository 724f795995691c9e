"""Spark schema of MOD-002: the ``whale_trades`` output rows.

Declared once here; the detector, the Iceberg table and the tests derive from them.
Times are UTC instants; amounts are doubles in the instrument's quote currency (``notional``,
prices) or its base currency (``base_quantity``).
"""

from __future__ import annotations

from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampType

WHALE_TRADES = StructType(
    [
        StructField("exchange", StringType(), nullable=False),
        StructField("symbol", StringType(), nullable=False),
        StructField("side", StringType(), nullable=False),
        StructField("order_time", TimestampType(), nullable=False),
        StructField("notional", DoubleType(), nullable=False),
        StructField("base_quantity", DoubleType(), nullable=False),
        StructField("fill_count", LongType(), nullable=False),
        StructField("first_trade_id", StringType(), nullable=True),
        StructField("last_trade_id", StringType(), nullable=True),
        StructField("first_price", DoubleType(), nullable=False),
        StructField("last_price", DoubleType(), nullable=False),
        StructField("vwap_price", DoubleType(), nullable=False),
        StructField("price_impact_bps", DoubleType(), nullable=False),
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
