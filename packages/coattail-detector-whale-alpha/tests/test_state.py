"""MOD-008's state machine without Spark: hand-computed markouts, cohorts, signals, bounds, determinism."""

from __future__ import annotations

import json
import random

import pytest

from coattail_detector_whale_alpha.state import KeyState, Settings, Trade

S = 1_000_000
SETTINGS = Settings(
    min_notional_usd=150.0,
    horizons_us=(60 * S, 300 * S),
    entry_delay_us=5 * S,
    notional_buckets=(150.0, 500.0),
    cohort_size=3,
    score_horizon_us=60 * S,
    max_pending_orders=10,
)


def trade(seconds: float, trade_id: int, price: float, quantity: float = 1.0, side: str = "buy") -> Trade:
    return Trade.of(round(seconds * S), str(trade_id), price, quantity, price * quantity, side, None)


def run(batches: list[list[Trade]], watermarks: list[int], settings: Settings = SETTINGS) -> list[dict[str, object]]:
    """Rows of one key fed batch by batch, the state stored and read back as JSON between batches."""
    rows: list[dict[str, object]] = []
    text = KeyState().to_json()
    for batch, watermark in zip(batches, watermarks, strict=True):
        state = KeyState.from_json(text)
        rows.extend(state.advance(batch, watermark, settings))
        text = state.to_json()
    return rows


TRADES = [
    trade(0, 1, 100.0),  # order A: ids 1-2 at t=0, buy 200 (bucket 150-500)
    trade(0, 2, 100.0),
    trade(1, 3, 101.0, side="sell"),  # entry window of A: (0, 5] s -> VWAP (101 + 103) / 2 = 102
    trade(3, 4, 103.0, side="sell"),
    trade(5.5, 5, 200.0, quantity=0.1),  # after the entry window
    trade(50, 6, 110.0, side="sell"),  # A's 60 s exit: 110 -> (110 - 102) / 102 * 1e4 bps
    trade(100, 7, 100.0, quantity=2.0),  # order B at 100 s: buy 200
    trade(102, 8, 99.0, side="sell"),  # B's entry: 99
    trade(150, 9, 97.0, side="sell"),  # B's 60 s exit (160 s): 97 -> (97 - 99) / 99 * 1e4
    trade(250, 10, 90.0, side="sell"),  # A's 300 s exit: 90 -> (90 - 102) / 102 * 1e4
    trade(390, 12, 90.0, side="sell"),  # B's 300 s exit (400 s)
    trade(420, 11, 95.0, side="sell"),
]
A_60 = (110 - 102) / 102 * 1e4
A_300 = (90 - 102) / 102 * 1e4
B_60 = (97 - 99) / 99 * 1e4
B_300 = (90 - 99) / 99 * 1e4


def test_markouts_resolve_horizon_by_horizon_with_hand_computed_returns() -> None:
    rows = run([TRADES], [500 * S])
    summary = [
        (row["order_time"] // S, row["horizon_seconds"], row["entry_price"], row["exit_price"], row["return_bps"])
        for row in rows
    ]
    assert summary == [
        (0, 0, 102.0, 102.0, 0.0),
        (0, 60, 102.0, 110.0, A_60),
        (100, 0, 99.0, 99.0, 0.0),
        (100, 60, 99.0, 97.0, B_60),
        (0, 300, 102.0, 90.0, A_300),
        (100, 300, 99.0, 90.0, B_300),
    ]
    a60 = rows[1]
    assert (a60["notional"], a60["fill_count"], a60["first_trade_id"], a60["last_trade_id"]) == (200.0, 2, "1", "2")
    assert (a60["notional_bucket"], a60["side"], a60["entry_trade_count"]) == ("150-500", "buy", 2)
    assert (a60["horizon_end"], a60["exit_time"]) == (60 * S, 50 * S)
    b60 = rows[3]
    assert b60["cohort_n"] == 2
    assert b60["cohort_mean_bps"] == pytest.approx((A_60 + B_60) / 2, rel=1e-15)
    assert b60["cohort_hit_rate"] == 0.5
    # B's signal: the 60 s cohort over markouts resolved by B's time (A's, at 60 s)
    assert (rows[2]["signal_n"], rows[2]["signal_mean_bps"], rows[2]["signal_std_bps"]) == (1, A_60, None)
    assert rows[0]["signal_n"] == 0
    assert rows[0]["signal_mean_bps"] is None


def test_only_events_the_watermark_passed_are_handled() -> None:
    assert run([TRADES[:6]], [4 * S]) == []  # A's entry window closes at 5 s
    rows = run([TRADES[:6], TRADES[6:]], [4 * S, 99 * S])  # B's fills at 100 s are not final yet
    assert [(row["order_time"] // S, row["horizon_seconds"]) for row in rows] == [(0, 0), (0, 60)]
    rows = run([TRADES[:6], TRADES[6:]], [5 * S, 160 * S])
    assert [(row["order_time"] // S, row["horizon_seconds"]) for row in rows] == [(0, 0), (0, 60), (100, 0), (100, 60)]


@pytest.mark.parametrize("seed", range(8))
def test_rows_do_not_depend_on_how_trades_were_cut_into_batches(seed: int) -> None:
    rng = random.Random(seed)
    trades = []
    price = 100.0
    for index in range(600):
        price *= 1 + rng.gauss(0, 0.002)
        at = index * 0.9 + rng.random() * 0.5
        # bursts of fills sharing one time make orders; some above the minimum
        for fill in range(rng.choice([1, 1, 1, 3])):
            trades.append(
                trade(at, 10 * index + fill, round(price, 2), rng.choice([0.5, 1.0, 2.0]), rng.choice(["buy", "sell"]))
            )
    expected = run([trades], [max(t.event_us for t in trades) - 2 * S])
    assert len(expected) > 20
    # random cuts, trades shuffled inside each batch, watermarks trailing the newest trade by 2 s
    cuts = sorted(rng.sample(range(1, len(trades)), 25))
    batches = [trades[a:b] for a, b in zip([0, *cuts], [*cuts, len(trades)], strict=True)]
    for batch in batches:
        rng.shuffle(batch)
    watermarks, newest = [], 0
    for batch in batches:
        watermarks.append(max(0, newest - 2 * S))  # Spark's watermark trails the previous batch
        newest = max(newest, *(t.event_us for t in batch))
    batches.append([])
    watermarks.append(newest - 2 * S)
    assert run(batches, watermarks) == expected


def test_an_order_without_trades_in_its_entry_window_has_no_return_and_stays_out_of_the_cohort() -> None:
    trades = [trade(0, 1, 100.0, 2.0), trade(10, 2, 101.0, side="sell"), trade(70, 3, 102.0, side="sell")]
    rows = run([trades], [80 * S])
    assert [
        (r["horizon_seconds"], r["entry_price"], r["exit_price"], r["return_bps"], r["cohort_n"]) for r in rows
    ] == [
        (0, None, None, None, None),
        (60, None, 101.0, None, None),
    ]


def test_the_cohort_keeps_its_newest_returns_and_pending_orders_are_bounded() -> None:
    one_horizon = Settings(**{**SETTINGS.__dict__, "horizons_us": (60 * S,)})
    trades = []
    for index in range(5):  # five buy orders of 200, 10 s apart, each with one trade in its entry window
        start = index * 10
        trades += [trade(start, 100 * index, 100.0, 2.0), trade(start + 1, 100 * index + 1, 100.0 + index, side="sell")]
    trades.append(trade(200, 999, 101.0, side="sell"))
    markouts = [row for row in run([trades], [300 * S], one_horizon) if row["horizon_seconds"] == 60]
    assert [row["order_time"] // S for row in markouts] == [0, 10, 20, 30, 40]
    assert [row["cohort_n"] for row in markouts] == [1, 2, 3, 3, 3]  # cohort_size 3: the newest three
    assert markouts[-1]["cohort_mean_bps"] == pytest.approx(
        sum((104 - entry) / entry * 1e4 for entry in (102.0, 103.0, 104.0)) / 3, rel=1e-12
    )
    capped = Settings(**{**one_horizon.__dict__, "max_pending_orders": 2})
    rows = run([trades], [300 * S], capped)  # orders at 0 and 10 s are pending when 20, 30 and 40 s come
    assert sorted({row["order_time"] // S for row in rows}) == [0, 10]
    assert [row["orders_untracked"] for row in rows] == [0, 0, 3, 3]


def test_state_round_trips_through_json_exactly() -> None:
    state = KeyState()
    state.advance(TRADES[:8], 101 * S, SETTINGS)
    text = state.to_json()
    assert KeyState.from_json(text).to_json() == text
    assert json.loads(text)["version"] == 1
    with pytest.raises(ValueError, match="state version"):
        KeyState.from_json(text.replace('"version":1', '"version":0'))


def test_an_exit_older_than_max_exit_age_gives_no_return() -> None:
    trades = [trade(0, 1, 100.0, 2.0), trade(2, 2, 101.0, side="sell"), trade(60 - 30, 3, 103.0, side="sell")]
    fresh = run([trades], [70 * S], Settings(**{**SETTINGS.__dict__, "max_exit_age_us": 30 * S}))
    stale = run([trades], [70 * S], Settings(**{**SETTINGS.__dict__, "max_exit_age_us": 30 * S - 1}))
    assert [(r["horizon_seconds"], r["exit_time"], r["return_bps"]) for r in fresh] == [
        (0, None, 0.0),
        (60, 30 * S, (103 - 101) / 101 * 1e4),  # 30 s old: at the bound, still a return
    ]
    assert [(r["horizon_seconds"], r["exit_price"], r["return_bps"], r["cohort_n"]) for r in stale] == [
        (0, 101.0, 0.0, None),
        (60, 103.0, None, None),  # 1 µs older than the bound: written, no return, not in the cohort
    ]
