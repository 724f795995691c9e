"""``modules.template`` in ``config/features.yaml``: the notional MOD-999 writes and alerts on.

Validated on the driver by ``TemplateDetector.configure``; a bad value fails with its key
path, e.g. ``config/features.yaml: modules.template.min_notional input should be greater
than 0, got -5``.

Example::

    modules:
      template:
        min_notional: 1000000
        thresholds: {medium: 0, high: 5000000, critical: 25000000}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from coattail_framework.alerts import SeverityTiers


class TemplateConfig(BaseModel):
    """Settings of MOD-999. Amounts are in the instrument's quote currency (USDT, USD, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_notional: float = Field(1_000_000.0, gt=0)
    """A trade whose quote notional (price x quantity) is at least this is written to ``large_trades``."""

    thresholds: SeverityTiers = SeverityTiers(medium=0.0, high=5_000_000.0, critical=25_000_000.0)
    """Severity of the ``large_trade`` alert by notional, strictly above a bound (default: every row, medium)."""
