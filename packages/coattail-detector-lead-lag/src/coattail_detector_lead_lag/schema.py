"""Spark schema of MOD-010 lead-lag: the ``lead_lag`` rows and the state it keeps.

Declared once here; the detector, the Iceberg table and the tests derive from it. Nullability
is what the state function may leave empty (see ``LEAD_LAG``); times are UTC instants.
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

LEAD_LAG = StructType(
    [
        StructField("window_start", TimestampType(), nullable=True),
        StructField("window_end", TimestampType(), nullable=True),
        StructField("symbol", StringType(), nullable=True),
        StructField("exchange_a", StringType(), nullable=True),
        StructField("symbol_a", StringType(), nullable=True),
        StructField("exchange_b", StringType(), nullable=True),
        StructField("symbol_b", StringType(), nullable=True),
        StructField("lag_seconds", DoubleType(), nullable=True),
        StructField("leader", StringType(), nullable=True),
        StructField("correlation_at_lag", DoubleType(), nullable=True),
        StructField("correlation_at_zero", DoubleType(), nullable=True),
        StructField("lead_lag_ratio", DoubleType(), nullable=True),
        StructField("samples", LongType(), nullable=True),
        StructField("nonzero_returns_a", LongType(), nullable=True),
        StructField("nonzero_returns_b", LongType(), nullable=True),
        StructField("significant", BooleanType(), nullable=True),
        StructField("previous_leader", StringType(), nullable=True),
        StructField("leader_change", BooleanType(), nullable=True),
    ]
)
"""One venue pair of one instrument over one window (``lead_lag``).

``window_start``/``window_end``: the window of returns, ``window_seconds`` long, end exclusive
and a multiple of ``step_seconds``. ``symbol``: the instrument, canonical ``BASE/QUOTE`` after
MOD-003's quote equivalence; ``exchange_a`` < ``exchange_b`` (MOD-003's pairs), ``symbol_a`` and
``symbol_b`` their own spellings. ``correlation_at_lag`` = rho(k*): Pearson correlation between
a's grid log returns at t and b's at t + k*, k* = the lag in [-max, +max] with the largest
|rho|; ``lag_seconds`` = k* in seconds; ``leader`` = ``exchange_a`` when k* > 0, ``exchange_b``
when k* < 0, null when k* = 0. ``correlation_at_zero`` = rho(0). ``lead_lag_ratio`` =
sum of rho(k)^2 over k > 0 / the same over k < 0: above 1 a leads, below 1 b leads, even when
k* = 0 (null when every rho(k < 0) is 0). ``samples``: return pairs in every rho(k) (window
cells). ``nonzero_returns_*``: the leg's non-zero returns in the window (at least
``min_samples``, or no row). ``significant``: |rho(k*)| >= ``min_correlation`` and |rho(k*)| -
|rho(0)| >= ``min_gain``. ``previous_leader``: the leader of the pair's previous
``min_consecutive`` significant windows when they agree (else null); ``leader_change``: this
window is significant and its leader is another."""

STATE = StructType([StructField("state_json", StringType(), nullable=False)])
"""Per instrument state of the ``applyInPandasWithState`` function (``state.InstrumentState``)."""
