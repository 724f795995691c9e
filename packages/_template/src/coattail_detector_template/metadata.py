"""MOD-999's declaration (entry point ``template`` in ``coattail.detector_info``): no PySpark here.

Read by the configuration (tier), the alert API (alert type and its ``details`` keys) and
``TemplateDetector`` itself. Tier ``large``: ``feature_tier: small`` or ``medium`` never
selects the template, should it be installed by accident. A detector that wants a route of
its own in the alert API adds ``view=AlertView(...)`` to its alert type
(``coattail_framework.plugins``).
"""

from coattail_framework.plugins import AlertType, DetailField, DetectorInfo

DETECTOR_INFO = DetectorInfo(
    module_id="MOD-999",
    module_name="template",
    tier="large",
    alert_types=(
        AlertType(
            "large_trade",
            details=(
                DetailField("event_id", "string", nullable=False),
                DetailField("side", "string"),
                DetailField("price", "number", nullable=False),
                DetailField("quantity", "number", nullable=False),
                DetailField("notional", "number", nullable=False),
            ),
        ),
    ),
)
