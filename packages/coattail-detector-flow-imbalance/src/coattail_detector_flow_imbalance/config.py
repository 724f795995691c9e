"""``modules.flow-imbalance`` in ``config/features.yaml``: windows, baseline and alert rules of MOD-004.

Which fills make one taker order, and which instruments count as USD, is not set here:
MOD-004 groups fills as MOD-002 does and reads ``modules.whale.usd_quote_currencies``.
Validated on the driver by ``FlowImbalanceDetector.configure``; a bad value fails with its
key path, e.g. ``config/features.yaml: modules.flow-imbalance.min_imbalance input should be
less than or equal to 1, got 1.5``.

Example::

    modules:
      flow-imbalance:
        window_seconds: 60            # tumbling event-time windows (UTC epoch aligned)
        baseline_windows: 60          # net flows of the previous 60 windows (quiet ones as 0)
        min_baseline_windows: 30      # warm-up: no alert before the baseline holds this many
        large_order_usd: 50000        # a taker order of at least this notional is large
        min_imbalance: 0.3            # |(B - S) / (B + S)| needed for an alert
        min_quote_volume: 250000      # B + S needed for an alert
        thresholds: {medium: 3, high: 4, critical: 5}   # |z| of the net flow; alert above the mildest
        watermark_delay_seconds: 30
        max_pending_fills: 50000      # per key: fills held until the watermark passes their time
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coattail_framework.alerts import SeverityTiers


class FlowImbalanceConfig(BaseModel):
    """Settings of MOD-004. Times in seconds (event time), amounts in quote currency counted as USD."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_seconds: int = Field(60, gt=0, le=86_400)
    """Length of the tumbling event-time windows; windows start at multiples of it since the epoch."""

    baseline_windows: int = Field(60, ge=2, le=10_000)
    """How many previous windows of the same (exchange, symbol) the net-flow baseline holds."""

    min_baseline_windows: int = Field(30, ge=2)
    """Warm-up: a window alerts only when its baseline holds at least this many windows."""

    large_order_usd: float = Field(50_000.0, gt=0, allow_inf_nan=False)
    """A taker order of at least this notional counts in the large-order imbalance."""

    min_imbalance: float = Field(0.3, ge=0, le=1)
    """An alert needs ``|imbalance|`` of at least this."""

    min_quote_volume: float = Field(250_000.0, ge=0, allow_inf_nan=False)
    """An alert needs the window's taker notional (buy + sell) to be at least this."""

    thresholds: SeverityTiers = SeverityTiers(medium=3.0, high=4.0, critical=5.0)
    """Severity bounds on ``|net_flow_z|``; a value strictly above the mildest one alerts."""

    watermark_delay_seconds: float = Field(30.0, ge=0, le=3600)
    """How late (event time) a fill may arrive and still count; an order is final, and a
    window closes, once the watermark (newest trade time minus this) passes its time."""

    max_pending_fills: int = Field(50_000, ge=1, le=10_000_000)
    """Per (exchange, symbol): fills held until the watermark passes their trade time. Beyond
    it, the oldest trade instants are made final early (``early_final_orders``)."""

    @model_validator(mode="after")
    def _warm_up_within_baseline(self) -> FlowImbalanceConfig:
        if self.min_baseline_windows > self.baseline_windows:
            raise ValueError(
                f"min_baseline_windows ({self.min_baseline_windows}) exceeds baseline_windows "
                f"({self.baseline_windows}): no window could ever alert"
            )
        return self
