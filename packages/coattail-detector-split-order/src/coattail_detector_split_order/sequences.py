"""Clips and clip sequences of MOD-005: pure functions, no Spark (they run in the state function).

A **clip** is one taker order (MOD-002's grouping of fills) whose notional lies in
[``min_clip_usd``, ``max_clip_usd``]. A **sequence** is a run of clips of one taker side whose
base quantities stay within ``size_tolerance`` of the sequence's median clip quantity, each at
most ``max_gap_seconds`` after the one before: what one actor slicing a large order into
equal pieces (TWAP-style) leaves on a public trade feed. Times are microseconds since the
epoch (UTC); amounts in the quote currency, quantities in the base currency.

The row of a closed sequence describes its **regular core** (``regular_core``) when that is worth
writing: the same-size orders of other takers that fall off the sequence's cadence are left out.

Every figure is independent of the order in which clips were summed (``math.fsum``, sorted
medians): the same clips give the same doubles however the trades reached the state.

Example::

    >>> clips = [Clip(0, 0.5, 30_000.0, 60_000.0, "1"), Clip(20_000_000, 0.5, 30_010.0, 60_020.0, "2"),
    ...          Clip(40_000_000, 0.5, 30_030.0, 60_060.0, "3")]
    >>> figures = sequence_figures("buy", clips, max_interval_cv=0.35)
    >>> figures["clip_count"], figures["interval_mean_seconds"], figures["interval_cv"], figures["regular"]
    (3, 20.0, 0.0, True)
    >>> round(figures["price_drift_bps"], 6)
    10.0
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

BPS = 10_000.0
US_PER_SECOND = 1_000_000


class Clip(NamedTuple):
    """One taker order in a sequence: trade time (µs), base quantity, notional, VWAP, first trade id."""

    event_us: int
    base_quantity: float
    notional: float
    vwap_price: float
    first_trade_id: str | None


@dataclass
class ClipSequence:
    """An open sequence of one taker side: its clips in time order and their median base quantity."""

    side: str
    clips: list[Clip]
    median_quantity: float = field(init=False)

    def __post_init__(self) -> None:
        self._update_median()

    def _update_median(self) -> None:
        self.median_quantity = statistics.median(held.base_quantity for held in self.clips)

    @property
    def start_us(self) -> int:
        """Trade time of the first clip."""
        return self.clips[0].event_us

    @property
    def last_us(self) -> int:
        """Trade time of the last clip."""
        return self.clips[-1].event_us

    def closes_us(self, max_gap_us: int, horizon_us: int) -> int:
        """When no clip can join any more: ``max_gap_us`` after the last clip or ``horizon_us`` after
        the first, whichever comes first."""
        return min(self.last_us + max_gap_us, self.start_us + horizon_us)

    def accepts(self, clip: Clip, max_gap_us: int, horizon_us: int, tolerance: float) -> bool:
        """Whether ``clip`` may join: after the last clip by at most ``max_gap_us``, within ``horizon_us``
        of the first, and of matching size (``size_matches``)."""
        return (
            0 < clip.event_us - self.last_us <= max_gap_us
            and clip.event_us - self.start_us <= horizon_us
            and self.size_matches(clip.base_quantity, tolerance)
        )

    def add(self, clip: Clip) -> None:
        """Append ``clip`` (the newest) and update the median."""
        self.clips.append(clip)
        self._update_median()

    def drop_first(self) -> None:
        """Remove the oldest clip (the state's bound); the caller discards a sequence left empty."""
        del self.clips[0]
        if self.clips:
            self._update_median()

    def size_matches(self, base_quantity: float, tolerance: float) -> bool:
        """Whether ``base_quantity`` lies in [m x (1 - tolerance), m x (1 + tolerance)], m the median."""
        median = self.median_quantity
        return median * (1.0 - tolerance) <= base_quantity <= median * (1.0 + tolerance)

    def size_distance(self, base_quantity: float) -> float:
        """How far ``base_quantity`` is from the median, relative to it (the closest sequence wins)."""
        return abs(base_quantity - self.median_quantity) / self.median_quantity

    def as_json(self) -> dict[str, Any]:
        return {"side": self.side, "clips": [list(clip) for clip in self.clips]}


def interval_statistics(times_us: Sequence[int]) -> tuple[float, float]:
    """Mean interval between consecutive ``times_us`` (seconds) and its coefficient of variation.

    ``times_us``: at least two strictly increasing instants. The CV is the POPULATION standard
    deviation of the intervals over their mean (it describes this sequence, it estimates nothing).

    >>> interval_statistics([0, 10_000_000, 30_000_000])
    (15.0, 0.3333333333333333)
    """
    intervals = [later - earlier for earlier, later in itertools.pairwise(times_us)]
    mean_us = (times_us[-1] - times_us[0]) / len(intervals)
    std_us = math.sqrt(math.fsum((interval - mean_us) ** 2 for interval in intervals) / len(intervals))
    return mean_us / US_PER_SECOND, std_us / mean_us


def regular_core(clips: Sequence[Clip], cadence_tolerance: float) -> list[Clip]:
    """The longest chain of ``clips`` at their own cadence: every interval within ``cadence_tolerance``
    of the median interval.

    ``clips``: at least two, in time order with strictly increasing trade times (a sequence's).
    ``m`` = the median of the intervals between consecutive clips (all of them); the chain is a
    subsequence of the clips, in time order, whose every interval between consecutive members
    lies in [m x (1 - ``cadence_tolerance``), m x (1 + ``cadence_tolerance``)]: what is left of
    a TWAP once same-size orders of other takers that fell between its clips, or before or after
    them, are left out. Of several longest chains: the one that starts first, then the one with
    the smallest sum of ``|interval - m|``, then the one ending first, and so on backwards (the
    earliest last clip, then the earliest clip before it ...). Integer µs arithmetic (``m`` and
    the deviations are kept doubled), so the choice is exact. A single clip when no interval
    between any two clips lies within the bounds.

    Cost: for each clip, one step per earlier clip whose interval to it lies within the bounds
    (found by bisection): at most n^2 / 2 steps for n clips, n at most ``max_orders_in_state``
    (5,000 by default); in practice one or two per clip, as the bounds span 2 x
    ``cadence_tolerance`` x m and m is the median interval (the recordings' sequences hold 8 to
    36 clips).

    >>> times = [0, 11, 20, 40, 60, 80, 100, 120, 140, 156, 160]  # every 20 s, and two other takers
    >>> core = regular_core([Clip(t * 1_000_000, 0.5, 30_000.0, 60_000.0, str(t)) for t in times], 0.35)
    >>> [clip.event_us // 1_000_000 for clip in core]  # m = 20 s; 140 -> 156 is within 35 %, but 16 s
    [0, 20, 40, 60, 80, 100, 120, 140, 160]
    """
    times = [clip.event_us for clip in clips]
    intervals = sorted(later - earlier for earlier, later in itertools.pairwise(times))
    middle = len(intervals) // 2
    twice_median = 2 * intervals[middle] if len(intervals) % 2 else intervals[middle - 1] + intervals[middle]
    twice_low, twice_high = twice_median * (1.0 - cadence_tolerance), twice_median * (1.0 + cadence_tolerance)
    # Per clip, the best chain ending there: rank (-length, start index, doubled deviation sum), the
    # smaller the better, and the clip before it. Ties keep the earliest predecessor (strict <).
    ranks: list[tuple[int, int, int]] = []
    before: list[int | None] = []
    for end, end_us in enumerate(times):
        best, best_before = (-1, end, 0), None
        for start in range(bisect.bisect_left(times, end_us - twice_high / 2), end):
            twice_interval = 2 * (end_us - times[start])
            if twice_interval < twice_low:
                break  # later predecessors are even closer
            length, first, deviation = ranks[start]
            candidate = (length - 1, first, deviation + abs(twice_interval - twice_median))
            if candidate < best:
                best, best_before = candidate, start
        ranks.append(best)
        before.append(best_before)
    chain: list[Clip] = []
    index: int | None = min(range(len(times)), key=ranks.__getitem__)  # the first of equal ranks
    while index is not None:
        chain.append(clips[index])
        index = before[index]
    return chain[::-1]


def sequence_figures(side: str, clips: Sequence[Clip], max_interval_cv: float) -> dict[str, Any]:
    """The ``split_order_sequences`` figures of at least two clips (times in µs, no exchange or symbol)."""
    quantities = [clip.base_quantity for clip in clips]
    notionals = [clip.notional for clip in clips]
    total_notional = math.fsum(notionals)
    total_base_quantity = math.fsum(quantities)
    interval_mean, interval_cv = interval_statistics([clip.event_us for clip in clips])
    first, last = clips[0], clips[-1]
    against_splitter = 1.0 if side == "buy" else -1.0
    return {
        "side": side,
        "sequence_start": first.event_us,
        "sequence_end": last.event_us,
        "clip_count": len(clips),
        "clip_base_quantity": statistics.median(quantities),
        "clip_notional_median": statistics.median(notionals),
        "total_notional": total_notional,
        "total_base_quantity": total_base_quantity,
        "vwap_price": total_notional / total_base_quantity,
        "interval_mean_seconds": interval_mean,
        "interval_cv": interval_cv,
        "regular": interval_cv <= max_interval_cv,
        "price_drift_bps": against_splitter * (last.vwap_price - first.vwap_price) / first.vwap_price * BPS + 0.0,
        "first_trade_id": first.first_trade_id,
    }
