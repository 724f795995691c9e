"""MOD-005's declaration (entry point ``split-order`` in ``coattail.detector_info``): no PySpark here.

Read by the configuration (tier), the alert API (alert type, ``details`` keys) and
``SplitOrderDetector`` itself. ``details`` is the ``split_order_sequences`` row
(``schema.SPLIT_ORDER_SEQUENCES``).
"""

from coattail_framework.plugins import AlertType, DetailField, DetectorInfo

DETECTOR_INFO = DetectorInfo(
    module_id="MOD-005",
    module_name="split-order",
    tier="medium",
    alert_types=(
        AlertType(
            "split_order",
            details=(
                DetailField("exchange", "string", nullable=False),
                DetailField("symbol", "string", nullable=False),
                DetailField("side", "string", nullable=False),
                DetailField("sequence_start", "timestamp", nullable=False),
                DetailField("sequence_end", "timestamp", nullable=False),
                DetailField("clip_count", "integer", nullable=False),
                DetailField("off_cadence_clips", "integer", nullable=False),
                DetailField("clip_base_quantity", "number", nullable=False),
                DetailField("clip_notional_median", "number", nullable=False),
                DetailField("total_notional", "number", nullable=False),
                DetailField("total_base_quantity", "number", nullable=False),
                DetailField("vwap_price", "number", nullable=False),
                DetailField("interval_mean_seconds", "number", nullable=False),
                DetailField("interval_cv", "number", nullable=False),
                DetailField("regular", "boolean", nullable=False),
                DetailField("price_drift_bps", "number", nullable=False),
                DetailField("first_trade_id", "string"),
                DetailField("orders_dropped", "integer", nullable=False),
            ),
        ),
    ),
)
