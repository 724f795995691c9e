"""MOD-001's declaration (entry point ``volume-anomaly`` in ``coattail.detector_info``): no PySpark here.

Read by the configuration (tier), the alert API (alert type and ``details`` keys) and
``VolumeAnomalyDetector`` itself. ``details`` is the ``volume_aggregates`` row
(``schema.VOLUME_AGGREGATES``) without ``exchange`` and ``symbol`` (the alert's own columns);
baselines and z-scores are null (absent) while a baseline is empty or flat.
"""

from coattail_framework.plugins import AlertType, DetailField, DetectorInfo

_BASELINES = tuple(
    DetailField(f"{side}{name}", "number")
    for side in ("", "buy_", "sell_")
    for name in ("baseline_mean", "baseline_std", "z_score")
)

DETECTOR_INFO = DetectorInfo(
    module_id="MOD-001",
    module_name="volume-anomaly",
    tier="small",
    alert_types=(
        AlertType(
            "volume_spike",
            details=(
                DetailField("window_start", "timestamp", nullable=False),
                DetailField("window_end", "timestamp", nullable=False),
                DetailField("trade_count", "integer", nullable=False),
                DetailField("base_volume", "number", nullable=False),
                DetailField("quote_volume", "number", nullable=False),
                DetailField("buy_quote_volume", "number", nullable=False),
                DetailField("sell_quote_volume", "number", nullable=False),
                DetailField("vwap", "number", nullable=False),
                DetailField("baseline_size", "integer", nullable=False),
                *_BASELINES,
            ),
        ),
    ),
)
