"""``modules.spread`` in ``config/features.yaml``: windows, thresholds and quote equivalence of MOD-003.

Validated on the driver by ``SpreadDetector.configure``; a bad value fails with its key
path, e.g. ``config/features.yaml: modules.spread.window_seconds input should be greater
than 0, got 0``.

Example::

    modules:
      spread:
        window_seconds: 30
        watermark_delay_seconds: 15
        thresholds: {medium: 0.5, high: 1.0, critical: 2.0}   # spread in percent
        min_quote_volume: 10000
        quote_equivalents: {USDT: USD}
        quote_equivalents_enabled: true
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from coattail_framework.alerts import SeverityTiers
from coattail_framework.config.validators import check_currency


class SpreadConfig(BaseModel):
    """Settings of MOD-003. Volumes are in the instrument's quote currency; spreads in percent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_seconds: int = Field(30, gt=0, le=86_400)
    """Length of the tumbling event-time windows (UTC, aligned to the epoch) VWAPs are taken over."""

    watermark_delay_seconds: float = Field(15.0, ge=0, le=3600)
    """How long after a window's end (event time) its trades are still accepted.

    A window is emitted once the watermark (max trade time seen minus this delay) passes its
    end; Spark drops a trade as late when its window ended at or before the previous
    micro-batch's watermark."""

    thresholds: SeverityTiers = SeverityTiers(medium=0.5, high=1.0, critical=2.0)
    """Severity of ``spread_divergence`` by spread in percent: strictly above a bound earns it."""

    min_quote_volume: float = Field(10_000.0, ge=0)
    """Both venues need at least this quote volume in the window for an alert (the row is kept)."""

    quote_equivalents: dict[str, str] = Field(default_factory=lambda: {"USDT": "USD"})
    """Quote currencies treated as another one: with ``{USDT: USD}`` BTC/USDT and BTC/USD are one instrument."""

    quote_equivalents_enabled: bool = True
    """False compares only identical canonical symbols (BTC/USDT with BTC/USDT)."""

    @field_validator("quote_equivalents")
    @classmethod
    def _currencies(cls, value: dict[str, str]) -> dict[str, str]:
        for source, target in value.items():
            check_currency(source)
            check_currency(target)
            if target in value:
                raise ValueError(
                    f"{source} maps to {target}, which is itself mapped: map {source} to the final currency"
                )
        return value

    def instrument(self, canonical: str) -> str:
        """The instrument a canonical ``BASE/QUOTE`` symbol is compared as (quote equivalence applied)."""
        base, quote = canonical.split("/")
        if self.quote_equivalents_enabled:
            quote = self.quote_equivalents.get(quote, quote)
        return f"{base}/{quote}"
