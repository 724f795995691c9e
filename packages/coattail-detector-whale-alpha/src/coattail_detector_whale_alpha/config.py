"""``modules.whale-alpha`` in ``config/features.yaml``: horizons, cohorts and the signal of MOD-008.

Which orders are whale orders is not set here: MOD-008 reads ``modules.whale``
(``min_notional_usd``, ``usd_quote_currencies``) so its orders are exactly MOD-002's.
Validated on the driver by ``WhaleAlphaDetector.configure``; a bad value fails with its key
path, e.g. ``config/features.yaml: modules.whale-alpha.score_horizon_seconds value error, ...``.

Example::

    modules:
      whale-alpha:
        horizons_seconds: [60, 300, 900, 3600]   # markout horizons after the order (s)
        entry_delay_seconds: 5                    # entry = VWAP of (order, order + 5 s]
        notional_buckets: [100000, 500000, 1000000]
        cohort_size: 200                          # returns kept per cohort and horizon
        min_cohort_orders: 30                     # no signal from a smaller cohort
        score_horizon_seconds: 300
        signal_statistic: t                       # t | mean_bps
        thresholds: {medium: 2, high: 3, critical: 4}
"""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coattail_framework.alerts import SeverityTiers

MAX_HORIZON_SECONDS = 86_400


class WhaleAlphaConfig(BaseModel):
    """Settings of MOD-008. Times in seconds (event time), amounts in quote currency counted as USD."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizons_seconds: list[int] = Field(default_factory=lambda: [60, 300, 900, 3600], min_length=1, max_length=8)
    """Markout horizons after the order time, strictly increasing; each longer than the entry delay."""

    entry_delay_seconds: float = Field(5.0, gt=0, le=300)
    """The follower's entry: the VWAP of the key's trades in (order time, order time + this]."""

    notional_buckets: list[float] = Field(default_factory=lambda: [100_000.0, 500_000.0, 1_000_000.0], min_length=1)
    """Lower bounds of the notional buckets of the cohorts, strictly increasing and positive."""

    cohort_size: int = Field(200, ge=2, le=10_000)
    """How many of a cohort's latest returns per horizon its statistics cover."""

    min_cohort_orders: int = Field(30, ge=2)
    """A ``whale_alpha_signal`` needs at least this many returns in the cohort at the score horizon."""

    score_horizon_seconds: int = 300
    """The horizon whose cohort statistics make the signal; one of ``horizons_seconds``."""

    signal_statistic: Literal["t", "mean_bps"] = "t"
    """``t``: the cohort's t-statistic at the score horizon; ``mean_bps``: its mean return."""

    thresholds: SeverityTiers = SeverityTiers(medium=2.0, high=3.0, critical=4.0)
    """Severity bounds on the signal statistic; a value strictly above the mildest one alerts."""

    max_exit_age_seconds: float = Field(60.0, gt=0, le=86_400)
    """A markout whose last trade at or before ``order_time + h`` is older than this (the venue was
    silent: feed down or market closed) gets no return and stays out of its cohort; the row, with
    its stale exit, is still written."""

    watermark_delay_seconds: float = Field(2.0, ge=0, le=3600)
    """How long (event time) an order stays open for late fills; MOD-002's default."""

    max_pending_orders: int = Field(5_000, ge=1, le=1_000_000)
    """Per (exchange, symbol): whale orders followed at once; a whale order beyond it is not
    followed and counted in ``orders_untracked``."""

    @model_validator(mode="after")
    def _consistent(self) -> WhaleAlphaConfig:
        horizons = self.horizons_seconds
        if any(later <= earlier for earlier, later in itertools.pairwise(horizons)):
            raise ValueError(f"horizons_seconds must be strictly increasing, got {horizons}")
        if horizons[0] <= self.entry_delay_seconds or horizons[-1] > MAX_HORIZON_SECONDS:
            raise ValueError(
                f"horizons_seconds must lie in (entry_delay_seconds = {self.entry_delay_seconds}, "
                f"{MAX_HORIZON_SECONDS}], got {horizons}"
            )
        if self.score_horizon_seconds not in horizons:
            raise ValueError(f"score_horizon_seconds {self.score_horizon_seconds} is not one of {horizons}")
        buckets = self.notional_buckets
        if buckets[0] <= 0 or any(later <= earlier for earlier, later in itertools.pairwise(buckets)):
            raise ValueError(f"notional_buckets must be positive and strictly increasing, got {buckets}")
        if self.min_cohort_orders > self.cohort_size:
            raise ValueError(f"min_cohort_orders ({self.min_cohort_orders}) exceeds cohort_size ({self.cohort_size})")
        return self
