"""The per-key window and baseline state machine, without Spark (what the state function runs)."""

from __future__ import annotations

import pandas as pd

from coattail_detector_volume_anomaly.windows import KeyState, WindowTotals, window_totals

MINUTE_US = 60_000_000
T0_US = 1_723_161_600_000_000  # 2024-08-09T00:00:00Z


def trades(*rows: tuple[float, float, float, str]) -> pd.DataFrame:
    """(seconds after T0, quantity, quote volume, taker side) rows."""
    return pd.DataFrame(
        [(T0_US + int(seconds * 1_000_000), quantity, quote, side) for seconds, quantity, quote, side in rows],
        columns=["event_us", "quantity", "quote_volume", "side"],
    )


def state_with(*volumes: float) -> KeyState:
    """A key whose consecutive windows from T0 had these quote volumes (all taker buys), all closed."""
    state = KeyState.empty()
    state.add(window_totals(trades(*((60 * i + 1, 1.0, v, "buy") for i, v in enumerate(volumes))), MINUTE_US))
    state.close_until(T0_US + len(volumes) * MINUTE_US, MINUTE_US, capacity=60)
    return state


def test_window_totals_of_unordered_trades() -> None:
    batch = trades((75, 2.0, 3000.0, "sell"), (5, 1.0, 1000.0, "buy"), (59.999999, 0.5, 600.0, "sell"))
    assert window_totals(batch, MINUTE_US) == [
        WindowTotals(T0_US, 2, 1.5, 1600.0, 1000.0, 600.0),
        WindowTotals(T0_US + MINUTE_US, 1, 2.0, 3000.0, 0.0, 3000.0),
    ]


def test_window_parts_from_two_batches_merge() -> None:
    state = KeyState.empty()
    state.add(window_totals(trades((5, 1.0, 1000.0, "buy")), MINUTE_US))
    state.add(window_totals(trades((40, 2.0, 2500.0, "sell")), MINUTE_US))
    assert state.open_windows == {T0_US: WindowTotals(T0_US, 2, 3.0, 3500.0, 1000.0, 2500.0)}


def test_a_window_closes_when_the_watermark_reaches_its_end() -> None:
    state = KeyState.empty()
    state.add(window_totals(trades((5, 1.0, 1000.0, "buy"), (65, 1.0, 2000.0, "buy")), MINUTE_US))
    assert state.close_until(T0_US + MINUTE_US - 1, MINUTE_US, capacity=60) == []
    assert state.next_close_ms(MINUTE_US) == (T0_US + MINUTE_US) // 1000 - 1
    [row] = state.close_until(T0_US + MINUTE_US, MINUTE_US, capacity=60)
    assert (row["window_start"], row["window_end"], row["quote_volume"]) == (T0_US, T0_US + MINUTE_US, 1000.0)
    assert state.closed_through_us == T0_US + MINUTE_US
    assert list(state.open_windows) == [T0_US + MINUTE_US]


def test_quiet_minutes_enter_the_baseline_as_zeros() -> None:
    state = KeyState.empty()
    # Trades in minutes 0, 1 and 4; minutes 2 and 3 are quiet.
    state.add(window_totals(trades((1, 1.0, 6.0, "buy"), (61, 1.0, 6.0, "buy"), (241, 1.0, 15.0, "sell")), MINUTE_US))
    rows = state.close_until(T0_US + 5 * MINUTE_US, MINUTE_US, capacity=60)
    assert [row["window_start"] for row in rows] == [T0_US, T0_US + MINUTE_US, T0_US + 4 * MINUTE_US]
    last = rows[-1]
    assert (last["baseline_size"], last["baseline_mean"], last["baseline_std"], last["z_score"]) == (4, 3.0, 3.0, 4.0)
    assert (last["buy_baseline_mean"], last["buy_baseline_std"], last["buy_z_score"]) == (3.0, 3.0, -1.0)
    assert (last["sell_baseline_mean"], last["sell_baseline_std"], last["sell_z_score"]) == (0.0, 0.0, None)
    assert state.baseline_quote == [6.0, 6.0, 0.0, 0.0, 15.0]


def test_a_gap_longer_than_the_baseline_leaves_only_zeros() -> None:
    state = state_with(5.0, 7.0)
    state.add(window_totals(trades((60 * 500 + 1, 1.0, 9.0, "buy")), MINUTE_US))
    [row] = state.close_until(T0_US + 501 * MINUTE_US, MINUTE_US, capacity=4)
    assert (row["baseline_size"], row["baseline_mean"], row["baseline_std"], row["z_score"]) == (4, 0.0, 0.0, None)
    assert state.baseline_quote == [0.0, 0.0, 0.0, 9.0]


def test_state_stays_bounded_by_the_baseline_capacity() -> None:
    state = KeyState.empty()
    state.add(window_totals(trades(*((60 * i + 1, 1.0, float(i), "buy") for i in range(100))), MINUTE_US))
    state.close_until(T0_US + 100 * MINUTE_US, MINUTE_US, capacity=60)
    assert state.baseline_quote == [float(i) for i in range(40, 100)]
    assert len(state.baseline_buy_quote) == len(state.baseline_sell_quote) == 60
    assert state.open_windows == {}
    assert state.next_close_ms(MINUTE_US) is None


def test_state_round_trips_through_its_row_form() -> None:
    state = state_with(5.0, 7.0)
    state.add(window_totals(trades((150, 2.0, 20.0, "sell"), (200, 1.0, 3.0, "buy")), MINUTE_US))
    assert KeyState.from_row(state.to_row()) == state
