"""Per-key tumbling windows and rolling baselines: the state machine behind ``applyInPandasWithState``.

Runs in the Spark Python workers, once per (exchange, symbol) per micro-batch in which the
key has trades or its event-time timeout fired. Times are microseconds since the epoch
(UTC) unless named ``_ms``.

One key's state holds its open windows (partial totals, possibly fed by several
micro-batches) and the quote volumes of its last ``baseline_windows`` closed windows. A
window [start, end) closes when the watermark reaches ``end``. No trade of a closed window
reaches the state in a later batch: Spark drops rows at or before the previous batch's
watermark (its late-events watermark) before the state function, and every window closed
so far ended at or before it. Closed windows are emitted oldest first; each is compared with the
baseline as it stood before it, then pushed into it. Minutes in which the key had no
trade emit no row but enter the baseline as zeros, so the baseline always covers the
last ``baseline_windows`` windows of wall-clock event time. State per key is bounded:
``baseline_windows`` values per side plus the windows still open (those between the
watermark and the newest trade).

Example (pure, no Spark)::

    state = KeyState.empty()
    state.add(window_totals(trades_frame, window_us=60_000_000))
    rows = state.close_until(watermark_us, window_us=60_000_000, capacity=60)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import astuple, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped]

from coattail_detector_volume_anomaly.baseline import baseline_stats, push_window
from coattail_detector_volume_anomaly.schema import VOLUME_AGGREGATES
from coattail_framework.stateful import StateFunction, timeout_ms

if TYPE_CHECKING:
    from pyspark.sql.streaming.state import GroupState

    from coattail_detector_volume_anomaly.config import VolumeAnomalyConfig

TRADE_COLUMNS = ("event_us", "quantity", "quote_volume", "side")
"""Columns ``window_totals`` reads: trade time (µs since the epoch, UTC), base and quote amounts, taker side."""


@dataclass(frozen=True)
class WindowTotals:
    """Running totals of one window of one key (quote amounts in quote currency)."""

    start_us: int
    trade_count: int
    base_volume: float
    quote_volume: float
    buy_quote_volume: float
    sell_quote_volume: float

    def merged(self, other: WindowTotals) -> WindowTotals:
        """The totals of both parts of the same window."""
        return replace(
            self,
            trade_count=self.trade_count + other.trade_count,
            base_volume=self.base_volume + other.base_volume,
            quote_volume=self.quote_volume + other.quote_volume,
            buy_quote_volume=self.buy_quote_volume + other.buy_quote_volume,
            sell_quote_volume=self.sell_quote_volume + other.sell_quote_volume,
        )


def window_totals(trades: Any, window_us: int) -> list[WindowTotals]:
    """Totals per window of one key's trades (a pandas DataFrame with ``TRADE_COLUMNS``).

    Rows arrive in no particular order within a micro-batch; they are sorted first so the
    floating-point sums do not depend on how Spark happened to order them.
    """
    ordered = trades.sort_values(list(TRADE_COLUMNS), kind="stable")
    quote = ordered["quote_volume"]
    frame = pd.DataFrame(
        {
            "start_us": ordered["event_us"] - ordered["event_us"] % window_us,
            "trade_count": 1,
            "base_volume": ordered["quantity"],
            "quote_volume": quote,
            "buy_quote_volume": quote.where(ordered["side"] == "buy", 0.0),
            "sell_quote_volume": quote.where(ordered["side"] == "sell", 0.0),
        }
    )
    sums = frame.groupby("start_us", sort=True).sum()
    return [
        WindowTotals(
            start_us=int(start),
            trade_count=int(row.trade_count),
            base_volume=float(row.base_volume),
            quote_volume=float(row.quote_volume),
            buy_quote_volume=float(row.buy_quote_volume),
            sell_quote_volume=float(row.sell_quote_volume),
        )
        for start, row in sums.iterrows()
    ]


@dataclass
class KeyState:
    """Open windows and rolling baselines (oldest first) of one (exchange, symbol)."""

    closed_through_us: int | None = None
    baseline_quote: list[float] = field(default_factory=list)
    baseline_buy_quote: list[float] = field(default_factory=list)
    baseline_sell_quote: list[float] = field(default_factory=list)
    open_windows: dict[int, WindowTotals] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> KeyState:
        """The state of a key never seen before."""
        return cls()

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> KeyState:
        """The state stored as a ``VOLUME_STATE`` tuple."""
        closed, quote, buy, sell, windows = row
        return cls(
            closed_through_us=closed,
            baseline_quote=json.loads(quote),
            baseline_buy_quote=json.loads(buy),
            baseline_sell_quote=json.loads(sell),
            open_windows={window[0]: WindowTotals(*window) for window in json.loads(windows)},
        )

    def to_row(self) -> tuple[Any, ...]:
        """This state as a ``VOLUME_STATE`` tuple (JSON keeps every float exactly)."""
        windows = [astuple(self.open_windows[start]) for start in sorted(self.open_windows)]
        return (
            self.closed_through_us,
            json.dumps(self.baseline_quote),
            json.dumps(self.baseline_buy_quote),
            json.dumps(self.baseline_sell_quote),
            json.dumps(windows),
        )

    def add(self, totals: Iterable[WindowTotals]) -> None:
        """Fold a micro-batch's window totals into the open windows."""
        for part in totals:
            current = self.open_windows.get(part.start_us)
            self.open_windows[part.start_us] = part if current is None else current.merged(part)

    def close_until(self, watermark_us: int | None, window_us: int, capacity: int) -> list[dict[str, Any]]:
        """Close every open window ending at or before ``watermark_us`` (all when None), oldest first.

        Returns one ``VOLUME_AGGREGATES`` row (as a dict, times in µs) per closed window and
        advances the baselines, zero-filling the quiet windows in between.
        """
        rows = []
        for start in sorted(self.open_windows):
            end = start + window_us
            if watermark_us is not None and end > watermark_us:
                break
            window = self.open_windows.pop(start)
            if self.closed_through_us is not None:
                quiet = [0.0] * min((start - self.closed_through_us) // window_us, capacity)
                self.baseline_quote = [*self.baseline_quote, *quiet][-capacity:]
                self.baseline_buy_quote = [*self.baseline_buy_quote, *quiet][-capacity:]
                self.baseline_sell_quote = [*self.baseline_sell_quote, *quiet][-capacity:]
            rows.append(self._row(window, end))
            self.baseline_quote = push_window(self.baseline_quote, window.quote_volume, capacity)
            self.baseline_buy_quote = push_window(self.baseline_buy_quote, window.buy_quote_volume, capacity)
            self.baseline_sell_quote = push_window(self.baseline_sell_quote, window.sell_quote_volume, capacity)
            self.closed_through_us = end
        return rows

    def _row(self, window: WindowTotals, end_us: int) -> dict[str, Any]:
        total = baseline_stats(self.baseline_quote, window.quote_volume)
        buy = baseline_stats(self.baseline_buy_quote, window.buy_quote_volume)
        sell = baseline_stats(self.baseline_sell_quote, window.sell_quote_volume)
        return {
            "window_start": window.start_us,
            "window_end": end_us,
            "trade_count": window.trade_count,
            "base_volume": window.base_volume,
            "quote_volume": window.quote_volume,
            "buy_quote_volume": window.buy_quote_volume,
            "sell_quote_volume": window.sell_quote_volume,
            "vwap": window.quote_volume / window.base_volume,
            "baseline_size": total.size,
            "baseline_mean": total.mean,
            "baseline_std": total.std,
            "z_score": total.z_score,
            "buy_baseline_mean": buy.mean,
            "buy_baseline_std": buy.std,
            "buy_z_score": buy.z_score,
            "sell_baseline_mean": sell.mean,
            "sell_baseline_std": sell.std,
            "sell_z_score": sell.z_score,
        }

    def next_close_ms(self, window_us: int) -> int | None:
        """The event-time timeout (ms) that fires once the watermark reaches the earliest open window's end.

        Spark fires an event-time timeout when the watermark is strictly greater than it,
        hence one millisecond before the end. None when no window is open.
        """
        if not self.open_windows:
            return None
        return timeout_ms(min(self.open_windows) + window_us)


def aggregates_frame(exchange: str, symbol: str, rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``VOLUME_AGGREGATES`` rows of one key (times as UTC timestamps)."""
    frame = pd.DataFrame(rows)
    for column in ("window_start", "window_end"):
        frame[column] = pd.to_datetime(frame[column], unit="us", utc=True)
    frame.insert(0, "symbol", symbol)
    frame.insert(0, "exchange", exchange)
    return frame[VOLUME_AGGREGATES.fieldNames()]


def volume_state_function(settings: VolumeAnomalyConfig) -> StateFunction:
    """The ``applyInPandasWithState`` function for ``settings``: windows close as the watermark passes their end."""
    window_us = settings.window_seconds * 1_000_000
    capacity = settings.baseline_windows

    def update(key: tuple[Any, ...], batches: Iterable[Any], state: GroupState) -> Iterator[Any]:
        exchange, symbol = key
        current = KeyState.from_row(state.get) if state.exists else KeyState.empty()
        trades = [batch for batch in batches if len(batch)]
        if trades:
            current.add(window_totals(pd.concat(trades, ignore_index=True), window_us))
        rows = current.close_until(state.getCurrentWatermarkMs() * 1000, window_us, capacity)
        state.update(current.to_row())
        timeout_ms = current.next_close_ms(window_us)
        if timeout_ms is not None:
            state.setTimeoutTimestamp(timeout_ms)
        if rows:
            yield aggregates_frame(exchange, symbol, rows)

    return update


def volume_batch_function(settings: VolumeAnomalyConfig) -> Callable[[tuple[Any, ...], Any], Any]:
    """The ``applyInPandas`` function for static input: every trade of a key at once, every window closed."""
    window_us = settings.window_seconds * 1_000_000
    capacity = settings.baseline_windows

    def aggregate(key: tuple[Any, ...], trades: Any) -> Any:
        exchange, symbol = key
        current = KeyState.empty()
        current.add(window_totals(trades, window_us))
        return aggregates_frame(exchange, symbol, current.close_until(None, window_us, capacity))

    return aggregate
