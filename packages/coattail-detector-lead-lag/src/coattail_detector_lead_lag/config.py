"""``modules.lead-lag`` in ``config/features.yaml``: the grid, the window and the tests of MOD-010.

Which trades are legs of one instrument is not set here: MOD-010 reads ``modules.spread``
(``quote_equivalents``, ``quote_equivalents_enabled``) so its legs and pairs are exactly
MOD-003's. Validated on the driver by ``LeadLagDetector.configure``; a bad value fails with its
key path, e.g. ``config/features.yaml: modules.lead-lag.max_lag_seconds value error, ...``.

Example::

    modules:
      lead-lag:
        grid_ms: 1000                 # last trade price per 1 s cell
        window_seconds: 300           # returns correlated over the last 5 minutes
        max_lag_seconds: 10           # lags tried: -10 s .. +10 s
        step_seconds: 60              # one evaluation per pair per minute
        min_correlation: 0.2
        min_gain: 0.05
        min_samples: 120              # non-zero returns needed on each leg
        max_leg_silence_seconds: 60   # no row when a leg has not traded for this long at the window's end
        min_consecutive: 3
        thresholds: {medium: 0.2, high: 0.4, critical: 0.6}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coattail_framework.alerts import SeverityTiers

MAX_GRID_CELLS = 36_000
"""Cap on (window + max lag) / grid: the cells kept per leg, e.g. one hour of 100 ms cells."""


class LeadLagConfig(BaseModel):
    """Settings of MOD-010. Times are event time; correlations are Pearson's, in [-1, 1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grid_ms: int = Field(1_000, gt=0, le=60_000)
    """Grid cell length (ms, aligned to the epoch): a leg's price in a cell is its last trade's there."""

    window_seconds: int = Field(300, gt=0, le=86_400)
    """Returns correlated per evaluation: the cells of the ``window_seconds`` before the step's end."""

    max_lag_seconds: float = Field(10.0, gt=0)
    """Largest lead tried, each way: lags -max..+max in grid cells (a whole number of cells)."""

    step_seconds: int = Field(60, gt=0)
    """An evaluation per pair each time the watermark passes a multiple of this (epoch-aligned)."""

    min_correlation: float = Field(0.2, gt=0, le=1)
    """Significant: ``|rho(k*)|`` at least this ..."""

    min_gain: float = Field(0.05, gt=0, le=1)
    """... and at least this above ``|rho(0)|`` (so a significant lag is never 0)."""

    min_samples: int = Field(120, ge=3)
    """A pair gives a row only when each leg has at least this many non-zero returns in the window."""

    max_leg_silence_seconds: float = Field(60.0, gt=0, le=86_400)
    """A pair gives no row when a leg's last trade before the window's end is older than this: a
    silent venue (feed down, recording ended) would otherwise correlate on its carried price."""

    min_consecutive: int = Field(3, ge=1, le=100)
    """``leader_change``: a significant leader other than the one of the previous this-many significant windows."""

    thresholds: SeverityTiers = SeverityTiers(medium=0.2, high=0.4, critical=0.6)
    """Severity of ``leader_change`` by ``|rho(k*)|``: strictly above a bound earns it."""

    watermark_delay_seconds: float = Field(5.0, ge=0, le=3600)
    """How long after a trade's time (event time) later trades are still accepted."""

    @model_validator(mode="after")
    def _whole_cells(self) -> LeadLagConfig:
        grid = self.grid_ms
        lag_ms = self.max_lag_seconds * 1000
        if lag_ms != round(lag_ms) or round(lag_ms) % grid:
            raise ValueError(f"max_lag_seconds ({self.max_lag_seconds}) must be a whole number of grid_ms ({grid})")
        for name in ("window_seconds", "step_seconds"):
            if getattr(self, name) * 1000 % grid:
                raise ValueError(f"{name} ({getattr(self, name)}) must be a whole number of grid_ms ({grid})")
        if self.step_seconds > self.window_seconds:
            raise ValueError(f"step_seconds ({self.step_seconds}) exceeds window_seconds ({self.window_seconds})")
        if self.max_lag_cells >= self.window_cells:
            raise ValueError(
                f"max_lag_seconds ({self.max_lag_seconds}) must be shorter than window_seconds ({self.window_seconds})"
            )
        if self.window_cells + self.max_lag_cells > MAX_GRID_CELLS:
            raise ValueError(
                f"(window_seconds + max_lag_seconds) / grid_ms is {self.window_cells + self.max_lag_cells} cells, "
                f"more than {MAX_GRID_CELLS}: use a coarser grid or a shorter window"
            )
        if self.min_samples > self.window_cells:
            raise ValueError(
                f"min_samples ({self.min_samples}) exceeds the {self.window_cells} returns of a window "
                f"(window_seconds / grid_ms)"
            )
        return self

    @property
    def window_cells(self) -> int:
        """Returns in a window (``N``)."""
        return self.window_seconds * 1000 // self.grid_ms

    @property
    def max_lag_cells(self) -> int:
        """Largest lag in cells (``K``)."""
        return round(self.max_lag_seconds * 1000) // self.grid_ms
