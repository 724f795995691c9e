"""MOD-004's state machine per (exchange, symbol): fills -> taker orders -> windows -> net-flow baseline.

Pure Python, no Spark: it runs in the Spark Python workers (``flows.py``), once per key per
micro-batch in which the key has fills or its event-time timeout fired, and in tests. Times
are microseconds since the epoch (UTC); amounts in the instrument's quote currency.

Given a batch of the key's fills and the watermark ``W`` (the newest trade time seen before
the batch minus ``watermark_delay_seconds``; Spark has already dropped the fills at or before
the previous batch's ``W``), ``KeyState.advance``:

1. makes final the fills with trade time <= ``W``: MOD-002's ``taker_orders`` groups them into
   taker orders (side, trade time, taker order id; runs of consecutive trade ids), and each
   order counts in the window of its trade time (buy or sell, large or not). Later fills wait
   in ``pending``: an order whose fills span micro-batches is still one order;
2. closes every open window whose end is <= ``W``, oldest first: its net flow is compared with
   the baseline as it stood (``baseline_stats``: population mean and std, z), then pushed into
   it. Windows without an order since the previous closed one enter the baseline as zeros
   first, so the baseline always spans the last ``baseline_windows`` windows of event time.

Determinism: all fills of one instant become final in the same call, so orders are added to
their window in (trade time, side, taker order id, first trade number) order whatever the
batch cuts, and the rows and every double are the same however the trades were cut into
micro-batches (``tests/test_state.py`` cuts and shuffles one stream eight ways).

Bounded state per key: ``baseline_windows`` doubles; the open windows (the one holding ``W``,
plus any holding early-final orders), 8 numbers each; the pending fills, those after ``W``
(the watermark delay's worth of the key's trades plus the current batch), at most
``max_pending_fills``. Beyond that bound the oldest pending instants are made final at once,
whole instants oldest first until at most the bound remain, and counted in their window's
``early_final_orders``. A fill of such an instant that arrives later forms an order of its
own: that window's order counts may be too high by up to ``early_final_orders`` (and a large
order may be split), while its notionals stay exact.

Example::

    state = KeyState()
    rows = state.advance(fills, watermark_us, Settings.of(config))   # FLOW_IMBALANCE rows, times in µs
"""

from __future__ import annotations

import bisect
import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field
from typing import TYPE_CHECKING, Any

from coattail_detector_volume_anomaly.baseline import baseline_stats, push_window
from coattail_detector_whale.fills import Fill, TakerOrder, taker_orders

if TYPE_CHECKING:
    from coattail_detector_flow_imbalance.config import FlowImbalanceConfig

STATE_VERSION = 1
_trade_time = operator.attrgetter("event_us")


@dataclass(frozen=True)
class Settings:
    """What the state machine needs of ``FlowImbalanceConfig`` (µs, quote currency)."""

    window_us: int
    baseline_windows: int
    large_order_usd: float
    max_pending_fills: int

    @classmethod
    def of(cls, config: FlowImbalanceConfig) -> Settings:
        return cls(
            window_us=config.window_seconds * 1_000_000,
            baseline_windows=config.baseline_windows,
            large_order_usd=config.large_order_usd,
            max_pending_fills=config.max_pending_fills,
        )


def imbalance(buy: float, sell: float) -> float | None:
    """``(buy - sell) / (buy + sell)``: +1 when takers only bought, -1 when they only sold; None for no flow.

    >>> imbalance(300.0, 100.0)
    0.5
    >>> imbalance(0.0, 0.0) is None
    True
    """
    total = buy + sell
    return None if total == 0 else (buy - sell) / total


@dataclass
class WindowFlow:
    """The taker orders of one open window so far (notionals in quote currency)."""

    start_us: int
    buy_order_count: int = 0
    sell_order_count: int = 0
    buy_quote_volume: float = 0.0
    sell_quote_volume: float = 0.0
    large_buy_quote_volume: float = 0.0
    large_sell_quote_volume: float = 0.0
    early_final_orders: int = 0

    def add(self, order: TakerOrder, large_order_usd: float, *, early: bool) -> None:
        """Count one final order (``early``: made final before the watermark passed it)."""
        large = order.notional >= large_order_usd
        if order.side == "buy":
            self.buy_order_count += 1
            self.buy_quote_volume += order.notional
            self.large_buy_quote_volume += order.notional if large else 0.0
        else:
            self.sell_order_count += 1
            self.sell_quote_volume += order.notional
            self.large_sell_quote_volume += order.notional if large else 0.0
        self.early_final_orders += int(early)

    @property
    def net_quote_flow(self) -> float:
        """B - S: positive when takers bought more than they sold."""
        return self.buy_quote_volume - self.sell_quote_volume

    def row(self, window_us: int, baseline: Sequence[float]) -> dict[str, Any]:
        """The ``FLOW_IMBALANCE`` row of this window (without exchange and symbol; times in µs)."""
        buy, sell = self.buy_quote_volume, self.sell_quote_volume
        stats = baseline_stats(baseline, self.net_quote_flow)
        return {
            "window_start": self.start_us,
            "window_end": self.start_us + window_us,
            "buy_order_count": self.buy_order_count,
            "sell_order_count": self.sell_order_count,
            "buy_quote_volume": buy,
            "sell_quote_volume": sell,
            "large_buy_quote_volume": self.large_buy_quote_volume,
            "large_sell_quote_volume": self.large_sell_quote_volume,
            "net_quote_flow": self.net_quote_flow,
            "imbalance": imbalance(buy, sell),
            "large_order_imbalance": imbalance(self.large_buy_quote_volume, self.large_sell_quote_volume),
            "baseline_size": stats.size,
            "baseline_mean": stats.mean,
            "baseline_std": stats.std,
            "net_flow_z": stats.z_score,
            "early_final_orders": self.early_final_orders,
        }


@dataclass
class KeyState:
    """The state of one (exchange, symbol): see the module docstring."""

    closed_through_us: int | None = None
    """End of the last closed window (None before the first)."""
    baseline: list[float] = field(default_factory=list)
    """Net flows of the last closed windows, oldest first, quiet windows as 0.0."""
    windows: dict[int, WindowFlow] = field(default_factory=dict)
    """Open windows by start."""
    pending: list[Fill] = field(default_factory=list)
    """Fills after the watermark, in trade-time order."""

    @classmethod
    def from_json(cls, text: str) -> KeyState:
        """The state ``to_json`` wrote; refuses another version (start on a new checkpoint)."""
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"flow-imbalance state version {data.get('version')!r}, this code reads {STATE_VERSION}")
        windows = [WindowFlow(*values) for values in data["windows"]]
        return cls(
            closed_through_us=data["closed_through_us"],
            baseline=data["baseline"],
            windows={window.start_us: window for window in windows},
            pending=[Fill(*values) for values in data["pending"]],
        )

    def to_json(self) -> str:
        """This state as text (JSON keeps every double exactly)."""
        return json.dumps(
            {
                "version": STATE_VERSION,
                "closed_through_us": self.closed_through_us,
                "baseline": self.baseline,
                "windows": [astuple(self.windows[start]) for start in sorted(self.windows)],
                "pending": [list(fill) for fill in self.pending],
            },
            separators=(",", ":"),
        )

    def advance(self, fills: Iterable[Fill], watermark_us: int | None, settings: Settings) -> list[dict[str, Any]]:
        """Take a batch of the key's fills, make final what ``watermark_us`` passed, close the windows it passed.

        ``watermark_us`` None: the input is complete (static), every fill is final and every
        window closes. Returns ``FLOW_IMBALANCE`` rows (dicts without exchange and symbol,
        times in µs), oldest window first.
        """
        pending = sorted([*self.pending, *fills], key=_trade_time)
        cut = len(pending) if watermark_us is None else bisect.bisect_right(pending, watermark_us, key=_trade_time)
        self._count(pending[:cut], settings, early=False)
        self.pending = pending[cut:]
        excess = len(self.pending) - settings.max_pending_fills
        if excess > 0:
            cut = bisect.bisect_right(self.pending, self.pending[excess - 1].event_us, key=_trade_time)
            self._count(self.pending[:cut], settings, early=True)
            self.pending = self.pending[cut:]
        return self._close(watermark_us, settings)

    def _count(self, final: Sequence[Fill], settings: Settings, *, early: bool) -> None:
        """Group final fills into taker orders and count each in the window of its trade time."""
        for order in taker_orders(final):
            start = order.event_us - order.event_us % settings.window_us
            window = self.windows.setdefault(start, WindowFlow(start))
            window.add(order, settings.large_order_usd, early=early)

    def _close(self, watermark_us: int | None, settings: Settings) -> list[dict[str, Any]]:
        """Close the open windows ending at or before ``watermark_us`` (all when None), oldest first."""
        rows = []
        capacity = settings.baseline_windows
        for start in sorted(self.windows):
            end = start + settings.window_us
            if watermark_us is not None and end > watermark_us:
                break
            window = self.windows.pop(start)
            if self.closed_through_us is not None:
                quiet = min((start - self.closed_through_us) // settings.window_us, capacity)
                self.baseline = [*self.baseline, *[0.0] * quiet][-capacity:]
            rows.append(window.row(settings.window_us, self.baseline))
            self.baseline = push_window(self.baseline, window.net_quote_flow, capacity)
            self.closed_through_us = end
        return rows

    def next_due_us(self, settings: Settings) -> int | None:
        """The earliest instant the watermark must reach for ``advance`` to change anything (None: nothing waits).

        Always after the watermark of the last ``advance``: pending fills are newer than it and
        open windows end after it.
        """
        times = [self.pending[0].event_us] if self.pending else []
        if self.windows:
            times.append(min(self.windows) + settings.window_us)
        return min(times, default=None)
