"""MOD-005's state machine without Spark: hand-computed sequences, the join rule, bounds, determinism.

Unless a test says otherwise: clips of 100 to 10,000 (quote), a 60 s gap, a 600 s horizon, 4
clips and 1,000 of notional to be written, regular up to an interval CV of 0.35, a cadence
tolerance of 35 % (the default), and a size tolerance of 25 % (an exact binary fraction, so the
bounds of a median of 4.0 are exactly 3.0 and 5.0). Each ``clip`` below is one fill, so one taker
order; times are seconds after 0.
"""

from __future__ import annotations

import dataclasses
import doctest
import json
import random
from typing import Any

import pytest

from coattail_detector_split_order import sequences
from coattail_detector_split_order.config import SplitOrderConfig
from coattail_detector_split_order.sequences import Clip, regular_core
from coattail_detector_split_order.state import KeyState, Settings
from coattail_detector_whale.fills import Fill

S = 1_000_000
SETTINGS = Settings(
    min_clip_usd=100.0,
    max_clip_usd=10_000.0,
    size_tolerance=0.25,
    max_gap_us=60 * S,
    horizon_us=600 * S,
    min_clips=4,
    min_total_usd=1_000.0,
    max_interval_cv=0.35,
    cadence_tolerance=0.35,
    max_orders_in_state=100,
)


def with_(**changes: Any) -> Settings:
    return dataclasses.replace(SETTINGS, **changes)


def clip(seconds: float, trade_id: int, quantity: float, price: float = 100.0, side: str = "buy") -> Fill:
    """One fill (so one taker order) with quote volume price x quantity."""
    return Fill(round(seconds * S), side, None, str(trade_id), price, quantity, price * quantity)


def run(batches: list[list[Fill]], watermarks: list[float], settings: Settings = SETTINGS) -> list[dict[str, Any]]:
    """Rows of one key fed batch by batch (watermarks in s), the state stored and read back as JSON between."""
    rows: list[dict[str, Any]] = []
    text = KeyState().to_json()
    for batch, watermark in zip(batches, watermarks, strict=True):
        state = KeyState.from_json(text)
        rows.extend(state.advance(batch, round(watermark * S), settings))
        text = state.to_json()
    return rows


def test_a_regular_twap_is_one_row_with_hand_computed_figures() -> None:
    prices = [100.0, 101.0, 102.0, 103.0, 104.0]
    clips = [clip(10 * index, index + 1, 5.0, price) for index, price in enumerate(prices)]
    # The last clip is at 40 s: the sequence closes when the watermark reaches 40 + 60 = 100 s.
    assert run([clips], [99.999999]) == []
    (row,) = run([clips], [100])
    assert row == {
        "side": "buy",
        "sequence_start": 0,
        "sequence_end": 40 * S,
        "clip_count": 5,
        "off_cadence_clips": 0,
        "clip_base_quantity": 5.0,
        "clip_notional_median": 510.0,  # 500, 505, 510, 515, 520
        "total_notional": 2_550.0,
        "total_base_quantity": 25.0,
        "vwap_price": 102.0,  # 2,550 / 25
        "interval_mean_seconds": 10.0,
        "interval_cv": 0.0,
        "regular": True,
        "price_drift_bps": 400.0,  # (104 - 100) / 100 x 10,000: the price rose against the buyer
        "first_trade_id": "1",
        "orders_dropped": 0,
    }


def test_an_irregular_sequence_is_written_whole_with_its_interval_cv() -> None:
    # Intervals 5, 25, 5, 25 s: mean 15, population std 10, CV 2/3. Median 15 s: no two clips are
    # 9.75 to 20.25 s apart, so its regular core is one clip and the row has them all.
    clips = [clip(seconds, index + 1, 4.0, 250.0) for index, seconds in enumerate((0, 5, 30, 35, 60))]
    (row,) = run([clips], [200])
    assert (row["clip_count"], row["off_cadence_clips"]) == (5, 0)
    assert (row["total_notional"], row["interval_mean_seconds"]) == (5_000.0, 15.0)
    assert row["interval_cv"] == pytest.approx(2 / 3, rel=1e-15)
    assert row["regular"] is False


def twap(seconds: list[float], first_id: int = 1, quantity: float = 4.0) -> list[Fill]:
    """One clip at each of ``seconds``, trade ids from ``first_id``, prices 100, 101, ..."""
    return [clip(at, first_id + index, quantity, 100.0 + index) for index, at in enumerate(seconds)]


def test_orders_off_the_cadence_between_regular_clips_are_left_out_and_counted() -> None:
    regular = twap([10 * index for index in range(10)])  # every 10 s from 0 to 90
    # 5 s after 20 and 4 s after 60: no interval to or from them lies within 35 % of 10 s.
    strays = [clip(25, 100, 4.0, 500.0), clip(64, 101, 4.0, 500.0)]
    (alone,) = run([regular], [300])
    (row,) = run([sorted([*regular, *strays], key=lambda fill: fill.event_us)], [300])
    assert row == {**alone, "off_cadence_clips": 2}
    assert (row["clip_count"], row["total_notional"], row["interval_cv"]) == (10, 4_180.0, 0.0)


@pytest.mark.parametrize(
    ("before", "after", "start", "end", "off_cadence"),
    [
        (4.0, 116.0, 10, 100, 2),  # 6 s before the first clip, 16 s after the last: outside 6.5 to 13.5 s
        (3.4, 113.0, 3.4, 113, 0),  # 6.6 s and 13 s: on the cadence, indistinguishable from the splitter's
    ],
)
def test_a_stray_clip_before_the_first_or_after_the_last_regular_clip_is_left_out_if_off_cadence(
    before: float, after: float, start: float, end: float, off_cadence: int
) -> None:
    clips = [clip(before, 100, 4.0, 500.0), *twap([10 + 10 * index for index in range(10)]), clip(after, 101, 4.0)]
    (row,) = run([clips], [300])
    assert (row["sequence_start"], row["sequence_end"]) == (round(start * S), end * S)
    assert (row["clip_count"], row["off_cadence_clips"]) == (12 - off_cadence, off_cadence)
    # The alert id's parts are the row's: the first regular clip's time and trade id.
    assert row["first_trade_id"] == ("1" if off_cadence else "100")


@pytest.mark.parametrize("seed", range(5))
def test_a_twap_jittered_by_20_percent_keeps_every_clip(seed: int) -> None:
    rng = random.Random(seed)
    times = [0.0]
    for _ in range(15):
        times.append(round(times[-1] + 20 * (1 + rng.uniform(-0.2, 0.2)), 3))
    (row,) = run([twap(times)], [1_000])
    assert (row["clip_count"], row["off_cadence_clips"], row["regular"]) == (16, 0, True)
    assert (row["sequence_start"], row["sequence_end"]) == (0, round(times[-1] * S))


@pytest.mark.parametrize(
    ("changes", "written"),
    [
        ({"min_clips": 5}, (5, 2, 2_040.0)),  # the core: 5 clips of 400 to 416 at 0 ... 40 s
        ({"min_clips": 5, "min_total_usd": 2_040.0}, (5, 2, 2_040.0)),
        ({"min_clips": 6}, (7, 0, 2_840.0)),  # the core is too short: every clip, as without a core
        ({"min_clips": 5, "min_total_usd": 2_040.01}, (7, 0, 2_840.0)),  # the core is too small
        ({"min_clips": 8}, None),
        ({"min_clips": 5, "min_total_usd": 2_840.01}, None),
    ],
)
def test_the_row_is_the_core_when_it_has_min_clips_and_min_total_else_every_clip(
    changes: dict[str, Any], written: tuple[int, int, float] | None
) -> None:
    # 45 s: 5 s after the core's last clip; 56 s: 16 s after it, 11 s after the stray at 45 s.
    clips = [*twap([0, 10, 20, 30, 40]), clip(45, 100, 4.0, 100.0), clip(56, 101, 4.0, 100.0)]
    rows = run([clips], [300], with_(**changes))
    assert [(row["clip_count"], row["off_cadence_clips"], row["total_notional"]) for row in rows] == (
        [written] if written else []
    )


@pytest.mark.parametrize(
    ("times", "core"),
    [
        # Two chains of 4 clips (30 -> 35 s is off the cadence): the one that starts first.
        ((0, 10, 20, 30, 35, 45, 55, 65), (0, 10, 20, 30)),
        # Ten clips ending at 88 s (80 -> 88: 2 s off 10) or 90 s (on it): the smallest deviation.
        ((0, 10, 20, 30, 40, 50, 60, 70, 80, 88, 90), (0, 10, 20, 30, 40, 50, 60, 70, 80, 90)),
        # Four clips ending at 28 s or 32 s, each 2 s off: the one ending first.
        ((0, 10, 20, 28, 32), (0, 10, 20, 28)),
        # Through 48 s or 52 s, each 2 + 2 s off, both ending at 70 s: the earliest clip, backwards.
        ((0, 10, 20, 30, 40, 48, 52, 60, 70), (0, 10, 20, 30, 40, 48, 60, 70)),
        # Median interval 50.5 s: neither 1 s nor 100 s is within 35 % of it; a single clip.
        ((0, 1, 101), (0,)),
    ],
)
def test_of_several_longest_chains_the_core_is_the_earliest_start_then_the_least_deviation_then_the_earliest_end(
    times: tuple[int, ...], core: tuple[int, ...]
) -> None:
    clips = [Clip(at * S, 4.0, 400.0, 100.0, str(at)) for at in times]
    assert tuple(clip.event_us // S for clip in regular_core(clips, 0.35)) == core


def test_the_examples_in_the_sequences_docstrings_hold() -> None:
    assert doctest.testmod(sequences).failed == 0


@pytest.mark.parametrize(("max_interval_cv", "regular"), [(0.5, True), (0.499, False)])
def test_regular_means_an_interval_cv_at_most_the_bound(max_interval_cv: float, regular: bool) -> None:
    # Intervals 10, 30, 10, 30 s: mean 20, population std 10, CV exactly 0.5.
    clips = [clip(seconds, index + 1, 4.0, 250.0) for index, seconds in enumerate((0, 10, 40, 50, 80))]
    (row,) = run([clips], [200], with_(max_interval_cv=max_interval_cv))
    assert (row["interval_cv"], row["regular"]) == (0.5, regular)


@pytest.mark.parametrize(("quantity", "joins"), [(3.0, True), (5.0, True), (2.999, False), (5.001, False)])
def test_a_clip_joins_within_the_size_tolerance_of_the_median_bounds_included(quantity: float, joins: bool) -> None:
    # Median 4.0, tolerance 25 %: a clip joins from 3.0 to 5.0 inclusive.
    clips = [clip(0, 1, 4.0, 100.0), clip(10, 2, 4.0, 100.0), clip(20, 3, 4.0, 100.0), clip(30, 4, quantity, 100.0)]
    rows = run([clips], [200])
    assert [(row["clip_count"], row["total_base_quantity"]) for row in rows] == (
        [(4, 12.0 + quantity)] if joins else []
    )


@pytest.mark.parametrize(("quantity", "joins"), [(0.4975, True), (0.5025, True), (0.49749, False), (0.50251, False)])
def test_the_default_tolerance_is_half_a_percent_of_the_median(quantity: float, joins: bool) -> None:
    default = with_(size_tolerance=SplitOrderConfig().size_tolerance)  # 0.5 x (1 -/+ 0.005) = 0.4975, 0.5025
    clips = [clip(10 * index, index + 1, 0.5, 1_000.0) for index in range(3)] + [clip(30, 4, quantity, 1_000.0)]
    rows = run([clips], [200], default)
    assert [row["clip_count"] for row in rows] == ([4] if joins else [])


def test_a_clip_joins_up_to_max_gap_after_the_last_one_and_the_sequence_then_closes() -> None:
    clips = [clip(0, 1, 4.0, 100.0), clip(10, 2, 4.0, 100.0), clip(20, 3, 4.0, 100.0)]
    exactly = clip(80, 4, 4.0, 100.0)  # 60 s after the last clip: joins
    too_late = clip(140.000001, 5, 4.0, 100.0)  # 60.000001 s after it: opens a sequence of its own
    rows = run([[*clips, exactly, too_late]], [1_000])
    assert [(row["sequence_start"], row["sequence_end"], row["clip_count"]) for row in rows] == [(0, 80 * S, 4)]
    # Closed by the watermark alone at 80 + 60 s, in the batch that reaches it, not before.
    batches = [[*clips, exactly], [], []]
    assert [row["clip_count"] for row in run(batches, [81, 139.999999, 140])] == [4]
    assert run(batches[:2], [81, 139.999999]) == []


def test_a_clip_at_the_same_instant_as_the_last_one_does_not_join() -> None:
    # Two orders at 0 s (ids 1 and 3: not consecutive, so two Binance taker orders).
    rows = run([[clip(0, 1, 4.0), clip(0, 3, 4.0), clip(10, 4, 4.0), clip(20, 5, 4.0), clip(30, 6, 4.0)]], [200])
    assert [(row["clip_count"], row["first_trade_id"]) for row in rows] == [(4, "1")]


def test_of_several_matching_sequences_the_closest_size_then_the_oldest_wins() -> None:
    settings = with_(size_tolerance=0.1, min_clips=2, min_total_usd=0.0)
    clips = [
        clip(0, 1, 4.0),  # opens X: median 4.0, accepts [3.6, 4.4]
        clip(0, 3, 4.0),  # same instant as X's last clip, cannot join it: opens Z, median 4.0 too
        clip(5, 10, 4.2),  # as close to X as to Z: joins X, the older (X: 4.0, 4.2; median 4.1)
        clip(6, 20, 4.3),  # 0.2 / 4.1 from X, 0.3 / 4.0 from Z: joins X (median now 4.2)
        clip(10, 30, 4.0),  # 0.2 / 4.2 from X, 0 from Z: joins Z
    ]
    rows = run([clips], [200], settings)
    summary = [(row["first_trade_id"], row["clip_count"], row["total_base_quantity"]) for row in rows]
    assert summary == [("1", 3, 12.5), ("3", 2, 8.0)]  # X closes at 6 + 60 s, Z at 10 + 60 s


def test_the_clip_size_is_the_median_of_an_even_count_as_the_mean_of_the_middle_two() -> None:
    clips = [clip(0, 1, 4.0, 100.0), clip(10, 2, 4.8, 100.0), clip(20, 3, 3.8, 100.0), clip(30, 4, 4.2, 100.0)]
    (row,) = run([clips], [200])
    # Quantities 3.8, 4.0, 4.2, 4.8 -> (4.0 + 4.2) / 2 (their mean is 4.2); notionals 380 ... 480 -> 410.
    assert (row["clip_base_quantity"], row["clip_notional_median"]) == pytest.approx((4.1, 410.0), rel=1e-15)


@pytest.mark.parametrize(
    ("side", "prices", "drift"),
    [
        ("buy", (100.0, 101.0, 102.0, 104.0), 400.0),  # bought higher and higher: against the buyer
        ("buy", (100.0, 99.0, 98.0, 98.0), -200.0),
        ("sell", (100.0, 99.0, 98.0, 98.0), 200.0),  # sold lower and lower: against the seller
        ("sell", (100.0, 101.0, 102.0, 104.0), -400.0),
    ],
)
def test_price_drift_is_positive_when_the_price_moved_against_the_splitter(
    side: str, prices: tuple[float, ...], drift: float
) -> None:
    clips = [clip(10 * index, index + 1, 4.0, price, side) for index, price in enumerate(prices)]
    (row,) = run([clips], [200])
    assert (row["side"], row["price_drift_bps"]) == (side, pytest.approx(drift, rel=1e-12))


def test_sides_never_share_a_sequence() -> None:
    clips = [clip(10 * index, index + 1, 4.0, 100.0, "buy" if index % 2 else "sell") for index in range(8)]
    assert [(row["side"], row["clip_count"]) for row in run([clips], [200])] == [("sell", 4), ("buy", 4)]


@pytest.mark.parametrize(
    ("changes", "written"),
    [
        ({}, True),
        ({"min_clips": 5}, False),  # 4 clips
        ({"min_total_usd": 1_600.0}, True),  # total exactly 1,600: at least the minimum
        ({"min_total_usd": 1_600.01}, False),
        ({"max_clip_usd": 399.0}, False),  # every order above the clip range: no clips at all
        ({"min_clip_usd": 401.0}, False),
    ],
)
def test_min_clips_min_total_and_the_clip_range_decide_what_is_written(changes: dict[str, Any], written: bool) -> None:
    clips = [clip(10 * index, index + 1, 4.0, 100.0) for index in range(4)]  # 4 clips of 400
    assert len(run([clips], [200], with_(**changes))) == int(written)


def test_a_sequence_spans_at_most_the_horizon_and_a_longer_one_is_cut() -> None:
    clips = [clip(10 * index, index + 1, 4.0, 100.0) for index in range(11)]  # 0, 10, ..., 100 s
    settings = with_(horizon_us=60 * S, max_gap_us=30 * S)
    # The clip at 60 s is within the horizon of the first (0 s) and joins; the one at 70 s opens the next.
    assert run([clips], [59.999999], settings) == []
    first = run([clips], [60], settings)  # closed at 0 + 60 s, before its gap (60 + 30 s) ends
    assert [(row["sequence_start"], row["sequence_end"], row["clip_count"]) for row in first] == [(0, 60 * S, 7)]
    both = run([clips], [130], settings)
    assert [(row["sequence_start"], row["clip_count"]) for row in both] == [(0, 7), (70 * S, 4)]


def test_at_the_bound_the_oldest_clips_are_dropped_and_counted() -> None:
    settings = with_(max_orders_in_state=3, min_clips=2, min_total_usd=0.0)
    clips = [
        clip(0, 1, 4.0),  # A
        clip(10, 10, 8.0),  # B
        clip(20, 2, 4.0),  # A: 3 clips held
        clip(25, 20, 12.0),  # C: 4 held, the oldest clip (A's at 0 s) is dropped, not B's stale one
        clip(30, 3, 4.0),  # A: 4 held, the oldest is now B's at 10 s: B is gone
    ]
    state = KeyState()
    assert state.advance(clips, 30 * S, settings) == []
    assert [[c.event_us // S for c in sequence.clips] for sequence in state.sequences] == [[20, 30], [25]]
    assert state.orders_dropped == 2
    rows = state.advance([], 200 * S, settings)
    # A kept the clips at 20 and 30 s; C has one clip and is not written.
    summary = [(row["sequence_start"], row["clip_count"], row["first_trade_id"], row["orders_dropped"]) for row in rows]
    assert summary == [(20 * S, 2, "2", 2)]


def test_a_single_clip_that_would_exceed_the_bound_drops_the_one_before() -> None:
    state = KeyState()
    state.advance([clip(0, 1, 4.0), clip(10, 2, 8.0)], 10 * S, with_(max_orders_in_state=1))
    assert [[c.event_us for c in sequence.clips] for sequence in state.sequences] == [[10 * S]]
    assert state.orders_dropped == 1


def test_fills_of_one_order_in_two_batches_are_one_clip_once_the_watermark_passes_their_time() -> None:
    # Order 1 is two fills at 0 s (ids 1, 2: 2 + 2 = one clip of 4.0), arriving in different batches.
    rest = [clip(10 * index, index + 2, 4.0, 100.0) for index in range(1, 4)]
    split = run([[clip(0, 1, 2.0)], [clip(0, 2, 2.0), *rest]], [-1, 200])
    whole = run([[clip(0, 1, 2.0), clip(0, 2, 2.0), *rest]], [200])
    assert split == whole
    assert [(row["clip_count"], row["first_trade_id"]) for row in whole] == [(4, "1")]


def test_a_fill_at_or_before_the_previous_watermark_is_ignored_as_spark_drops_it() -> None:
    clips = [clip(10 * index, index + 1, 4.0, 100.0) for index in range(4)]
    late = clip(15, 99, 4.0, 100.0)  # would have been a fifth clip
    rows = run([clips[:2], [late, *clips[2:]]], [15, 200])
    assert [row["clip_count"] for row in rows] == [4]


def test_next_event_is_the_oldest_pending_fill_or_the_earliest_close() -> None:
    state = KeyState()
    state.advance([clip(0, 1, 4.0), clip(30, 2, 8.0), clip(50, 3, 4.0)], 40 * S, SETTINGS)
    assert state.next_event_us(SETTINGS) == 50 * S  # the fill at 50 s; the sequences close at 60 and 90 s
    state.advance([], 55 * S, SETTINGS)
    assert state.next_event_us(SETTINGS) == 90 * S  # the 8.0 one (30 s); the 4.0 one now ends at 50 s: 110 s
    state.advance([], 200 * S, SETTINGS)
    assert state.next_event_us(SETTINGS) is None


def test_state_round_trips_through_json_exactly() -> None:
    state = KeyState()
    state.advance([clip(0, 1, 4.0, 100.1), clip(10, 2, 4.1, 99.9), clip(20, 3, 4.0, 100.3)], 12 * S, SETTINGS)
    text = state.to_json()
    assert KeyState.from_json(text).to_json() == text
    assert json.loads(text)["version"] == 1
    with pytest.raises(ValueError, match="state version"):
        KeyState.from_json(text.replace('"version":1', '"version":0'))


def market(seed: int) -> list[Fill]:
    """Random taker orders of one instrument (1 to 3 fills each, some sharing a millisecond) and two TWAPs,
    each with a same-size order off its cadence."""
    rng = random.Random(seed)
    fills = []
    price = 100.0
    trade_id = 0
    for index in range(1_500):
        price *= 1 + rng.gauss(0, 0.0005)
        at = index * 0.4 + rng.random() * 0.3
        side = rng.choice(["buy", "sell"])
        quantity = rng.choice([1.0, 2.0, 4.0, 8.0]) * rng.choice([1.0, 1.0, 1.0, 1.01, 0.995])
        for _ in range(rng.choice([1, 1, 2, 3])):
            trade_id += 1
            fills.append(clip(at, trade_id, quantity / 2, round(price, 2), side))
        trade_id += rng.choice([0, 0, 1])  # an id gap splits orders at one instant
    for start, side, quantity in ((30.0, "buy", 3.3), (200.0, "sell", 6.6)):
        for index in range(12):
            trade_id += 1
            fills.append(clip(start + 15 * index, 10_000_000 + trade_id, quantity, round(price, 2), side))
        trade_id += 1  # another taker of the same size, 6 s after the sixth clip: off the 15 s cadence
        fills.append(clip(start + 15 * 5 + 6, 10_000_000 + trade_id, quantity, round(price, 2), side))
    return sorted(fills, key=lambda fill: fill.event_us)


@pytest.mark.parametrize(
    ("seed", "max_orders_in_state"), [(0, 10_000), (1, 10_000), (2, 10_000), (3, 10_000), (4, 150)]
)
def test_rows_do_not_depend_on_how_fills_were_cut_into_batches(seed: int, max_orders_in_state: int) -> None:
    rng = random.Random(1_000 + seed)
    fills = market(seed)
    settings = with_(size_tolerance=0.005, min_total_usd=2_000.0, max_orders_in_state=max_orders_in_state)
    end = (max(fill.event_us for fill in fills) + 200 * S) / S
    expected = run([fills], [end], settings)
    assert len(expected) >= 2
    if max_orders_in_state > len(fills):
        assert {row["side"] for row in expected} == {"buy", "sell"}
        twaps = [
            (row["side"], row["clip_count"], row["off_cadence_clips"], row["regular"])
            for row in expected
            if row["clip_count"] == 12
        ]
        assert ("buy", 12, 1, True) in twaps
        assert ("sell", 12, 1, True) in twaps
    else:  # the bound is hit: clips are dropped, as deterministically
        assert min(row["orders_dropped"] for row in expected) > 0
    # Random cuts, fills shuffled inside each batch, watermarks trailing the newest fill by 2 s.
    cuts = sorted(rng.sample(range(1, len(fills)), 40))
    batches = [fills[a:b] for a, b in zip([0, *cuts], [*cuts, len(fills)], strict=True)]
    for batch in batches:
        rng.shuffle(batch)
    watermarks, newest = [], 0
    for batch in batches:
        watermarks.append(max(0, newest - 2 * S) / S)
        newest = max(newest, *(fill.event_us for fill in batch))
    assert run([*batches, []], [*watermarks, end], settings) == expected
