"""Rolling-baseline statistics: pure functions, no Spark (they run inside the state function).

The baseline of a window is the list of the same key's previous window volumes, quiet
windows included as zeros. Its standard deviation is the POPULATION one (divisor n): the
baseline is the whole last hour, not a sample of it.

Example::

    >>> baseline_stats([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 12.0)
    BaselineStats(size=8, mean=5.0, std=2.0, z_score=3.5)
    >>> baseline_stats([6.0, 6.0], 60.0).z_score is None   # zero variance: z undefined
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BaselineStats:
    """Mean, population standard deviation and the z-score of one value against a baseline.

    ``mean`` and ``std`` are None for an empty baseline; ``z_score`` is None when the
    baseline is empty or its standard deviation is zero (every value equal).
    """

    size: int
    mean: float | None
    std: float | None
    z_score: float | None


def baseline_stats(baseline: Sequence[float], value: float) -> BaselineStats:
    """Statistics of ``baseline`` and the z-score of ``value`` against it."""
    size = len(baseline)
    if size == 0:
        return BaselineStats(0, None, None, None)
    mean = math.fsum(baseline) / size
    if max(baseline) == min(baseline):
        # Exactly zero: rounding in the sum of squares must not turn a flat baseline into a tiny std.
        return BaselineStats(size, mean, 0.0, None)
    std = math.sqrt(math.fsum((sample - mean) ** 2 for sample in baseline) / size)
    return BaselineStats(size, mean, std, (value - mean) / std)


def push_window(baseline: list[float], value: float, capacity: int) -> list[float]:
    """``baseline`` with ``value`` appended, keeping only the newest ``capacity`` values."""
    return [*baseline, value][-capacity:]
