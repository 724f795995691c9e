"""Spark schema of MOD-005 split-order: the ``split_order_sequences`` rows and the state it keeps.

Declared once here; the detector, the Iceberg table and the tests derive from it. Times are
UTC instants; prices and notionals in the instrument's quote currency (counted as USD, as
MOD-002 does); quantities in its base currency.

One row per closed **sequence**: a run of same-side taker orders (clips) of near-identical
base quantity, each at most ``max_gap_seconds`` after the one before, written once the
watermark passes its last clip plus ``max_gap_seconds`` if it has at least ``min_clips`` clips
and ``min_total_usd`` total notional. The row describes the sequence's regular core (its longest
chain of clips at its median interval, within ``cadence_tolerance``) when the core alone has
that many clips and that notional, else all its clips.
"""

from __future__ import annotations

from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

SPLIT_ORDER_SEQUENCES = StructType(
    [
        StructField("exchange", StringType(), nullable=True),
        StructField("symbol", StringType(), nullable=True),
        StructField("side", StringType(), nullable=True),
        StructField("sequence_start", TimestampType(), nullable=True),
        StructField("sequence_end", TimestampType(), nullable=True),
        StructField("clip_count", LongType(), nullable=True),
        StructField("off_cadence_clips", LongType(), nullable=True),
        StructField("clip_base_quantity", DoubleType(), nullable=True),
        StructField("clip_notional_median", DoubleType(), nullable=True),
        StructField("total_notional", DoubleType(), nullable=True),
        StructField("total_base_quantity", DoubleType(), nullable=True),
        StructField("vwap_price", DoubleType(), nullable=True),
        StructField("interval_mean_seconds", DoubleType(), nullable=True),
        StructField("interval_cv", DoubleType(), nullable=True),
        StructField("regular", BooleanType(), nullable=True),
        StructField("price_drift_bps", DoubleType(), nullable=True),
        StructField("first_trade_id", StringType(), nullable=True),
        StructField("orders_dropped", LongType(), nullable=True),
    ]
)
"""``split_order_sequences``: see the module docstring.

``side`` is the taker side of every clip. Every figure below is of the row's clips: the
sequence's regular core, or all its clips (then ``off_cadence_clips`` is 0).
``sequence_start`` / ``sequence_end``: the first and last clip's trade time. ``clip_count``:
the row's clips; ``off_cadence_clips``: the sequence's clips left out of the row (same-size
orders off the core's cadence). ``clip_base_quantity`` and ``clip_notional_median``: the
median of the clips' base quantities and notionals (mean of the two middle values for an even
count).
``total_notional``, ``total_base_quantity``: exact sums over the clips; ``vwap_price`` = their
ratio. ``interval_mean_seconds`` = (end - start) / (clips - 1); ``interval_cv`` = population
standard deviation of the intervals / their mean; ``regular`` = ``interval_cv <=
max_interval_cv``. ``price_drift_bps`` = (last clip VWAP - first clip VWAP) / first clip VWAP x
10,000, negated for sells: positive = the price moved against the splitter.
``first_trade_id``: the first clip's first trade id. ``orders_dropped``: clips of this
(exchange, symbol, side) dropped because ``max_orders_in_state`` were held (running count since
the query started; a sequence that lost clips reports only those it kept)."""

STATE = StructType([StructField("state_json", StringType(), nullable=False)])
"""Per (exchange, symbol, side) state of the ``applyInPandasWithState`` function (``state.KeyState``)."""
