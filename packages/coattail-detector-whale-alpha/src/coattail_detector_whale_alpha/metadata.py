"""MOD-008's declaration (entry point ``whale-alpha`` in ``coattail.detector_info``): no PySpark here.

Read by the configuration (tier), the alert API (alert types, ``details`` keys, the
``/alpha`` and ``/alpha-signals`` routes) and ``WhaleAlphaDetector`` itself.

- ``whale_alpha_signal``: a whale order whose cohort has paid at the score horizon (the
  ``details`` are its entry row's order and signal columns).
- ``whale_markout`` (always ``low``): one resolved markout with its cohort's statistics at
  that horizon; ``GET /alpha?symbol=`` serves the latest per cohort and horizon.
"""

from coattail_framework.plugins import AlertType, AlertView, DetailField, DetectorInfo

_ORDER = (
    DetailField("exchange", "string", nullable=False),
    DetailField("symbol", "string", nullable=False),
    DetailField("side", "string", nullable=False),
    DetailField("order_time", "timestamp", nullable=False),
    DetailField("first_trade_id", "string"),
    DetailField("taker_order_id", "string"),
    DetailField("notional", "number", nullable=False),
    DetailField("notional_bucket", "string", nullable=False),
    DetailField("entry_price", "number"),
)
COHORT_KEY = ("exchange", "side", "notional_bucket", "horizon_seconds")
"""What tells cohorts (and their horizons) apart in ``/alpha``; the symbol is the query's."""

DETECTOR_INFO = DetectorInfo(
    module_id="MOD-008",
    module_name="whale-alpha",
    tier="large",
    alert_types=(
        AlertType(
            "whale_alpha_signal",
            details=(
                *_ORDER,
                DetailField("signal_horizon_seconds", "integer", nullable=False),
                DetailField("signal_n", "integer", nullable=False),
                DetailField("signal_mean_bps", "number", nullable=False),
                DetailField("signal_std_bps", "number"),
                DetailField("signal_t", "number"),
                DetailField("signal_hit_rate", "number", nullable=False),
            ),
            view=AlertView(path="alpha-signals", kind="listing", min_filter="signal_t"),
        ),
        AlertType(
            "whale_markout",
            details=(
                *_ORDER,
                DetailField("horizon_seconds", "integer", nullable=False),
                DetailField("exit_price", "number", nullable=False),
                DetailField("exit_time", "timestamp", nullable=False),
                DetailField("return_bps", "number", nullable=False),
                DetailField("cohort_n", "integer", nullable=False),
                DetailField("cohort_mean_bps", "number", nullable=False),
                DetailField("cohort_std_bps", "number"),
                DetailField("cohort_t", "number"),
                DetailField("cohort_hit_rate", "number", nullable=False),
            ),
            view=AlertView(path="alpha", kind="latest_per_key", key=COHORT_KEY),
        ),
    ),
)
