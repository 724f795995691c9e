"""Pure policies: reconnect backoff (the framework's, seeded) and the gap / stale / duplicate / resync tracker."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from coattail_connector_coinbase.connector import CoinbaseConnector, reset_if_healthy
from coattail_connector_coinbase.settings import BackoffSettings
from coattail_connector_coinbase.tracking import Gap, Resync, TradeTracker
from coattail_framework.resilience import Backoff


def test_reconnect_backoff_is_the_framework_policy_with_the_connector_settings() -> None:
    settings = {"backoff": {"initial": 1, "maximum": 8, "multiplier": 2, "jitter": 0.5}}
    connector = CoinbaseConnector(settings=settings, rng=random.Random(42))
    policy = connector._backoff
    assert isinstance(policy, Backoff)
    assert (policy.initial, policy.cap, policy.multiplier, policy.jitter) == (1.0, 8.0, 2.0, 0.5)
    delays = policy.delays(40)
    expected_rng = random.Random(42)
    assert delays == [min(8.0, 2.0**attempt) * (1 - 0.5 * expected_rng.random()) for attempt in range(40)]


def test_backoff_resets_only_after_a_healthy_connection() -> None:
    policy = Backoff(initial=1, cap=30, jitter=0)
    policy.delays(3)
    reset_if_healthy(policy, subscribed_for=None, healthy_after=10)  # never subscribed
    reset_if_healthy(policy, subscribed_for=9.9, healthy_after=10)
    assert policy.next_delay() == 8.0
    reset_if_healthy(policy, subscribed_for=10.0, healthy_after=10)
    assert policy.next_delay() == 1.0


def test_backoff_settings_reject_cap_below_initial() -> None:
    with pytest.raises(ValidationError, match=r"backoff.maximum \(1.0\) must be >= backoff.initial \(2.0\)"):
        BackoffSettings(initial=2, maximum=1)


def test_tracker_gaps_from_trade_ids_and_heartbeats() -> None:
    tracker = TradeTracker(dedupe_window=10)
    assert tracker.observe_trade("SKL-USD", 100, 0.0) is None  # first trade: nothing known before it
    assert tracker.observe_trade("SKL-USD", 101, 0.0) is None
    assert tracker.observe_trade("SKL-USD", 105, 0.0) == Gap("SKL-USD", 102, 104)
    assert tracker.observe_last_trade_id("SKL-USD", 105, 0.0) is None
    assert tracker.observe_last_trade_id("SKL-USD", 107, 0.0) == Gap("SKL-USD", 106, 107)
    assert tracker.observe_trade("SKL-USD", 108, 0.0) is None  # heartbeat already reported 106..107
    assert tracker.observe_trade("SKL-USD", 103, 0.0) is None  # late, inside a known gap
    assert tracker.observe_trade("BAND-GBP", 5, 0.0) is None  # products are independent
    assert tracker.resyncs == []


def test_tracker_stale_sequences_per_product() -> None:
    tracker = TradeTracker(dedupe_window=10)
    tracker.observe_sequence("SKL-USD", 200)
    assert tracker.is_stale("SKL-USD", 199, 7, 0.0)
    assert not tracker.is_stale("SKL-USD", 200, 8, 0.0)  # last_match after reconnect repeats the sequence
    assert not tracker.is_stale("SKL-USD", 250, 9, 0.0)
    assert not tracker.is_stale("BAND-GBP", 1, 1, 0.0)


def test_tracker_dedupe_window_is_bounded() -> None:
    tracker = TradeTracker(dedupe_window=3)
    for trade_id in (1, 2, 3):
        tracker.remember("SKL-USD", trade_id)
    assert tracker.is_duplicate("SKL-USD", 1)
    assert not tracker.is_duplicate("BAND-GBP", 1)
    tracker.remember("SKL-USD", 4)
    assert not tracker.is_duplicate("SKL-USD", 1)
    assert all(tracker.is_duplicate("SKL-USD", t) for t in (2, 3, 4))


def test_an_absurd_sequence_is_reset_after_a_bounded_run_of_frames_and_the_run_is_a_gap() -> None:
    tracker = TradeTracker(dedupe_window=100, resync_frames=5, resync_seconds=30)
    for sequence, trade_id in ((10, 1), (10**18, 2)):
        assert not tracker.is_stale("SKL-USD", sequence, trade_id, 0.0)
        tracker.observe_sequence("SKL-USD", sequence)
        assert tracker.observe_trade("SKL-USD", trade_id, 0.0) is None
        tracker.remember("SKL-USD", trade_id)
    assert tracker.is_stale("SKL-USD", 11, 1, 0.0)  # a repeat of an emitted trade: stale, not counted
    stale = [tracker.is_stale("SKL-USD", 12 + n, 3 + n, 1.0) for n in range(5)]
    assert stale == [True, True, True, True, False]  # the 5th new trade in a row resets the mark
    assert tracker.resyncs == [Resync("SKL-USD", "sequence", 10**18, 16, 5)]
    tracker.observe_sequence("SKL-USD", 16)
    assert tracker.observe_trade("SKL-USD", 7, 1.0) == Gap("SKL-USD", 3, 6)  # the dropped ones, for backfill
    assert not tracker.is_stale("SKL-USD", 17, 8, 1.0)


def test_an_absurd_sequence_and_trade_id_in_one_frame_reset_both_marks() -> None:
    tracker = TradeTracker(dedupe_window=100, resync_frames=3, resync_seconds=30)
    tracker.observe_sequence("SKL-USD", 10)
    tracker.observe_trade("SKL-USD", 1, 0.0)
    tracker.observe_sequence("SKL-USD", 10**18)
    assert tracker.observe_trade("SKL-USD", 10**15, 0.0) == Gap("SKL-USD", 2, 10**15 - 1)
    assert [tracker.is_stale("SKL-USD", 10 + n, 2 + n, 0.0) for n in range(3)] == [True, True, False]
    assert tracker.observe_trade("SKL-USD", 4, 0.0) == Gap("SKL-USD", 2, 3)


def test_a_resync_also_comes_after_seconds_with_few_frames() -> None:
    tracker = TradeTracker(dedupe_window=100, resync_frames=1000, resync_seconds=30)
    tracker.observe_sequence("SKL-USD", 10**18)
    assert tracker.is_stale("SKL-USD", 11, 1, 100.0)
    assert tracker.is_stale("SKL-USD", 12, 2, 129.9)
    assert not tracker.is_stale("SKL-USD", 13, 3, 130.0)
    assert [r.frames for r in tracker.resyncs] == [3]


def test_an_absurd_trade_id_is_reset_so_real_gaps_are_found_again() -> None:
    tracker = TradeTracker(dedupe_window=100, resync_frames=3, resync_seconds=30)
    assert tracker.observe_trade("SKL-USD", 100, 0.0) is None
    assert tracker.observe_last_trade_id("SKL-USD", 10**15, 0.0) == Gap("SKL-USD", 101, 10**15)
    assert [tracker.observe_trade("SKL-USD", t, 0.0) for t in (101, 102, 103)] == [None, None, None]
    assert tracker.resyncs == [Resync("SKL-USD", "trade_id", 10**15, 103, 3)]
    assert tracker.observe_trade("SKL-USD", 110, 0.0) == Gap("SKL-USD", 104, 109)  # a real gap, found


def test_disagreement_ends_when_a_frame_agrees() -> None:
    tracker = TradeTracker(dedupe_window=100, resync_frames=2, resync_seconds=30)
    tracker.observe_sequence("SKL-USD", 50)
    assert tracker.is_stale("SKL-USD", 40, 1, 0.0)
    assert not tracker.is_stale("SKL-USD", 51, 2, 0.0)  # agrees: the run is over
    assert tracker.is_stale("SKL-USD", 41, 3, 0.0)  # a new run starts at 1
    assert tracker.resyncs == []
