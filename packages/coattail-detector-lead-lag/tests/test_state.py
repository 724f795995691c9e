"""MOD-010's state machine without Spark: constructed leads, the grid, gates, leader history, determinism, bounds.

Prices are built per grid cell (1 s) from T0 = 2024-08-09 00:00 UTC; a leg's trade of cell ``c``
is at ``c + 0.5`` s. "b repeats a three cells later" means b's price in cell ``c`` is a's in cell
``c - 3``: b's log return at ``t + 3`` is then a's at ``t``, the same double, so rho(+3) is exactly 1.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import statistics
from typing import Any

import pytest

from coattail_detector_lead_lag.state import InstrumentState, LegCells, Pair, Settings, Trade

S = 1_000_000
T0 = 1_723_161_600 * S
PAIR = Pair("binance", "BTCUSDT", "coinbase", "BTC-USD")
A, B = PAIR.leg_a, PAIR.leg_b
SETTINGS = Settings(
    grid_us=S,
    window_cells=60,
    max_lag_cells=5,
    step_us=60 * S,
    min_correlation=0.2,
    min_gain=0.05,
    min_samples=30,
    min_consecutive=3,
    pairs={"BTC/USD": (PAIR,)},
)
LegTrade = tuple[str, Trade]


def walk(seed: int, count: int) -> list[float]:
    """``count`` prices of a random walk from 100 (every step moves)."""
    rng = random.Random(seed)
    prices = [100.0]
    for _ in range(count - 1):
        prices.append(prices[-1] * math.exp(rng.gauss(0, 5e-4)))
    return prices


def cell_trades(leg: str, prices: dict[int, float], first_id: int = 1) -> list[LegTrade]:
    """One trade per cell, at ``cell + 0.5`` s, ids counting up from ``first_id``."""
    return [
        (leg, Trade.of(T0 + cell * S + S // 2, str(first_id + index), price))
        for index, (cell, price) in enumerate(sorted(prices.items()))
    ]


def returns_in(prices: dict[int, float], cells: range) -> list[float]:
    """The log returns of ``cells`` computed here (each cell has a price)."""
    return [math.log(prices[cell] / prices[cell - 1]) for cell in cells]


def run(batches: list[list[LegTrade]], watermarks: list[int], settings: Settings = SETTINGS) -> list[dict[str, Any]]:
    """Rows of one instrument fed batch by batch, the state stored and read back as JSON between batches."""
    rows: list[dict[str, Any]] = []
    text = InstrumentState().to_json()
    for batch, watermark in zip(batches, watermarks, strict=True):
        state = InstrumentState.from_json(text)
        rows.extend(state.advance(batch, watermark, [PAIR], settings))
        text = state.to_json()
    return rows


def shifted_pair(lead: int, cells: int = 130) -> tuple[dict[int, float], dict[int, float]]:
    """Prices of a and b in cells 0 .. cells - 1; b repeats a ``lead`` cells later (a repeats b when negative)."""
    driver = walk(7, cells + abs(lead))
    early = {cell: driver[cell + abs(lead)] for cell in range(cells)}
    late = {cell: driver[cell] for cell in range(cells)}
    return (early, late) if lead > 0 else (late, early)


@pytest.mark.parametrize(("lead", "leader"), [(3, "binance"), (-3, "coinbase")])
def test_a_leg_repeated_three_cells_later_is_led_by_the_other_at_lag_three(lead: int, leader: str) -> None:
    prices_a, prices_b = shifted_pair(lead)
    rows = run([cell_trades(A, prices_a) + cell_trades(B, prices_b)], [T0 + 135 * S])

    # Step ends 60 s and 120 s: the 60 s window would need prices from cell 60 - 60 - 5 - 1 = -6, before any trade.
    window = range(60, 120)
    assert rows == [
        {
            "window_start": T0 + 60 * S,
            "window_end": T0 + 120 * S,
            "exchange_a": "binance",
            "symbol_a": "BTCUSDT",
            "exchange_b": "coinbase",
            "symbol_b": "BTC-USD",
            "lag_seconds": float(lead),
            "leader": leader,
            "correlation_at_lag": 1.0,
            "correlation_at_zero": pytest.approx(
                statistics.correlation(returns_in(prices_a, window), returns_in(prices_b, window)), abs=1e-12
            ),
            "lead_lag_ratio": pytest.approx(rows[0]["lead_lag_ratio"]),
            "samples": 60,
            "nonzero_returns_a": 60,
            "nonzero_returns_b": 60,
            "significant": True,
            "previous_leader": None,
            "leader_change": False,
        }
    ]
    assert (rows[0]["lead_lag_ratio"] > 1) == (lead > 0)


def test_independent_legs_give_a_row_that_is_not_significant() -> None:
    settings = dataclasses.replace(SETTINGS, window_cells=300, max_lag_cells=10, min_samples=120)  # the defaults
    prices_a = dict(enumerate(walk(1, 370)))
    prices_b = dict(enumerate(walk(2, 370)))
    (row,) = run([cell_trades(A, prices_a) + cell_trades(B, prices_b)], [T0 + 365 * S], settings)
    assert row["window_end"] == T0 + 360 * S
    assert abs(row["correlation_at_lag"]) < 0.2  # 1 / sqrt(300) = 0.058 per lag
    assert (row["significant"], row["leader_change"]) == (False, False)


def test_a_cell_takes_its_last_trade_by_time_and_number_and_an_empty_cell_carries_the_price() -> None:
    trades = [
        Trade.of(T0 + 200_000, "1", 100.0),
        Trade.of(T0 + 900_000, "2", 101.0),  # cell 0: the later trade
        Trade.of(T0 + 3 * S + 500_000, "8", 104.0),
        Trade.of(T0 + 3 * S + 500_000, "7", 103.0),  # cell 3: same time, the higher trade number wins
        Trade.of(T0 + 6 * S, "9", 106.0),
    ]
    cells = LegCells()
    for trade in reversed(trades):  # arrival order does not matter
        cells.add(trade, S)
    first = T0 // S
    grid = cells.grid()
    prices = grid.prices_from(first, 7)
    assert prices is not None
    assert prices.tolist() == [101.0, 101.0, 101.0, 104.0, 104.0, 104.0, 106.0]
    assert grid.prices_from(first - 1, 3) is None  # no trade at or before cell -1: no price
    cells.drop_before(first + 2)
    assert (cells.carry, sorted(cells.cells)) == (101.0, [first + 3, first + 6])
    carried = cells.grid().prices_from(first + 1, 4)
    assert carried is not None
    assert carried.tolist() == [101.0, 101.0, 104.0, 104.0]


def test_a_leg_needs_min_samples_non_zero_returns_in_the_window() -> None:
    prices_a, prices_b = shifted_pair(3)
    every_other = {cell: price for cell, price in prices_b.items() if cell % 2 == 0}  # 30 moves in 60 cells
    trades = cell_trades(A, prices_a) + cell_trades(B, every_other)
    (row,) = run([trades], [T0 + 135 * S], dataclasses.replace(SETTINGS, min_samples=30))
    assert (row["nonzero_returns_a"], row["nonzero_returns_b"]) == (60, 30)
    assert run([trades], [T0 + 135 * S], dataclasses.replace(SETTINGS, min_samples=31)) == []


REGIME_SETTINGS = dataclasses.replace(SETTINGS, window_cells=40, max_lag_cells=3, step_us=40 * S, min_samples=20)


def regimes(kinds: str, seed: int = 11) -> list[LegTrade]:
    """Trades of windows of 40 cells from cell -10: ``a`` a leads by 3 cells, ``b`` b leads, ``n`` independent."""
    rng = random.Random(seed)
    shocks = [rng.gauss(0, 5e-4) for _ in range(40 * len(kinds) + 20)]
    price_a = price_b = 100.0
    prices_a, prices_b = {}, {}
    for cell in range(-10, 40 * len(kinds)):
        kind = kinds[max(cell, 0) // 40]
        now, three_ago = shocks[cell + 13], shocks[cell + 10]
        if kind == "a":
            move_a, move_b = now, three_ago
        elif kind == "b":
            move_a, move_b = three_ago, now
        else:
            move_a, move_b = now, rng.gauss(0, 5e-4)
        price_a *= math.exp(move_a)
        price_b *= math.exp(move_b)
        prices_a[cell], prices_b[cell] = price_a, price_b
    return cell_trades(A, prices_a) + cell_trades(B, prices_b)


def test_a_leader_change_needs_min_consecutive_significant_windows_of_the_other_leader() -> None:
    rows = run([regimes("aanabba")], [T0 + 40 * 7 * S], REGIME_SETTINGS)
    summary = [(row["leader"], row["significant"], row["previous_leader"], row["leader_change"]) for row in rows]
    assert [row["window_end"] for row in rows] == [T0 + 40 * j * S for j in range(1, 8)]
    assert [row["lag_seconds"] for row in rows if row["significant"]] == [3.0, 3.0, 3.0, -3.0, -3.0, 3.0]
    assert summary[2][1] is False  # the independent window: not significant, it does not count
    assert [entry for index, entry in enumerate(summary) if index != 2] == [
        ("binance", True, None, False),
        ("binance", True, None, False),
        ("binance", True, None, False),  # the third significant binance window (the n between does not count)
        ("coinbase", True, "binance", True),  # the change
        ("coinbase", True, None, False),  # history binance, binance, coinbase: no single leader held
        ("binance", True, None, False),  # coinbase held two windows only
    ]
    assert summary[2][2] is None  # two significant windows so far


def test_rows_do_not_depend_on_how_trades_were_cut_into_batches_or_ordered() -> None:
    settings = dataclasses.replace(
        REGIME_SETTINGS, window_cells=30, max_lag_cells=4, step_us=10 * S, min_samples=10, min_consecutive=2
    )
    for seed in range(8):
        rng = random.Random(seed)
        trades = regimes("".join(rng.choice("aabn") for _ in range(10)), seed=seed)
        for leg, trade in list(trades):  # earlier trades in the same cells, some at the very same time
            for _ in range(rng.choice([0, 1, 2])):
                same_time = rng.random() < 0.3
                at = trade.event_us if same_time else trade.event_us - rng.randrange(1, S // 2)
                number = trade.number - 1_000_000 if not same_time else trade.number - 500_000
                trades.append((leg, Trade.of(at, str(number), trade.price * (1 + rng.gauss(0, 1e-3)))))
        delay = 3 * S
        newest = max(trade.event_us for _, trade in trades)
        expected = run([trades], [newest - delay], settings)
        assert len(expected) > 20
        assert any(row["leader_change"] for row in expected)
        # arrive up to 2 s after their time (less than the delay: none is late), cut at random, shuffled
        arrivals = sorted(trades, key=lambda item: item[1].event_us + rng.randrange(2 * S))
        cuts = sorted(rng.sample(range(1, len(arrivals)), 30))
        batches = [arrivals[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrivals)], strict=True)]
        watermarks, seen = [], 0
        for batch in batches:
            rng.shuffle(batch)
            watermarks.append(max(0, seen - delay))  # Spark's watermark trails the previous batches
            seen = max(seen, *(trade.event_us for _, trade in batch))
        assert run([*batches, []], [*watermarks, newest - delay], settings) == expected, seed


def test_a_trade_at_or_before_the_previous_watermark_is_dropped() -> None:
    prices_a, prices_b = shifted_pair(3)
    trades = cell_trades(A, prices_a) + cell_trades(B, prices_b)
    first, second = trades[:100] + trades[130:230], trades[100:130] + trades[230:]
    expected = run([first, second], [T0 + 90 * S, T0 + 135 * S])
    # before the first watermark (90 s) and after cell 89's trade (89.5 s): it would be that cell's price
    late = (A, Trade.of(T0 + 89_900_000, "999999", 1.0))
    assert run([first, [*second, late]], [T0 + 90 * S, T0 + 135 * S]) == expected
    assert len(expected) == 1


def test_state_stays_bounded_to_the_window_lag_and_the_trades_after_the_watermark() -> None:
    settings = dataclasses.replace(SETTINGS, step_us=20 * S)
    prices_a = dict(enumerate(walk(3, 2_000)))
    prices_b = dict(enumerate(walk(4, 2_000)))
    trades = sorted(cell_trades(A, prices_a) + cell_trades(B, prices_b), key=lambda item: item[1].event_us)
    state = InstrumentState()
    for start in range(0, len(trades), 100):  # 50 s of both legs per batch, watermark 5 s behind the newest
        batch = trades[start : start + 100]
        watermark = batch[-1][1].event_us - 5 * S
        state.advance(batch, watermark, [PAIR], settings)
        for cells in state.legs.values():
            # N + K + 1 = 66 cells at or before the watermark, then the cells of trades after it
            assert min(cells.cells) > watermark // S - 66
            assert len([cell for cell in cells.cells if cell <= watermark // S]) <= 66
    assert state.evaluated_through_us == T0 + 1_980 * S


def test_a_silent_instrument_is_due_at_each_step_end_while_its_windows_hold_trades() -> None:
    prices_a, prices_b = shifted_pair(3)  # both legs trade in cells 0..129, then stop
    state = InstrumentState()
    assert state.advance(cell_trades(A, prices_a) + cell_trades(B, prices_b), T0 + 135 * S, [PAIR], SETTINGS)
    assert state.next_due_us(SETTINGS) == T0 + 180 * S  # window [120, 180) s holds cells 120..129
    assert state.advance([], T0 + 180 * S, [PAIR], SETTINGS) == []  # 9 moves per leg: below min_samples
    assert state.next_due_us(SETTINGS) is None
    assert {leg: cells.carry for leg, cells in state.legs.items()} == {A: prices_a[129], B: prices_b[129]}


def test_state_round_trips_through_json_exactly() -> None:
    prices_a, prices_b = shifted_pair(3)
    state = InstrumentState()
    state.advance(cell_trades(A, prices_a) + cell_trades(B, prices_b), T0 + 125 * S, [PAIR], SETTINGS)
    text = state.to_json()
    assert InstrumentState.from_json(text).to_json() == text
    assert json.loads(text)["version"] == 1
    assert json.loads(text)["leaders"] == {PAIR.name: ["binance"]}
    with pytest.raises(ValueError, match="state version"):
        InstrumentState.from_json(text.replace('"version":1', '"version":0'))


def test_a_leg_silent_longer_than_max_leg_silence_gives_no_row() -> None:
    prices_a, prices_b = shifted_pair(3)  # both legs trade in cells 0..129 (a trade at cell + 0.5 s)
    quiet_b = {cell: price for cell, price in prices_b.items() if cell < 110}  # b's last cell: 109
    trades = cell_trades(A, prices_a) + cell_trades(B, quiet_b, first_id=1000)
    # Window ending at 120 s: b's last cell ended at 110 s, 10 s before.
    allowed = dataclasses.replace(SETTINGS, max_leg_silence_us=10 * S)
    (row,) = run([trades], [T0 + 120 * S], allowed)
    assert (row["window_end"], row["leader"]) == (T0 + 120 * S, "binance")
    assert run([trades], [T0 + 120 * S], dataclasses.replace(SETTINGS, max_leg_silence_us=10 * S - 1)) == []
