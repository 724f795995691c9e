"""Cross-correlation of two legs' grid returns at every lag: numpy and ``math``, no Spark.

Runs in the Spark Python workers (``state.InstrumentState``) and in tests. ``rho(k)`` is the
Pearson correlation between leg a's return at cell ``t`` and leg b's at ``t + k``: ``k > 0``
means b repeats what a did ``k`` cells earlier (a leads), ``k < 0`` that a repeats b (b leads).

A window of ``N`` returns and lags up to ``K`` cells take ``N + K`` returns per leg, oldest
first. The pairs of ``rho(k)`` are the ``N`` pairs whose LATER return lies in the window (the
last ``N``), the earlier one up to ``K`` cells before it: every lag is measured over the same
number of pairs, and nothing after the window's end is needed.

Sums are ``math.fsum`` (correctly rounded) and logarithms ``math.log``: a correlation depends
on the values only, never on memory layout or summation order, so rows are identical however
the trades were cut into micro-batches.

Example::

    >>> x = [0.0, 1.0, -1.0, 2.0, 0.5, -2.0, 1.5, -0.5, 0.0, 1.0]
    >>> profile = lag_profile(x[2:], x[:-2], max_lag=2)   # a's series is b's, two cells early
    >>> profile.best_lag, profile.at_lag
    (2, 1.0)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def log_returns(prices: Sequence[float]) -> list[float]:
    """``ln(p[i] / p[i - 1])`` of consecutive positive prices (one fewer than ``prices``)."""
    return [math.log(later / earlier) for earlier, later in itertools.pairwise(prices)]


def correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation of two series of equal length; None when either is constant."""
    if x.min() == x.max() or y.min() == y.max():
        return None
    x_centred = x - math.fsum(x.tolist()) / len(x)
    y_centred = y - math.fsum(y.tolist()) / len(y)
    covariance = math.fsum((x_centred * y_centred).tolist())
    spread = math.sqrt(math.fsum((x_centred * x_centred).tolist()) * math.fsum((y_centred * y_centred).tolist()))
    return max(-1.0, min(1.0, covariance / spread))


def lag_correlations(returns_a: Sequence[float], returns_b: Sequence[float], max_lag: int) -> list[float] | None:
    """``rho(k)`` for ``k`` = -``max_lag`` .. +``max_lag`` (see the module docstring); None when one is undefined.

    Both legs give ``N + max_lag`` returns, oldest first; ``rho(k)`` is undefined when a's or
    b's ``N`` returns of its pairs are all equal.
    """
    a = np.asarray(returns_a, dtype=np.float64)
    b = np.asarray(returns_b, dtype=np.float64)
    if len(a) != len(b) or len(a) <= max_lag:
        raise ValueError(f"need two series of the same length above {max_lag}, got {len(a)} and {len(b)}")
    window = len(a) - max_lag
    shifted_a = sliding_window_view(a, window)  # shifted_a[j] = a[j : j + window]
    shifted_b = sliding_window_view(b, window)
    correlations = []
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            pairs = (shifted_a[max_lag - lag], shifted_b[max_lag])
        else:
            pairs = (shifted_a[max_lag], shifted_b[max_lag + lag])
        rho = correlation(*pairs)
        if rho is None:
            return None
        correlations.append(rho)
    return correlations


@dataclass(frozen=True)
class LagProfile:
    """The correlations of one window at every lag and what is read from them (lags in cells)."""

    correlations: tuple[float, ...]
    """``rho(-K)`` .. ``rho(+K)``."""
    max_lag: int

    def at(self, lag: int) -> float:
        """``rho(lag)``."""
        return self.correlations[lag + self.max_lag]

    @property
    def best_lag(self) -> int:
        """``k*``: the lag with the largest ``|rho|``; ties go to the lag nearest 0, then to the negative one."""
        return min(range(-self.max_lag, self.max_lag + 1), key=lambda lag: (-abs(self.at(lag)), abs(lag), lag))

    @property
    def at_lag(self) -> float:
        """``rho(k*)``."""
        return self.at(self.best_lag)

    @property
    def at_zero(self) -> float:
        """``rho(0)``."""
        return self.at(0)

    @property
    def lead_lag_ratio(self) -> float | None:
        """``sum rho(k)^2`` over ``k > 0`` / the same over ``k < 0``: above 1 a leads (None when the divisor is 0).

        Huth and Abergel's lead/lag ratio: it shows a lead shorter than one cell, when the
        contemporaneous correlation ``rho(0)`` is the largest.
        """
        leading = math.fsum(self.at(lag) ** 2 for lag in range(1, self.max_lag + 1))
        lagging = math.fsum(self.at(-lag) ** 2 for lag in range(1, self.max_lag + 1))
        return leading / lagging if lagging else None

    def significant(self, min_correlation: float, min_gain: float) -> bool:
        """``|rho(k*)| >= min_correlation`` and ``|rho(k*)| - |rho(0)| >= min_gain``."""
        peak = abs(self.at_lag)
        return peak >= min_correlation and peak - abs(self.at_zero) >= min_gain


def lag_profile(returns_a: Sequence[float], returns_b: Sequence[float], max_lag: int) -> LagProfile | None:
    """The ``LagProfile`` of two legs' ``N + max_lag`` returns; None when a correlation is undefined."""
    correlations = lag_correlations(returns_a, returns_b, max_lag)
    return None if correlations is None else LagProfile(tuple(correlations), max_lag)
