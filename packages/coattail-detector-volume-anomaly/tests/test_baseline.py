"""Rolling-baseline statistics, checked against hand-computed values (no Spark)."""

from __future__ import annotations

import math

import pytest

from coattail_detector_volume_anomaly.baseline import BaselineStats, baseline_stats, push_window


def test_population_std_and_z_of_a_known_baseline() -> None:
    # mean 40/8 = 5; squared deviations 9+1+1+1+0+0+4+16 = 32; population variance 32/8 = 4.
    assert baseline_stats([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], 12.0) == BaselineStats(8, 5.0, 2.0, 3.5)


def test_quiet_windows_are_zeros_in_the_baseline() -> None:
    # [6, 6, 0, 0]: mean 3, every deviation +-3, so std 3; (15 - 3) / 3 = 4.
    assert baseline_stats([6.0, 6.0, 0.0, 0.0], 15.0) == BaselineStats(4, 3.0, 3.0, 4.0)


def test_three_windows() -> None:
    stats = baseline_stats([2.0, 4.0, 4.0], 9.0)
    assert stats.mean == pytest.approx(10 / 3, rel=1e-15)
    assert stats.std == pytest.approx(math.sqrt(8 / 9), rel=1e-15)
    assert stats.z_score == pytest.approx(17 / math.sqrt(8), rel=1e-15)


def test_flat_baseline_has_zero_std_and_no_z() -> None:
    assert baseline_stats([0.1, 0.1, 0.1], 5.0) == BaselineStats(3, pytest.approx(0.1), 0.0, None)
    assert baseline_stats([6.0], 60.0) == BaselineStats(1, 6.0, 0.0, None)


def test_empty_baseline_has_no_statistics() -> None:
    assert baseline_stats([], 5.0) == BaselineStats(0, None, None, None)


def test_push_window_keeps_the_newest_values() -> None:
    assert push_window([1.0, 2.0, 3.0], 4.0, capacity=3) == [2.0, 3.0, 4.0]
    assert push_window([1.0], 4.0, capacity=3) == [1.0, 4.0]
