"""Spark schema of MOD-008 whale-alpha: the ``whale_markouts`` rows and the state it keeps.

Declared once here; the detector, the Iceberg table and the tests derive from it. Times are
UTC instants; prices and notionals in the instrument's quote currency (counted as USD, as
MOD-002 does); returns in basis points, signed so that positive means the price moved the
whale's way (up after a buy, down after a sell).

One row per (whale order, horizon), written as soon as that horizon resolves, plus one
**entry row** per order (``horizon_seconds`` 0), written when the entry window closes
(``entry_delay_seconds`` after the order): it carries the follower's entry price and the
signal (the cohort's statistics at ``score_horizon_seconds`` as they stood at the order's
time), from which the ``whale_alpha_signal`` alert is raised.
"""

from __future__ import annotations

from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampType

ORDER_FIELDS = (
    ("exchange", StringType()),
    ("symbol", StringType()),
    ("side", StringType()),
    ("order_time", TimestampType()),
    ("first_trade_id", StringType()),
    ("last_trade_id", StringType()),
    ("taker_order_id", StringType()),
    ("notional", DoubleType()),
    ("base_quantity", DoubleType()),
    ("fill_count", LongType()),
    ("order_vwap_price", DoubleType()),
    ("notional_bucket", StringType()),
)
"""The whale order, exactly as MOD-002 writes it to ``whale_trades`` (``vwap_price`` renamed)."""

MARKOUT_FIELDS = (
    ("horizon_seconds", LongType()),
    ("horizon_end", TimestampType()),
    ("entry_price", DoubleType()),
    ("entry_trade_count", LongType()),
    ("exit_price", DoubleType()),
    ("exit_time", TimestampType()),
    ("return_bps", DoubleType()),
)
"""One horizon of the order: entry VWAP, exit (last trade at or before ``horizon_end``), return."""

COHORT_FIELDS = (
    ("cohort_n", LongType()),
    ("cohort_mean_bps", DoubleType()),
    ("cohort_std_bps", DoubleType()),
    ("cohort_t", DoubleType()),
    ("cohort_hit_rate", DoubleType()),
)
"""The cohort's statistics at this row's horizon, this markout included (null in entry rows)."""

SIGNAL_FIELDS = (
    ("signal_horizon_seconds", LongType()),
    ("signal_n", LongType()),
    ("signal_mean_bps", DoubleType()),
    ("signal_std_bps", DoubleType()),
    ("signal_t", DoubleType()),
    ("signal_hit_rate", DoubleType()),
)
"""The cohort's statistics at ``score_horizon_seconds`` over the markouts resolved by the order's time."""

WHALE_MARKOUTS = StructType(
    [
        *(StructField(name, kind, nullable=True) for name, kind in (*ORDER_FIELDS, *MARKOUT_FIELDS, *COHORT_FIELDS)),
        *(StructField(name, kind, nullable=True) for name, kind in SIGNAL_FIELDS),
        StructField("orders_untracked", LongType(), nullable=True),
    ]
)
"""``whale_markouts``: see the module docstring.

``entry_price`` is the VWAP of the key's trades in (``order_time``, ``order_time`` +
``entry_delay_seconds``] and ``entry_trade_count`` their number; when no trade fell there the
count is 0 and ``entry_price`` and ``return_bps`` are null (the row is still written).
``exit_price`` is the price of the last trade at or before ``horizon_end`` (``exit_time`` its
time: a quiet market leaves it early; older than ``max_exit_age_seconds``, the return is null).
``return_bps`` = s x (exit - entry) / entry x 10,000 with s = +1 for a buy, -1 for a sell.
``cohort_*``: the last ``cohort_size`` non-null returns of the cohort (exchange, symbol, side,
``notional_bucket``) at this horizon, this one included: count, mean, sample standard
deviation (null below 2), t = mean / (std / sqrt(n)) (null when std is null or 0) and the
share of returns above 0. ``orders_untracked``: whale orders of this (exchange, symbol) the
module could not follow because ``max_pending_orders`` were pending (running count since the
query started)."""

STATE = StructType([StructField("state_json", StringType(), nullable=False)])
"""Per (exchange, symbol) state of the ``applyInPandasWithState`` function (``state.KeyState``)."""
