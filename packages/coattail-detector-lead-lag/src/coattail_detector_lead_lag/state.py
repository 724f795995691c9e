"""MOD-010's state machine per instrument: each leg's grid prices, windows as the watermark passes them, leaders.

Runs in the Spark Python workers inside ``applyInPandasWithState`` (``pandas_functions.py``),
once per instrument per micro-batch in which it had trades or its event-time timeout fired;
pure Python and numpy, so tests drive it directly. Times are microseconds since the epoch
(UTC) unless named ``_ms``.

**Grid.** Cell ``c`` covers [``c x g``, ``(c + 1) x g``), ``g`` = ``grid_ms``. A leg's price in
a cell is the price of the last trade at or before the cell's end: the cell's own last trade by
(time, trade number, trade id, price), never by arrival, or the price carried from the cell
before when the cell had none.

**Windows.** At every multiple ``E`` of ``step_seconds``, once the watermark ``W`` reaches ``E``,
every pair of the instrument is evaluated on its legs' returns of the cells [``E - K - N``,
``E``) (``N`` = window, ``K`` = max lag, in cells; ``correlation.lag_profile``). ``W >= E`` means
every trade before ``E`` is in hand: Spark drops a trade at or before the previous batch's
watermark before it reaches this code (and ``advance`` drops it too, for direct callers). A
pair gives a row when both legs had a price at the start of those cells (a trade before them:
a window needs its whole history) and each leg has at least ``min_samples`` non-zero returns in
the window. Significant rows update the pair's leader history (``previous_leader``,
``leader_change``: see ``schema.LEAD_LAG``). Each ``E`` is evaluated once, in order.

**Determinism.** A window reads only cells before ``E <= W``, final when it is evaluated, and
each cell holds its last trade by the order above; correlations are computed with correctly
rounded sums (``correlation``). The rows and every double are the same however the trades were
cut into micro-batches or ordered inside them.

**Bounded state** per instrument: per leg, one trade per cell with a trade, from ``N + K + 1``
cells before the next step end (which is after the watermark) to the newest trade: at most
``N + K + 1`` cells at or before the watermark, plus those of the trades newer than it (the
watermark delay and one micro-batch of event time), and one carried price; per pair the
leaders of its last ``min_consecutive`` significant windows. Defaults: 311 cells per leg.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from coattail_detector_lead_lag.correlation import lag_profile, log_returns

STATE_VERSION = 1
_INTEGER_ID = re.compile(r"^[0-9]{1,18}$")


class Trade(NamedTuple):
    """One trade of a leg; the fields, in this order, are its place in time (last = greatest)."""

    event_us: int
    number: int
    """The trade id as an integer (ids are sequential per venue symbol), -1 when it is not one."""
    trade_id: str
    price: float

    @classmethod
    def of(cls, event_us: int, trade_id: str | None, price: float) -> Trade:
        """A trade from its columns (``trade_id`` None: the venue gave none)."""
        text = trade_id or ""
        return cls(event_us, int(text) if _INTEGER_ID.match(text) else -1, text, price)


def leg_key(exchange: str, symbol: str) -> str:
    """How a leg is named in the state and in the trades given to ``advance``: ``exchange:symbol``."""
    return f"{exchange}:{symbol}"


@dataclass(frozen=True)
class Pair:
    """Two legs of one instrument on different venues, ``exchange_a`` < ``exchange_b`` (MOD-003's pairs)."""

    exchange_a: str
    symbol_a: str
    exchange_b: str
    symbol_b: str

    @property
    def leg_a(self) -> str:
        return leg_key(self.exchange_a, self.symbol_a)

    @property
    def leg_b(self) -> str:
        return leg_key(self.exchange_b, self.symbol_b)

    @property
    def name(self) -> str:
        """The pair's key in the leader history."""
        return f"{self.leg_a}|{self.leg_b}"


@dataclass(frozen=True)
class Settings:
    """What the state machine needs of ``LeadLagConfig`` (µs and grid cells) and the pairs per instrument."""

    grid_us: int
    window_cells: int
    max_lag_cells: int
    step_us: int
    min_correlation: float
    min_gain: float
    min_samples: int
    min_consecutive: int
    pairs: Mapping[str, tuple[Pair, ...]]
    max_leg_silence_us: int = 60_000_000
    """Instrument -> its pairs, in MOD-003's order."""

    @property
    def window_us(self) -> int:
        return self.window_cells * self.grid_us

    @property
    def price_cells(self) -> int:
        """Prices an evaluation reads per leg: ``N + K`` returns need one more price."""
        return self.window_cells + self.max_lag_cells + 1


@dataclass(frozen=True)
class PriceGrid:
    """A leg's cells with a trade (sorted), their prices and the price carried from before them."""

    cells: np.ndarray
    prices: np.ndarray
    carry: float | None

    def last_trade_cell(self, before: int) -> int | None:
        """The newest cell with a trade before cell ``before`` (None: only the carried price, or none)."""
        index = int(np.searchsorted(self.cells, before, side="left")) - 1
        return None if index < 0 else int(self.cells[index])

    def prices_from(self, first: int, count: int) -> np.ndarray | None:
        """The leg's price in cells ``first`` .. ``first + count - 1``; None when it has none at ``first``."""
        last_at_or_before = np.searchsorted(self.cells, np.arange(first, first + count), side="right") - 1
        if last_at_or_before[0] < 0 and self.carry is None:
            return None
        carried_then_known = np.concatenate(([self.carry if self.carry is not None else np.nan], self.prices))
        return carried_then_known[last_at_or_before + 1]


@dataclass
class LegCells:
    """One leg's last trade per cell, and the price of the newest cell dropped from the state."""

    cells: dict[int, Trade] = field(default_factory=dict)
    carry: float | None = None

    def add(self, trade: Trade, grid_us: int) -> None:
        cell = trade.event_us // grid_us
        held = self.cells.get(cell)
        if held is None or trade > held:
            self.cells[cell] = trade

    def grid(self) -> PriceGrid:
        ordered = sorted(self.cells.items())
        return PriceGrid(
            np.array([cell for cell, _ in ordered], dtype=np.int64),
            np.array([trade.price for _, trade in ordered], dtype=np.float64),
            self.carry,
        )

    def drop_before(self, first_kept: int) -> None:
        """Forget cells before ``first_kept``; the newest of them becomes the carried price."""
        old = [cell for cell in self.cells if cell < first_kept]
        if old:
            self.carry = self.cells[max(old)].price
            for cell in old:
                del self.cells[cell]


@dataclass
class InstrumentState:
    """The state of one instrument: see the module docstring."""

    watermark_us: int | None = None
    evaluated_through_us: int | None = None
    """The newest step end the watermark has passed (its windows are done)."""
    legs: dict[str, LegCells] = field(default_factory=dict)
    leaders: dict[str, list[str]] = field(default_factory=dict)
    """Pair name -> the leaders of its latest significant windows, oldest first (at most ``min_consecutive``)."""

    @classmethod
    def from_json(cls, text: str) -> InstrumentState:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"lead-lag state version {data.get('version')!r}, this code reads {STATE_VERSION}")
        legs = {
            leg: LegCells({cell: Trade(*values) for cell, *values in stored["cells"]}, stored["carry"])
            for leg, stored in data["legs"].items()
        }
        return cls(data["watermark_us"], data["evaluated_through_us"], legs, data["leaders"])

    def to_json(self) -> str:
        """This state as text (JSON keeps every double exactly)."""
        legs = {
            leg: {"carry": cells.carry, "cells": [[cell, *trade] for cell, trade in sorted(cells.cells.items())]}
            for leg, cells in sorted(self.legs.items())
        }
        return json.dumps(
            {
                "version": STATE_VERSION,
                "watermark_us": self.watermark_us,
                "evaluated_through_us": self.evaluated_through_us,
                "legs": legs,
                "leaders": self.leaders,
            },
            separators=(",", ":"),
        )

    def advance(
        self, trades: Iterable[tuple[str, Trade]], watermark_us: int, pairs: Sequence[Pair], settings: Settings
    ) -> list[dict[str, Any]]:
        """Take a batch of the instrument's ``(leg, trade)``, then evaluate every window up to ``watermark_us``.

        Returns the ``lead_lag`` rows (dicts, times in µs, without ``symbol``), by window end
        then pair. Trades of legs in none of ``pairs`` are ignored.
        """
        wanted = {leg for pair in pairs for leg in (pair.leg_a, pair.leg_b)}
        for leg, trade in trades:
            if leg in wanted and (self.watermark_us is None or trade.event_us > self.watermark_us):
                self.legs.setdefault(leg, LegCells()).add(trade, settings.grid_us)
        grids = {leg: cells.grid() for leg, cells in self.legs.items()}
        rows = []
        for end in self._ends(self._cell_times(settings), settings, until_us=watermark_us):
            for pair in pairs:
                row = self._evaluate(pair, end, grids, settings)
                if row is not None:
                    rows.append(row)
        passed = watermark_us // settings.step_us * settings.step_us
        if self.evaluated_through_us is None or passed > self.evaluated_through_us:
            self.evaluated_through_us = passed
        if self.watermark_us is None or watermark_us > self.watermark_us:
            self.watermark_us = watermark_us
        first_kept = (self.evaluated_through_us + settings.step_us) // settings.grid_us - settings.price_cells
        for cells in self.legs.values():
            cells.drop_before(first_kept)
        return rows

    def next_due_us(self, settings: Settings) -> int | None:
        """The next step end whose window holds a kept cell (None: no window to come has data)."""
        return next(self._ends(self._cell_times(settings), settings, until_us=None), None)

    def _cell_times(self, settings: Settings) -> list[int]:
        """Start times of every leg's cells with a trade, sorted."""
        return sorted({cell * settings.grid_us for cells in self.legs.values() for cell in cells.cells})

    def _ends(self, cell_times: list[int], settings: Settings, until_us: int | None) -> Iterator[int]:
        """Step ends after the last evaluated one (up to ``until_us``) whose window holds a cell with a trade."""
        step, window = settings.step_us, settings.window_us
        end = step if self.evaluated_through_us is None else self.evaluated_through_us + step
        while until_us is None or end <= until_us:
            index = bisect.bisect_left(cell_times, end - window)
            if index == len(cell_times):
                return
            if cell_times[index] < end:
                yield end
                end += step
            else:  # nothing in this window: on to the first one holding the next cell
                end = (cell_times[index] // step + 1) * step

    def _evaluate(
        self, pair: Pair, end_us: int, grids: Mapping[str, PriceGrid], settings: Settings
    ) -> dict[str, Any] | None:
        """The row of ``pair`` for the window ending at ``end_us``, or None (no history, too few moves)."""
        window, max_lag = settings.window_cells, settings.max_lag_cells
        first = end_us // settings.grid_us - settings.price_cells
        end_cell = end_us // settings.grid_us
        returns = []
        for leg in (pair.leg_a, pair.leg_b):
            grid = grids.get(leg)
            prices = None if grid is None else grid.prices_from(first, settings.price_cells)
            if grid is None or prices is None:
                return None
            last = grid.last_trade_cell(end_cell)
            if last is None or end_us - (last + 1) * settings.grid_us > settings.max_leg_silence_us:
                return None  # the leg fell silent: its carried price says nothing about who leads
            returns.append(log_returns(prices.tolist()))
        returns_a, returns_b = returns
        moves_a = sum(value != 0 for value in returns_a[max_lag:])
        moves_b = sum(value != 0 for value in returns_b[max_lag:])
        if min(moves_a, moves_b) < settings.min_samples:
            return None
        profile = lag_profile(returns_a, returns_b, max_lag)
        if profile is None:
            return None
        best = profile.best_lag
        leader = pair.exchange_a if best > 0 else pair.exchange_b if best < 0 else None
        significant = profile.significant(settings.min_correlation, settings.min_gain)
        held = self.leaders.get(pair.name, [])
        previous = held[0] if len(held) == settings.min_consecutive and len(set(held)) == 1 else None
        if significant and leader is not None:
            self.leaders[pair.name] = [*held, leader][-settings.min_consecutive :]
        return {
            "window_start": end_us - settings.window_us,
            "window_end": end_us,
            "exchange_a": pair.exchange_a,
            "symbol_a": pair.symbol_a,
            "exchange_b": pair.exchange_b,
            "symbol_b": pair.symbol_b,
            "lag_seconds": best * settings.grid_us / 1_000_000,
            "leader": leader,
            "correlation_at_lag": profile.at_lag,
            "correlation_at_zero": profile.at_zero,
            "lead_lag_ratio": profile.lead_lag_ratio,
            "samples": window,
            "nonzero_returns_a": moves_a,
            "nonzero_returns_b": moves_b,
            "significant": significant,
            "previous_leader": previous,
            "leader_change": significant and previous is not None and leader != previous,
        }
