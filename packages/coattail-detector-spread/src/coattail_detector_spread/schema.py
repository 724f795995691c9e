"""Spark schema of MOD-003: the ``exchange_spreads`` output rows.

Declared once here; the detector, the Iceberg table and the tests derive from it. Nullability
is what Spark derives for the plan (the Iceberg table's optional fields follow it); no field
of an emitted row is null in practice.
"""

from __future__ import annotations

from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampType

EXCHANGE_SPREADS = StructType(
    [
        StructField("window_start", TimestampType(), nullable=True),
        StructField("window_end", TimestampType(), nullable=True),
        StructField("symbol", StringType(), nullable=True),
        StructField("exchange_a", StringType(), nullable=True),
        StructField("symbol_a", StringType(), nullable=True),
        StructField("exchange_b", StringType(), nullable=True),
        StructField("symbol_b", StringType(), nullable=True),
        StructField("vwap_a", DoubleType(), nullable=True),
        StructField("vwap_b", DoubleType(), nullable=True),
        StructField("quote_volume_a", DoubleType(), nullable=True),
        StructField("quote_volume_b", DoubleType(), nullable=True),
        StructField("trade_count_a", LongType(), nullable=True),
        StructField("trade_count_b", LongType(), nullable=True),
        StructField("mid_price", DoubleType(), nullable=True),
        StructField("spread_pct", DoubleType(), nullable=True),
        StructField("premium_bps", DoubleType(), nullable=True),
    ]
)
"""One pair of venues quoting one instrument in one window (``exchange_spreads``).

``window_start``/``window_end``: the tumbling event-time window, UTC, end exclusive.
``symbol``: the instrument compared, a canonical ``BASE/QUOTE`` after quote equivalence
(``BTC/USD`` for binance BTCUSDT and coinbase BTC-USD). ``exchange_a`` < ``exchange_b``
(venue ids ordered, so a pair appears once), ``symbol_a``/``symbol_b`` their own spellings.
``vwap_*`` = quote volume / base volume of the venue's trades in the window (quote currency
per base unit), ``quote_volume_*`` their summed quote volume, ``trade_count_*`` their number.
``mid_price`` = (vwap_a + vwap_b) / 2; ``spread_pct`` = |vwap_a - vwap_b| / mid_price x 100;
``premium_bps`` = (vwap_b - vwap_a) / mid_price x 10,000, signed: venue b over venue a."""
