"""Cohort statistics of markout returns: pure functions, no Spark (they run in the state function).

A cohort is (exchange, symbol, side, notional bucket); its statistics at one horizon cover its
latest ``cohort_size`` returns there. ``t = mean / (std / sqrt(n))`` with the SAMPLE standard
deviation (divisor n - 1): it asks whether the mean return differs from zero.

Caveat (also in docs/modules/MOD-008-whale-alpha.md): the returns are not independent. Whale
orders cluster in time, so the windows of neighbouring orders overlap (two orders a minute
apart share most of their 15-minute path), and the effective sample is smaller than n; the
t-statistic overstates significance, the more so at long horizons. With few samples it is
noisy whatever its value. Read it as a ranking of cohorts, not as a p-value.

Example::

    >>> cohort_stats([4.0, -2.0, 6.0, 4.0])
    CohortStats(n=4, mean_bps=3.0, std_bps=3.4641016151377544, t=1.7320508075688772, hit_rate=0.75)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CohortStats:
    """Statistics of a cohort's returns at one horizon (bps); ``n`` 0 leaves every other field None."""

    n: int
    mean_bps: float | None
    std_bps: float | None
    t: float | None
    hit_rate: float | None


EMPTY = CohortStats(0, None, None, None, None)


def cohort_stats(returns: Sequence[float]) -> CohortStats:
    """Count, mean, sample std (None below 2), t (None when std is None or 0) and share above 0.

    ``math.fsum`` sums exactly: the result does not depend on the order of ``returns``.
    """
    n = len(returns)
    if n == 0:
        return EMPTY
    mean = math.fsum(returns) / n
    hit_rate = sum(1 for value in returns if value > 0) / n
    if n < 2:
        return CohortStats(n, mean, None, None, hit_rate)
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in returns) / (n - 1))
    t = mean / (std / math.sqrt(n)) if std > 0 else None
    return CohortStats(n, mean, std, t, hit_rate)


def bucket_label(notional: float, bounds: Sequence[float]) -> str:
    """The notional bucket of ``notional``: ``100K-500K``, ``1M+``, or ``<100K`` below the first bound."""
    if notional < bounds[0]:
        return f"<{short_usd(bounds[0])}"
    for lower, upper in itertools.pairwise(bounds):
        if notional < upper:
            return f"{short_usd(lower)}-{short_usd(upper)}"
    return f"{short_usd(bounds[-1])}+"


def short_usd(amount: float) -> str:
    """``100K``, ``1M``, ``2.5M``, ``750``: a bound as a label (no currency sign, trailing zeros dropped)."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if amount >= size:
            return f"{amount / size:.6g}{suffix}"
    return f"{amount:.6g}"
