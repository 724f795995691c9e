"""The stream job's tests' oracle for MOD-002: whale orders rebuilt from raw Binance fills, without the detector.

Runs in the pytest process. Times are UTC; notionals are quote currency (USDT).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest

from coattail_framework.alerts import make_alert_id
from coattail_framework.events import TradeEvent

WHALE_WATERMARK_DELAY_MS = 2_000
"""MOD-002's default ``watermark_delay_seconds``: orders this close to the last trade stay open."""
WHALE_MIN_NOTIONAL = 100_000
"""MOD-002's default ``min_notional_usd``."""


@dataclass(frozen=True)
class WhaleOrder:
    """One taker order rebuilt from its fills: same trade time and side, consecutive trade ids."""

    order_time: datetime
    side: str
    first_trade_id: str
    fills: int
    notional: Decimal

    @property
    def alert_id(self) -> str:
        micros = int(self.order_time.timestamp()) * 1_000_000 + self.order_time.microsecond
        return make_alert_id("MOD-002", "binance", "BTCUSDT", self.side, str(micros), self.first_trade_id, "")

    @property
    def severity(self) -> str:
        bounds = [("medium", 100_000), ("high", 500_000), ("critical", 1_000_000)]
        return [name for name, bound in bounds if self.notional > bound][-1]


def closed_whale_orders(trades: Sequence[TradeEvent]) -> list[WhaleOrder]:
    """Orders over $100k whose trade time the final watermark (last trade - 2 s) has passed, in time order."""
    groups: dict[tuple[datetime, str], list[TradeEvent]] = {}
    for fill in trades:
        groups.setdefault((fill.timestamp, fill.side), []).append(fill)
    closed_until = max(t.timestamp for t in trades).timestamp() * 1000 - WHALE_WATERMARK_DELAY_MS
    orders = []
    for (order_time, side), fills in groups.items():
        fills.sort(key=lambda fill: int(fill.trade_id or 0))
        runs: list[list[TradeEvent]] = [[fills[0]]]
        for fill in fills[1:]:
            if int(fill.trade_id or 0) == int(runs[-1][-1].trade_id or 0) + 1:
                runs[-1].append(fill)
            else:
                runs.append([fill])
        for run in runs:
            notional = sum((fill.quote_volume for fill in run), Decimal(0))
            if notional > WHALE_MIN_NOTIONAL and order_time.timestamp() * 1000 <= closed_until:
                orders.append(WhaleOrder(order_time, side, str(run[0].trade_id), len(run), notional))
    return sorted(orders, key=lambda order: (order.order_time, order.first_trade_id))


@pytest.fixture(scope="session")
def whale_orders() -> Callable[[Sequence[TradeEvent]], list[WhaleOrder]]:
    """``whale_orders(trades)``: the closed whale orders of Binance BTCUSDT ``trades`` (see ``closed_whale_orders``)."""
    return closed_whale_orders
