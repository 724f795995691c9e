"""MOD-008's state machine per (exchange, symbol): whale orders, their markouts and the cohorts.

Runs in the Spark Python workers inside ``applyInPandasWithState`` (``markouts.py``), once per
key per micro-batch in which the key had trades or its event-time timeout fired; pure Python,
so tests drive it directly. Times are microseconds since the epoch (UTC) unless named ``_ms``.

Watermark ``W`` (event time): Spark drops a trade at or before the previous batch's watermark
before it reaches this code, so once ``W`` passes an instant, every trade up to it is in hand.
That gives four kinds of event, each handled when ``W`` reaches its time:

- **order** at ``t``: the fills at ``t`` are grouped into taker orders exactly as MOD-002 does
  (``coattail_detector_whale.fills``); an order of at least ``min_notional_usd`` is followed
  (up to ``max_pending_orders`` at once) and the signal is taken: its cohort's statistics at
  the score horizon over the markouts resolved by ``t``.
- **entry** at ``t + entry_delay``: entry price = VWAP of the key's trades in (``t``,
  ``t + entry_delay``]; the entry row (horizon 0) is written.
- **markout** at ``t + h``: exit = the last trade at or before ``t + h``; the return joins the
  cohort and the markout row is written with the cohort's statistics after it. An exit older
  than ``max_exit_age`` (a silent venue) gives no return: the row keeps its stale exit.

Events are handled in event-time order (markouts before orders at the same instant), and a
batch only ever handles events in (previous ``W``, ``W``], so the rows, the cohorts and every
double are the same however the trades were cut into micro-batches (sums are ``math.fsum``).

Bounded state: the trades after ``W`` (about ``watermark_delay_seconds`` of the key's trades);
at most ``max_pending_orders`` orders, each with its best exit per horizon and, until its entry
resolves, the trades of its entry window; per cohort and horizon ``cohort_size`` returns. An
order beyond ``max_pending_orders`` is not followed: counted in ``orders_untracked``.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from coattail_detector_whale.fills import Fill, TakerOrder, taker_orders, trade_number
from coattail_detector_whale_alpha.cohorts import EMPTY, CohortStats, bucket_label, cohort_stats

BPS = 10_000.0
STATE_VERSION = 1


class Trade(NamedTuple):
    """One trade of the key; ``ORDER_FIELDS`` fields order trades in time (ties: trade number, id, price, size)."""

    event_us: int
    unnumbered: bool
    number: int
    id_text: str
    price: float
    quantity: float
    quote_volume: float | None
    side: str | None
    taker_order_id: str | None
    id_missing: bool

    @classmethod
    def of(
        cls,
        event_us: int,
        trade_id: str | None,
        price: float,
        quantity: float,
        quote_volume: float | None,
        side: str | None,
        taker_order_id: str | None,
    ) -> Trade:
        """A trade from its columns (``trade_id`` None: the venue gave none)."""
        number = trade_number(trade_id)
        return cls(
            event_us,
            number is None,
            number or 0,
            trade_id or "",
            price,
            quantity,
            quote_volume,
            side,
            taker_order_id,
            trade_id is None,
        )

    @property
    def quote(self) -> float:
        """Quote volume (price x quantity when the venue gave none)."""
        return self.price * self.quantity if self.quote_volume is None else self.quote_volume

    def fill(self) -> Fill:
        """This trade as MOD-002 reads it."""
        trade_id = None if self.id_missing else self.id_text
        return Fill(
            self.event_us, self.side, self.taker_order_id, trade_id, self.price, self.quantity, self.quote_volume
        )


ORDER_FIELDS = 6
"""``Trade[:ORDER_FIELDS]`` is a trade's place in time: the last trade at or before an instant is the greatest."""


def in_time_order(trades: Iterable[Trade]) -> list[Trade]:
    """``trades`` sorted by their place in time (never by side or ids that may be None)."""
    return sorted(trades, key=lambda trade: trade[:ORDER_FIELDS])


@dataclass(frozen=True)
class Settings:
    """What the state machine needs of ``WhaleAlphaConfig`` and ``modules.whale`` (µs, USD)."""

    min_notional_usd: float
    horizons_us: tuple[int, ...]
    entry_delay_us: int
    notional_buckets: tuple[float, ...]
    cohort_size: int
    score_horizon_us: int
    max_pending_orders: int
    max_exit_age_us: int = 60_000_000


@dataclass
class Pending:
    """A followed whale order: its figures, entry window trades (until resolved) and best exits."""

    order: dict[str, Any]
    entry_trades: list[list[float]] = field(default_factory=list)
    """``[quote volume, base quantity]`` of each trade in the entry window so far."""
    entry: list[Any] | None = None
    """``[price or None, trade count]`` once the entry resolved."""
    exits: dict[str, list[Any]] = field(default_factory=dict)
    """Unresolved horizon (µs, as text) -> ``Trade[:ORDER_FIELDS]`` of the latest trade at or before
    ``t + h`` so far (empty before any)."""
    signal: dict[str, Any] = field(default_factory=dict)

    @property
    def event_us(self) -> int:
        return int(self.order["event_us"])

    def as_json(self) -> dict[str, Any]:
        return {"order": self.order, "entry_trades": self.entry_trades, "entry": self.entry, "exits": self.exits,
                "signal": self.signal}  # fmt: skip


@dataclass
class KeyState:
    """The state of one (exchange, symbol): see the module docstring."""

    watermark_us: int | None = None
    buffer: list[Trade] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    cohorts: dict[str, list[float]] = field(default_factory=dict)
    untracked: int = 0

    @classmethod
    def from_json(cls, text: str) -> KeyState:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"whale-alpha state version {data.get('version')!r}, this code reads {STATE_VERSION}")
        return cls(
            watermark_us=data["watermark_us"],
            buffer=[Trade(*values) for values in data["buffer"]],
            pending=[Pending(**values) for values in data["pending"]],
            cohorts=data["cohorts"],
            untracked=data["untracked"],
        )

    def to_json(self) -> str:
        """This state as text (JSON keeps every double exactly)."""
        return json.dumps(
            {
                "version": STATE_VERSION,
                "watermark_us": self.watermark_us,
                "buffer": [list(trade) for trade in self.buffer],
                "pending": [pending.as_json() for pending in self.pending],
                "cohorts": self.cohorts,
                "untracked": self.untracked,
            },
            separators=(",", ":"),
        )

    def advance(self, trades: Iterable[Trade], watermark_us: int, settings: Settings) -> list[dict[str, Any]]:
        """Take a batch of the key's trades, then handle every event up to ``watermark_us``.

        Returns the ``whale_markouts`` rows (dicts, times in µs, without exchange and symbol)
        in event-time order.
        """
        batch = in_time_order(trades)
        for pending in self.pending:
            _follow(pending, batch, settings)
        self.buffer = in_time_order([*self.buffer, *batch])
        cut = bisect.bisect_right(self.buffer, watermark_us, key=lambda trade: trade.event_us)
        final, self.buffer = self.buffer[:cut], self.buffer[cut:]
        orders = [o for o in taker_orders(t.fill() for t in final) if o.notional >= settings.min_notional_usd]
        after = [*final, *self.buffer]
        rows = self._handle(orders, after, watermark_us, settings)
        self.watermark_us = watermark_us
        return rows

    def _handle(
        self, orders: Sequence[TakerOrder], trades: Sequence[Trade], watermark_us: int, settings: Settings
    ) -> list[dict[str, Any]]:
        """Orders, entries and markouts up to ``watermark_us``, in event-time order."""
        events: list[tuple[int, int, int, int]] = []
        """``(time µs, kind, sequence, index)``: kind 0 markout, 1 order, 2 entry."""
        sequence = 0

        def schedule(pending_index: int) -> None:
            nonlocal sequence
            pending = self.pending[pending_index]
            if pending.entry is None and pending.event_us + settings.entry_delay_us <= watermark_us:
                heapq.heappush(events, (pending.event_us + settings.entry_delay_us, 2, sequence, pending_index))
                sequence += 1
            for horizon in pending.exits:
                if pending.event_us + int(horizon) <= watermark_us:
                    heapq.heappush(events, (pending.event_us + int(horizon), 0, sequence, pending_index))
                    sequence += 1

        for index in range(len(self.pending)):
            schedule(index)
        for index, order in enumerate(orders):
            heapq.heappush(events, (order.event_us, 1, sequence, index))
            sequence += 1
        rows: list[dict[str, Any]] = []
        followed = len(self.pending)  # orders with a horizon still open (those done leave at the end)
        while events:
            at, kind, _, index = heapq.heappop(events)
            if kind == 1:
                if followed >= settings.max_pending_orders:
                    self.untracked += 1
                    continue
                self.pending.append(self._start(orders[index], trades, settings))
                followed += 1
                schedule(len(self.pending) - 1)
            elif kind == 2:
                rows.append(self._entry_row(self.pending[index], settings))
            else:
                pending = self.pending[index]
                rows.append(self._markout_row(pending, at - pending.event_us, settings))
                followed -= not pending.exits
        self.pending = [pending for pending in self.pending if pending.exits]
        return rows

    def _start(self, order: TakerOrder, trades: Sequence[Trade], settings: Settings) -> Pending:
        """Follow ``order``: its figures, the signal at its time and what ``trades`` already tell."""
        bucket = bucket_label(order.notional, settings.notional_buckets)
        figures = {
            "side": order.side,
            "event_us": order.event_us,
            "first_trade_id": order.first_trade_id,
            "last_trade_id": order.last_trade_id,
            "taker_order_id": order.taker_order_id,
            "notional": order.notional,
            "base_quantity": order.base_quantity,
            "fill_count": order.fill_count,
            "order_vwap_price": order.vwap_price,
            "notional_bucket": bucket,
        }
        signal = cohort_stats(self.cohorts.get(_cohort(order.side, bucket, settings.score_horizon_us), []))
        pending = Pending(order=figures, exits={str(h): [] for h in settings.horizons_us}, signal=_stats(signal))
        _follow(pending, trades, settings)
        return pending

    def _entry_row(self, pending: Pending, settings: Settings) -> dict[str, Any]:
        """Resolve the entry (fsum: exact, whatever order the trades came in) and write the horizon 0 row."""
        quotes = [quote for quote, _ in pending.entry_trades]
        bases = [base for _, base in pending.entry_trades]
        price = math.fsum(quotes) / math.fsum(bases) if pending.entry_trades else None
        pending.entry, pending.entry_trades = [price, len(quotes)], []
        returned = None if price is None else 0.0
        return self._row(pending, 0, settings.entry_delay_us, price, None, returned, EMPTY, settings)

    def _markout_row(self, pending: Pending, horizon_us: int, settings: Settings) -> dict[str, Any]:
        """Resolve one horizon: exit, side-signed return, the cohort with it, the row."""
        best = pending.exits.pop(str(horizon_us))
        exit_us, exit_price = best[0], best[4]
        entry_price = None if pending.entry is None else pending.entry[0]
        returned = None
        stats = EMPTY
        key = _cohort(pending.order["side"], pending.order["notional_bucket"], horizon_us)
        fresh = pending.event_us + horizon_us - exit_us <= settings.max_exit_age_us
        if entry_price is not None and fresh:
            sign = 1.0 if pending.order["side"] == "buy" else -1.0
            returned = sign * (exit_price - entry_price) / entry_price * BPS + 0.0
            returns = self.cohorts.setdefault(key, [])
            returns.append(returned)
            del returns[: -settings.cohort_size]
            stats = cohort_stats(returns)
        return self._row(pending, horizon_us, horizon_us, exit_price, exit_us, returned, stats, settings)

    def _row(
        self,
        pending: Pending,
        horizon_us: int,
        end_offset_us: int,
        exit_price: float | None,
        exit_us: int | None,
        return_bps: float | None,
        stats: CohortStats,
        settings: Settings,
    ) -> dict[str, Any]:
        """A ``WHALE_MARKOUTS`` row without exchange and symbol (times in µs)."""
        entry = pending.entry or [None, 0]
        return {
            **{name: value for name, value in pending.order.items() if name != "event_us"},
            "order_time": pending.event_us,
            "horizon_seconds": horizon_us // 1_000_000,
            "horizon_end": pending.event_us + end_offset_us,
            "entry_price": entry[0],
            "entry_trade_count": entry[1],
            "exit_price": exit_price,
            "exit_time": exit_us,
            "return_bps": return_bps,
            "cohort_n": stats.n if stats.n else None,
            "cohort_mean_bps": stats.mean_bps,
            "cohort_std_bps": stats.std_bps,
            "cohort_t": stats.t,
            "cohort_hit_rate": stats.hit_rate,
            "signal_horizon_seconds": settings.score_horizon_us // 1_000_000,
            **{f"signal_{name}": value for name, value in pending.signal.items()},
            "orders_untracked": self.untracked,
        }

    def next_event_us(self, settings: Settings) -> int | None:
        """The earliest instant at which the watermark makes an event due (None: nothing pending)."""
        times = [self.buffer[0].event_us] if self.buffer else []
        for pending in self.pending:
            if pending.entry is None:
                times.append(pending.event_us + settings.entry_delay_us)
            times.extend(pending.event_us + int(horizon) for horizon in pending.exits)
        return min(times, default=None)


def _cohort(side: str, bucket: str, horizon_us: int) -> str:
    return f"{side}|{bucket}|{horizon_us // 1_000_000}"


def _stats(stats: CohortStats) -> dict[str, Any]:
    return {"n": stats.n, "mean_bps": stats.mean_bps, "std_bps": stats.std_bps, "t": stats.t,
            "hit_rate": stats.hit_rate}  # fmt: skip


def _follow(pending: Pending, trades: Sequence[Trade], settings: Settings) -> None:
    """Fold sorted ``trades`` into ``pending``'s entry window and best exits."""
    if not trades:
        return
    start = pending.event_us
    times = [trade.event_us for trade in trades]
    if pending.entry is None:
        low = bisect.bisect_right(times, start)
        high = bisect.bisect_right(times, start + settings.entry_delay_us)
        pending.entry_trades.extend([trade.quote, trade.quantity] for trade in trades[low:high])
    for horizon, best in pending.exits.items():
        last = bisect.bisect_right(times, start + int(horizon)) - 1
        if last >= 0:
            candidate = list(trades[last][:ORDER_FIELDS])
            if not best or tuple(candidate) > tuple(best):
                pending.exits[horizon] = candidate
