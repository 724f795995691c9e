"""``modules.whale`` in ``config/features.yaml``: thresholds and timing of the whale detector.

Validated on the driver by ``WhaleDetector.configure``; a bad value fails with its key
path, e.g. ``config/features.yaml: modules.whale.min_notional_usd input should be greater
than 0, got -5``.

Example::

    modules:
      whale:
        min_notional_usd: 100000
        thresholds: {medium: 100000, high: 500000, critical: 1000000}
        watermark_delay_seconds: 2
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from coattail_framework.alerts import SeverityTiers
from coattail_framework.config.validators import Currency


class WhaleConfig(BaseModel):
    """Settings of MOD-002. Amounts are in the instrument's quote currency, counted as USD."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_notional_usd: float = Field(100_000.0, gt=0)
    """A taker order with at least this quote volume is written to ``whale_trades``."""

    thresholds: SeverityTiers = SeverityTiers(medium=100_000.0, high=500_000.0, critical=1_000_000.0)
    """Severity of the ``whale_trade`` alert: an order's notional strictly above a bound earns it."""

    watermark_delay_seconds: float = Field(2.0, ge=0, le=3600)
    """How long (event time) an order stays open for fills that arrive late or in a later batch.

    An order is emitted once the watermark (max trade time seen minus this delay) passes
    its trade time; Spark drops fills at or before the previous micro-batch's watermark as late."""

    usd_quote_currencies: list[Currency] = Field(default_factory=lambda: ["USD", "USDT", "USDC"], min_length=1)
    """Quote currencies whose volume counts as USD; instruments quoted in others are skipped."""
