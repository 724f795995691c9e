"""MOD-003's declaration (entry point ``spread`` in ``coattail.detector_info``): no PySpark here.

Read by the configuration (tier), the alert API (alert type, ``details`` keys, ``/spreads``)
and ``SpreadDetector`` itself. ``details`` is the ``exchange_spreads`` row
(``schema.EXCHANGE_SPREADS``); the alert's ``exchange`` is ``exchange_a|exchange_b``.
"""

from coattail_framework.plugins import AlertType, AlertView, DetailField, DetectorInfo

DETECTOR_INFO = DetectorInfo(
    module_id="MOD-003",
    module_name="spread",
    tier="small",
    alert_types=(
        AlertType(
            "spread_divergence",
            details=(
                DetailField("window_start", "timestamp", nullable=False),
                DetailField("window_end", "timestamp", nullable=False),
                DetailField("symbol", "string", nullable=False),
                DetailField("exchange_a", "string", nullable=False),
                DetailField("symbol_a", "string", nullable=False),
                DetailField("exchange_b", "string", nullable=False),
                DetailField("symbol_b", "string", nullable=False),
                DetailField("vwap_a", "number", nullable=False),
                DetailField("vwap_b", "number", nullable=False),
                DetailField("quote_volume_a", "number", nullable=False),
                DetailField("quote_volume_b", "number", nullable=False),
                DetailField("trade_count_a", "integer", nullable=False),
                DetailField("trade_count_b", "integer", nullable=False),
                DetailField("mid_price", "number", nullable=False),
                DetailField("spread_pct", "number", nullable=False),
                DetailField("premium_bps", "number", nullable=False),
            ),
            view=AlertView(path="spreads", kind="latest_per_pair"),
        ),
    ),
)
