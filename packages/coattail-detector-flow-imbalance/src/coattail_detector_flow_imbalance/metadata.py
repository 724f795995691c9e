"""MOD-004's declaration (entry point ``flow-imbalance`` in ``coattail.detector_info``): no PySpark here.

Read by the configuration (tier), the alert API (alert type and ``details`` keys) and
``FlowImbalanceDetector`` itself. ``details`` is the ``flow_imbalance`` row
(``schema.FLOW_IMBALANCE``) without ``exchange`` and ``symbol`` (the alert's own columns),
plus ``direction``: ``buy`` when takers bought more than they sold in the window, ``sell``
otherwise. ``large_order_imbalance`` is absent when the window had no large order.
"""

from coattail_framework.plugins import AlertType, DetailField, DetectorInfo

DETECTOR_INFO = DetectorInfo(
    module_id="MOD-004",
    module_name="flow-imbalance",
    tier="medium",
    alert_types=(
        AlertType(
            "flow_imbalance",
            details=(
                DetailField("direction", "string", nullable=False),
                DetailField("window_start", "timestamp", nullable=False),
                DetailField("window_end", "timestamp", nullable=False),
                DetailField("buy_order_count", "integer", nullable=False),
                DetailField("sell_order_count", "integer", nullable=False),
                DetailField("buy_quote_volume", "number", nullable=False),
                DetailField("sell_quote_volume", "number", nullable=False),
                DetailField("large_buy_quote_volume", "number", nullable=False),
                DetailField("large_sell_quote_volume", "number", nullable=False),
                DetailField("net_quote_flow", "number", nullable=False),
                DetailField("imbalance", "number", nullable=False),
                DetailField("large_order_imbalance", "number"),
                DetailField("baseline_size", "integer", nullable=False),
                DetailField("baseline_mean", "number", nullable=False),
                DetailField("baseline_std", "number", nullable=False),
                DetailField("net_flow_z", "number", nullable=False),
                DetailField("early_final_orders", "integer", nullable=False),
            ),
        ),
    ),
)
