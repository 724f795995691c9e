"""``modules.split-order`` in ``config/features.yaml``: what a clip and a split order are (MOD-005).

Which instruments count as USD-quoted is not set here: MOD-005 reads
``modules.whale.usd_quote_currencies`` (MOD-002's), as it groups fills into taker orders exactly
as MOD-002 does. Validated on the driver by ``SplitOrderDetector.configure``; a bad value fails
with its key path, e.g. ``config/features.yaml: modules.split-order.max_clip_usd value error,
max_clip_usd (4000.0) must be greater than min_clip_usd (5000.0)``.

Example::

    modules:
      split-order:
        min_clip_usd: 5000          # taker orders outside [min, max] notional are no clips
        max_clip_usd: 250000
        size_tolerance: 0.005       # a clip joins a sequence within 0.5 % of its median clip size
        max_gap_seconds: 120        # ... and at most 120 s after its last clip
        horizon_seconds: 600        # a sequence spans at most 10 min (a longer one is cut)
        min_clips: 8                # a closed sequence is written from 8 clips
        min_total_usd: 250000       # ... and this total notional
        max_interval_cv: 0.35       # regular = interval std / mean at most this
        cadence_tolerance: 0.35     # the row: the longest chain of clips within 35 % of the median interval
        thresholds: {medium: 250000, high: 1000000, critical: 5000000}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from coattail_framework.alerts import SeverityTiers


class SplitOrderConfig(BaseModel):
    """Settings of MOD-005. Times in seconds (event time), amounts in quote currency counted as USD."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_clip_usd: float = Field(5_000.0, gt=0)
    """A taker order below this notional is no clip (too small to tell one actor from the crowd)."""

    max_clip_usd: float = Field(250_000.0, gt=0)
    """A taker order above this notional is no clip (a whale order in one go: MOD-002's concern)."""

    size_tolerance: float = Field(0.005, gt=0, le=0.5)
    """A clip joins a sequence when its base quantity lies in [m x (1 - this), m x (1 + this)],
    m = the sequence's median clip base quantity. The design's 2 % let the crowd's orders of a
    similar size join (docs/modules/MOD-005-split-order.md, calibration)."""

    max_gap_seconds: float = Field(120.0, gt=0, le=3600)
    """A clip joins a sequence at most this long after its last clip; the watermark passing the
    last clip plus this closes the sequence (the module's latency)."""

    horizon_seconds: float = Field(600.0, gt=0, le=86_400)
    """A sequence spans at most this long (first to last clip); a longer split order is written as
    consecutive sequences. Bounds the state in time and the latency of a long-running split order."""

    min_clips: int = Field(8, ge=2, le=100_000)
    """A closed sequence with fewer clips is not written."""

    min_total_usd: float = Field(250_000.0, ge=0)
    """A closed sequence with less total notional is not written."""

    max_interval_cv: float = Field(0.35, ge=0)
    """``regular`` = the coefficient of variation of the intervals between clips is at most this."""

    cadence_tolerance: float = Field(0.35, gt=0, lt=1)
    """A closed sequence is described by its regular core: the longest chain of its clips whose every
    interval lies within this share of the median interval between its clips (same-size orders of
    other takers off the cadence are left out and counted in ``off_cadence_clips``). Used when the
    core alone has ``min_clips`` clips and ``min_total_usd`` notional; else the row has every clip."""

    thresholds: SeverityTiers = SeverityTiers(medium=250_000.0, high=1_000_000.0, critical=5_000_000.0)
    """Severity of the ``split_order`` alert: a sequence's total notional strictly above a bound."""

    watermark_delay_seconds: float = Field(10.0, ge=0, le=3600)
    """How long (event time) a taker order stays open for late fills; older fills are dropped."""

    max_orders_in_state: int = Field(5_000, ge=1, le=1_000_000)
    """Per (exchange, symbol, side): clips held in open sequences; beyond it the oldest clip is
    dropped and counted in ``orders_dropped``."""

    @field_validator("max_clip_usd")
    @classmethod
    def _above_min_clip(cls, value: float, info: ValidationInfo) -> float:
        minimum = info.data.get("min_clip_usd")
        if minimum is not None and value <= minimum:
            raise ValueError(f"max_clip_usd ({value}) must be greater than min_clip_usd ({minimum})")
        return value

    @field_validator("horizon_seconds")
    @classmethod
    def _not_below_the_gap(cls, value: float, info: ValidationInfo) -> float:
        gap = info.data.get("max_gap_seconds")
        if gap is not None and value < gap:
            raise ValueError(f"horizon_seconds ({value}) must be at least max_gap_seconds ({gap})")
        return value
