"""MOD-010's declaration (entry point ``lead-lag`` in ``coattail.detector_info``): no PySpark here.

Read by the configuration (tier), the alert API (alert type, ``details`` keys, the ``/leaders``
route: the latest ``leader_change`` per venue pair of one instrument) and ``LeadLagDetector``
itself. ``details`` is the ``lead_lag`` row (``schema.LEAD_LAG``); the alert's ``exchange`` is
``exchange_a|exchange_b`` and its ``symbol`` the instrument (canonical, after quote equivalence).
"""

from coattail_framework.plugins import AlertType, AlertView, DetailField, DetectorInfo

DETECTOR_INFO = DetectorInfo(
    module_id="MOD-010",
    module_name="lead-lag",
    tier="large",
    alert_types=(
        AlertType(
            "leader_change",
            details=(
                DetailField("window_start", "timestamp", nullable=False),
                DetailField("window_end", "timestamp", nullable=False),
                DetailField("symbol", "string", nullable=False),
                DetailField("exchange_a", "string", nullable=False),
                DetailField("symbol_a", "string", nullable=False),
                DetailField("exchange_b", "string", nullable=False),
                DetailField("symbol_b", "string", nullable=False),
                DetailField("lag_seconds", "number", nullable=False),
                DetailField("leader", "string", nullable=False),
                DetailField("correlation_at_lag", "number", nullable=False),
                DetailField("correlation_at_zero", "number", nullable=False),
                DetailField("lead_lag_ratio", "number"),
                DetailField("samples", "integer", nullable=False),
                DetailField("nonzero_returns_a", "integer", nullable=False),
                DetailField("nonzero_returns_b", "integer", nullable=False),
                DetailField("significant", "boolean", nullable=False),
                DetailField("previous_leader", "string", nullable=False),
                DetailField("leader_change", "boolean", nullable=False),
            ),
            view=AlertView(path="leaders", kind="latest_per_pair"),
        ),
    ),
)
