"""Settings of MOD-001 volume-anomaly: the ``modules.volume-anomaly`` section of the configuration.

Validated on the driver by ``VolumeAnomalyDetector.configure``; a bad value raises
``ConfigError`` naming the key path, e.g.
``config/features.yaml: modules.volume-anomaly.baseline_windows input should be greater than or equal to 2, got 1``.

Example (``config/features.yaml``)::

    modules:
      volume-anomaly:
        window_seconds: 60          # tumbling event-time windows, seconds (UTC epoch aligned)
        baseline_windows: 60        # rolling baseline: the previous 60 windows of the same key
        min_baseline_windows: 30    # warm-up: no alert before the baseline holds this many windows
        watermark_delay_seconds: 30 # how late a trade may arrive (event time) and still count
        min_quote_volume: 50000     # no alert for a window below this quote volume
        thresholds: {medium: 2.5, high: 3.5}   # z-score bounds; alert above the mildest
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from coattail_framework.alerts import SeverityTiers


class VolumeAnomalyConfig(BaseModel):
    """Windowing, baseline and alerting parameters. Times in seconds, volumes in quote currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_seconds: int = Field(60, gt=0)
    """Length of the tumbling event-time windows; windows start at multiples of it since the epoch."""
    baseline_windows: int = Field(60, ge=2)
    """How many previous windows of the same (exchange, symbol) the rolling baseline holds."""
    min_baseline_windows: int = Field(30, ge=2)
    """Warm-up: a window alerts only when its baseline holds at least this many windows."""
    watermark_delay_seconds: float = Field(30.0, ge=0, le=3600)
    """Event-time watermark delay: trades older than the newest seen minus this are dropped."""
    min_quote_volume: float = Field(50_000.0, ge=0, allow_inf_nan=False)
    """Volume floor: a window below this quote volume never alerts, whatever its z-score."""
    thresholds: SeverityTiers = Field(default_factory=lambda: SeverityTiers(medium=2.5, high=3.5))
    """Severity bounds on the window's z-score; a z strictly above the mildest bound alerts."""

    @field_validator("min_baseline_windows")
    @classmethod
    def _within_baseline(cls, value: int, info: ValidationInfo) -> int:
        baseline = info.data.get("baseline_windows")
        if baseline is not None and value > baseline:
            raise ValueError(f"must not exceed baseline_windows ({baseline}), or no window could ever alert")
        return value
