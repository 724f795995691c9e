"""Pure policies: reconnect backoff (seeded) and the gap / stale / duplicate tracker."""

from __future__ import annotations

import logging
import random

import pytest
from pydantic import ValidationError

from coattail_connector_coinbase.backoff import Backoff
from coattail_connector_coinbase.inspection import RateLimitedLog
from coattail_connector_coinbase.settings import BackoffSettings
from coattail_connector_coinbase.tracking import Gap, TradeTracker


def test_backoff_grows_then_caps_without_jitter() -> None:
    policy = Backoff(BackoffSettings(initial=0.5, maximum=4, multiplier=2, jitter=0), random.Random(1))
    assert [policy.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_backoff_jitter_stays_within_its_share_and_is_seeded() -> None:
    settings = BackoffSettings(initial=1, maximum=8, multiplier=2, jitter=0.5)
    first = Backoff(settings, random.Random(42))
    delays = [first.next_delay() for _ in range(40)]
    again = Backoff(settings, random.Random(42))
    assert delays == [again.next_delay() for _ in range(40)]
    for attempt, delay in enumerate(delays):
        ceiling = min(8.0, 2.0**attempt)
        assert ceiling * 0.5 <= delay <= ceiling
    assert len(set(delays[4:])) > 30  # jitter spreads the capped delays
    assert max(delays) <= 8.0


def test_backoff_resets_only_after_a_healthy_connection() -> None:
    policy = Backoff(BackoffSettings(initial=1, maximum=30, jitter=0, healthy_after=10), random.Random(0))
    for _ in range(3):
        policy.next_delay()
    policy.connection_ended(subscribed_for=None)  # never subscribed
    policy.connection_ended(subscribed_for=9.9)
    assert policy.next_delay() == 8.0
    policy.connection_ended(subscribed_for=10.0)
    assert policy.next_delay() == 1.0


def test_backoff_settings_reject_cap_below_initial() -> None:
    with pytest.raises(ValidationError, match=r"backoff.maximum \(1.0\) must be >= backoff.initial \(2.0\)"):
        BackoffSettings(initial=2, maximum=1)


def test_tracker_gaps_from_trade_ids_and_heartbeats() -> None:
    tracker = TradeTracker(dedupe_window=10)
    assert tracker.observe_trade("SKL-USD", 100) is None  # first trade: nothing known before it
    assert tracker.observe_trade("SKL-USD", 101) is None
    assert tracker.observe_trade("SKL-USD", 105) == Gap("SKL-USD", 102, 104)
    assert tracker.observe_last_trade_id("SKL-USD", 105) is None
    assert tracker.observe_last_trade_id("SKL-USD", 107) == Gap("SKL-USD", 106, 107)
    assert tracker.observe_trade("SKL-USD", 108) is None  # heartbeat already reported 106..107
    assert tracker.observe_trade("SKL-USD", 103) is None  # late, inside a known gap
    assert tracker.observe_trade("BAND-GBP", 5) is None  # products are independent


def test_tracker_stale_sequences_per_product() -> None:
    tracker = TradeTracker(dedupe_window=10)
    tracker.observe_sequence("SKL-USD", 200)
    assert tracker.is_stale("SKL-USD", 199)
    assert not tracker.is_stale("SKL-USD", 200)  # last_match after reconnect repeats the sequence
    assert not tracker.is_stale("SKL-USD", 250)
    assert not tracker.is_stale("BAND-GBP", 1)


def test_tracker_dedupe_window_is_bounded() -> None:
    tracker = TradeTracker(dedupe_window=3)
    for trade_id in (1, 2, 3):
        tracker.remember("SKL-USD", trade_id)
    assert tracker.is_duplicate("SKL-USD", 1)
    assert not tracker.is_duplicate("BAND-GBP", 1)
    tracker.remember("SKL-USD", 4)
    assert not tracker.is_duplicate("SKL-USD", 1)
    assert all(tracker.is_duplicate("SKL-USD", t) for t in (2, 3, 4))


def test_rejected_warnings_are_rate_limited_and_summarised(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("coinbase-rate-limit-test")
    now = [0.0]
    log = RateLimitedLog(logger, limit=2, interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for number in range(5):
            log.warning("rejected %d", number)
    assert [r.getMessage() for r in caplog.records] == ["rejected 0", "rejected 1"]
    assert log.suppressed == 3
    now[0] = 60.0  # the next window opens
    with caplog.at_level(logging.WARNING, logger=logger.name):
        log.warning("rejected %d", 5)
    assert caplog.records[-1].getMessage() == "rejected 5 (3 similar warnings suppressed before this one)"
    assert log.suppressed == 0
