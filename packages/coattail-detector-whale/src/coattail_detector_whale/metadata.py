"""MOD-002's declaration (entry point ``whale`` in ``coattail.detector_info``): no PySpark here.

Read by the configuration (tier), the alert API (alert type, ``details`` keys, ``/whales``)
and ``WhaleDetector`` itself. ``details`` is the ``whale_trades`` row (``schema.WHALE_TRADES``).
"""

from coattail_framework.plugins import AlertType, AlertView, DetailField, DetectorInfo

DETECTOR_INFO = DetectorInfo(
    module_id="MOD-002",
    module_name="whale",
    tier="small",
    alert_types=(
        AlertType(
            "whale_trade",
            details=(
                DetailField("exchange", "string", nullable=False),
                DetailField("symbol", "string", nullable=False),
                DetailField("side", "string", nullable=False),
                DetailField("order_time", "timestamp", nullable=False),
                DetailField("notional", "number", nullable=False),
                DetailField("base_quantity", "number", nullable=False),
                DetailField("fill_count", "integer", nullable=False),
                DetailField("first_trade_id", "string"),
                DetailField("last_trade_id", "string"),
                DetailField("first_price", "number", nullable=False),
                DetailField("last_price", "number", nullable=False),
                DetailField("vwap_price", "number", nullable=False),
                DetailField("price_impact_bps", "number", nullable=False),
                DetailField("taker_order_id", "string"),
            ),
            view=AlertView(path="whales", kind="listing", min_filter="notional"),
        ),
    ),
)
