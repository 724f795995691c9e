"""MOD-010's correlations without Spark: constructed series with known lags, ties, undefined lags, the ratio."""

from __future__ import annotations

import doctest
import math
import random
import statistics

import pytest

from coattail_detector_lead_lag import correlation
from coattail_detector_lead_lag.correlation import LagProfile, lag_correlations, lag_profile, log_returns


def noise(seed: int, count: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0, 1e-4) for _ in range(count)]


def test_the_module_example_runs() -> None:
    assert doctest.testmod(correlation).failed == 0


def test_b_repeating_a_three_cells_later_peaks_at_plus_three_with_a_correlation_of_exactly_one() -> None:
    driver = noise(1, 63)  # N = 50 window returns, K = 10 lags; a's return at t is b's at t + 3
    returns_a, returns_b = driver[3:], driver[:-3]
    profile = lag_profile(returns_a, returns_b, max_lag=10)
    assert profile is not None
    assert (profile.best_lag, profile.at_lag) == (3, 1.0)
    # rho(0) pairs a[t] with b[t] over the last 50 cells: an independent formula for the same pairs
    assert profile.at_zero == pytest.approx(statistics.correlation(returns_a[10:], returns_b[10:]), abs=1e-12)
    # rho(-2) pairs a[t] (window) with b[t - 2]
    assert profile.at(-2) == pytest.approx(statistics.correlation(returns_a[10:], returns_b[8:-2]), abs=1e-12)
    assert profile.significant(min_correlation=0.2, min_gain=0.05)
    assert profile.lead_lag_ratio is not None
    assert profile.lead_lag_ratio > 1  # a leads


def test_a_repeating_b_three_cells_later_peaks_at_minus_three() -> None:
    driver = noise(2, 63)
    profile = lag_profile(driver[:-3], driver[3:], max_lag=10)
    assert profile is not None
    assert (profile.best_lag, profile.at_lag) == (-3, 1.0)
    assert profile.lead_lag_ratio is not None
    assert profile.lead_lag_ratio < 1


def test_independent_noise_is_not_significant() -> None:
    profile = lag_profile(noise(3, 310), noise(4, 310), max_lag=10)
    assert profile is not None
    assert max(abs(rho) for rho in profile.correlations) < 0.2  # 1 / sqrt(300) = 0.058 per lag
    assert not profile.significant(min_correlation=0.2, min_gain=0.05)


def test_a_contemporaneous_peak_is_never_significant_however_strong() -> None:
    shared = noise(5, 110)
    profile = lag_profile(shared, [2 * value for value in shared], max_lag=10)
    assert profile is not None
    assert (profile.best_lag, profile.at_zero) == (0, 1.0)
    assert not profile.significant(min_correlation=0.2, min_gain=0.05)  # gain over rho(0) is 0


def test_ties_go_to_the_lag_nearest_zero_then_to_the_negative_one() -> None:
    assert LagProfile((0.5, 0.1, -0.5, 0.1, 0.5), max_lag=2).best_lag == 0
    assert LagProfile((0.1, -0.5, 0.2, 0.5, 0.1), max_lag=2).best_lag == -1
    assert LagProfile((0.6, 0.0, 0.2, 0.5, -0.6), max_lag=2).best_lag == -2


def test_the_lead_lag_ratio_sums_squared_correlations_on_each_side() -> None:
    profile = LagProfile((0.1, 0.2, 0.9, 0.4, 0.3), max_lag=2)
    assert profile.lead_lag_ratio == pytest.approx((0.4**2 + 0.3**2) / (0.2**2 + 0.1**2), rel=1e-15)
    assert LagProfile((0.0, 0.9, 0.2), max_lag=1).lead_lag_ratio is None


def test_a_constant_series_has_no_correlation() -> None:
    flat_then_moving = [0.0] * 10 + noise(6, 2)  # N = 10: rho(+2) pairs a's 10 earliest returns, all 0
    assert lag_correlations(flat_then_moving, noise(7, 12), max_lag=2) is None
    assert lag_profile(noise(8, 12), [1e-4] * 12, max_lag=2) is None


def test_log_returns_are_exact_zeros_between_equal_prices() -> None:
    assert log_returns([100.0, 100.0, 101.0, 101.0]) == [0.0, math.log(101.0 / 100.0), 0.0]


def test_series_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same length above 3"):
        lag_correlations([0.1] * 5, [0.2] * 6, max_lag=3)
