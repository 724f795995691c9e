"""Spark schemas of MOD-004 flow-imbalance, declared once: the ``flow_imbalance`` rows and the per-key state.

``FLOW_IMBALANCE`` is what ``FlowImbalanceDetector.process`` returns and what the
``flow_imbalance`` Iceberg table holds: one row per closed window of one (exchange, symbol)
that had at least one taker order. Times are UTC instants; amounts are in the instrument's
quote currency, counted as USD (only instruments quoted in ``modules.whale.usd_quote_currencies``
are evaluated, as MOD-002 does). ``buy``/``sell`` are the TAKER's side. A taker order is
MOD-002's (``coattail_detector_whale.fills.taker_orders``) and counts in the window of its
trade time.

``STATE`` is the streaming state of one key (``state.KeyState`` as JSON). Changing what it
holds needs a new checkpoint (the JSON carries a version and an old one is refused).
"""

from __future__ import annotations

from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

FLOW_IMBALANCE = StructType(
    [
        StructField("exchange", StringType(), nullable=False),
        StructField("symbol", StringType(), nullable=False),
        StructField("window_start", TimestampType(), nullable=False),
        StructField("window_end", TimestampType(), nullable=False),
        StructField("buy_order_count", LongType(), nullable=False),
        StructField("sell_order_count", LongType(), nullable=False),
        StructField("buy_quote_volume", DoubleType(), nullable=False),
        StructField("sell_quote_volume", DoubleType(), nullable=False),
        StructField("large_buy_quote_volume", DoubleType(), nullable=False),
        StructField("large_sell_quote_volume", DoubleType(), nullable=False),
        StructField("net_quote_flow", DoubleType(), nullable=False),
        StructField("imbalance", DoubleType(), nullable=False),
        StructField("large_order_imbalance", DoubleType(), nullable=True),
        StructField("baseline_size", IntegerType(), nullable=False),
        StructField("baseline_mean", DoubleType(), nullable=True),
        StructField("baseline_std", DoubleType(), nullable=True),
        StructField("net_flow_z", DoubleType(), nullable=True),
        StructField("early_final_orders", LongType(), nullable=False),
    ]
)
"""One closed window of one (exchange, symbol): its taker flow and its net flow against the baseline.

``B`` = ``buy_quote_volume``, ``S`` = ``sell_quote_volume`` (notional of the window's taker
buy and sell orders; ``*_order_count`` how many). ``large_*``: the same over orders of at
least ``large_order_usd``. ``net_quote_flow`` = B - S; ``imbalance`` = (B - S) / (B + S), in
[-1, 1]; ``large_order_imbalance`` likewise over large orders, null when the window had none.
``baseline_*``: the previous ``baseline_windows`` net flows of the key (windows without an
order count as 0), ``baseline_size`` of them (0 up to ``baseline_windows``), their mean and
POPULATION standard deviation (null for an empty baseline); ``net_flow_z`` = (net flow -
mean) / std, null when the baseline is empty or flat. ``early_final_orders``: orders of the
window made final before the watermark passed their trade time because the key held
``max_pending_fills`` fills (0 unless the bound was hit; then the order counts may be too
high by up to this many, the notionals stay exact)."""

STATE = StructType([StructField("state_json", StringType(), nullable=False)])
"""Per (exchange, symbol) state of the ``applyInPandasWithState`` function (``state.KeyState``).

One JSON string: PySpark 4.3.0's worker cannot parse a state schema holding an ``ArrayType``
(``KeyError: 'elementType'``), and JSON keeps every double exactly."""
