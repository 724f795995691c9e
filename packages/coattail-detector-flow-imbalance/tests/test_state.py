"""MOD-004's state machine without Spark: hand-computed windows, baselines, bounds and determinism.

Settings: 10 s windows, a baseline of 4 windows, large orders from 1,000, at most 100 pending
fills. Times are seconds after 0; every fill trades at price 100 with the quote volume given.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from coattail_detector_flow_imbalance.flows import timeout_ms
from coattail_detector_flow_imbalance.state import KeyState, Settings
from coattail_detector_whale.fills import Fill

S = 1_000_000
SETTINGS = Settings(window_us=10 * S, baseline_windows=4, large_order_usd=1_000.0, max_pending_fills=100)


def fill(seconds: float, trade_id: int, quote: float, side: str = "buy", taker: str | None = None) -> Fill:
    return Fill(round(seconds * S), side, taker, str(trade_id), 100.0, quote / 100.0, quote)


def run(batches: list[list[Fill]], watermarks: list[int | None], settings: Settings = SETTINGS) -> list[dict[str, Any]]:
    """Rows of one key fed batch by batch, the state stored and read back as JSON between batches."""
    rows: list[dict[str, Any]] = []
    text = KeyState().to_json()
    for batch, watermark in zip(batches, watermarks, strict=True):
        state = KeyState.from_json(text)
        rows.extend(state.advance(batch, watermark, settings))
        text = state.to_json()
    return rows


def test_a_window_counts_taker_orders_and_its_imbalances() -> None:
    fills = [
        fill(4, 10, 700.0, taker="T-1"),  # T-1: ids 10 and 12 with a taker order id: one buy of 1,200 (large)
        fill(3, 7, 400.0, "sell"),  # ids 5 and 7 skip id 6: two sell orders of 400
        fill(1, 1, 600.0),  # ids 1-2 at 1 s: one buy of 1,100 (large)
        fill(2, 3, 300.0, "sell"),  # a sell of 300
        fill(1, 2, 500.0),
        fill(2, 4, 200.0),  # a buy of 200 at the same instant as the sell
        fill(3, 5, 400.0, "sell"),
        fill(4, 12, 500.0, taker="T-1"),
    ]
    (row,) = run([fills], [10 * S])
    # B = 1,100 + 200 + 1,200 = 2,500; S = 300 + 400 + 400 = 1,100; F = 1,400
    assert row == {
        "window_start": 0,
        "window_end": 10 * S,
        "buy_order_count": 3,
        "sell_order_count": 3,
        "buy_quote_volume": 2_500.0,
        "sell_quote_volume": 1_100.0,
        "large_buy_quote_volume": 2_300.0,  # 1,100 + 1,200
        "large_sell_quote_volume": 0.0,
        "net_quote_flow": 1_400.0,
        "imbalance": 1_400.0 / 3_600.0,  # (2,500 - 1,100) / (2,500 + 1,100) = 0.389
        "large_order_imbalance": 1.0,  # (2,300 - 0) / (2,300 + 0)
        "baseline_size": 0,
        "baseline_mean": None,
        "baseline_std": None,
        "net_flow_z": None,
        "early_final_orders": 0,
    }


def test_the_large_order_imbalance_is_null_without_large_orders() -> None:
    (row,) = run([[fill(1, 1, 999.0), fill(2, 2, 300.0, "sell"), fill(2, 3, 600.0, "sell")]], [10 * S])
    # Ids 2-3 are one sell of 900; no order reaches 1,000.
    assert (row["large_buy_quote_volume"], row["large_sell_quote_volume"]) == (0.0, 0.0)
    assert row["large_order_imbalance"] is None
    assert row["imbalance"] == (999.0 - 900.0) / (999.0 + 900.0)
    assert (row["buy_order_count"], row["sell_order_count"]) == (1, 1)


def test_small_fills_of_one_order_make_a_large_order() -> None:
    (row,) = run([[fill(1, 1, 400.0), fill(1, 2, 400.0), fill(1, 3, 400.0), fill(2, 4, 999.0, "sell")]], [10 * S])
    # Ids 1-3: one buy of 1,200 >= 1,000; the sell of 999 is not large.
    assert (row["large_buy_quote_volume"], row["large_sell_quote_volume"], row["large_order_imbalance"]) == (
        1_200.0,
        0.0,
        1.0,
    )


# Net flows per window: +3,000, -1,000, quiet, quiet, +5,000, then quiet for 4 windows, +100.
FLOWS = [
    fill(1, 1, 4_000.0),
    fill(3, 2, 1_000.0, "sell"),  # window 0: F = 4,000 - 1,000 = +3,000
    fill(12, 3, 500.0),
    fill(14, 4, 1_500.0, "sell"),  # window 1: F = 500 - 1,500 = -1,000
    fill(41, 5, 6_000.0),
    fill(44, 6, 1_000.0, "sell"),  # window 4: F = +5,000
    fill(95, 7, 100.0),  # window 9: F = +100
]


def test_net_flow_z_counts_quiet_windows_as_zeros_and_the_baseline_warms_up() -> None:
    rows = run([FLOWS], [100 * S])
    assert [(row["window_start"] // S, row["net_quote_flow"], row["baseline_size"]) for row in rows] == [
        (0, 3_000.0, 0),
        (10, -1_000.0, 1),
        (40, 5_000.0, 4),
        (90, 100.0, 4),
    ]
    first, second, third, last = rows
    assert (first["baseline_mean"], first["baseline_std"], first["net_flow_z"]) == (None, None, None)
    # One window of baseline: mean 3,000, std 0, z undefined.
    assert (second["baseline_mean"], second["baseline_std"], second["net_flow_z"]) == (3_000.0, 0.0, None)
    # Baseline [3,000, -1,000, 0, 0]: mean 500; squares 2,500^2 + 1,500^2 + 500^2 + 500^2 = 9,000,000,
    # / 4 = 2,250,000, std 1,500; z = (5,000 - 500) / 1,500 = 3.
    assert (third["baseline_mean"], third["baseline_std"], third["net_flow_z"]) == (500.0, 1_500.0, 3.0)
    # Windows 5-8 were quiet: 4 zeros fill the whole baseline, flat, so no z.
    assert (last["baseline_mean"], last["baseline_std"], last["net_flow_z"]) == (0.0, 0.0, None)


def test_orders_become_final_when_the_watermark_passes_them_and_join_fills_from_later_batches() -> None:
    state = KeyState()
    assert state.advance([fill(5, 1, 600.0)], 4 * S, SETTINGS) == []
    assert state.next_due_us(SETTINGS) == 5 * S  # the pending fill
    assert state.advance([fill(5, 2, 500.0), fill(12, 3, 100.0, "sell")], 5 * S, SETTINGS) == []
    assert state.next_due_us(SETTINGS) == 10 * S  # window 0 is open, its order final
    (row,) = state.advance([], 10 * S, SETTINGS)
    assert (row["buy_order_count"], row["buy_quote_volume"], row["large_buy_quote_volume"]) == (1, 1_100.0, 1_100.0)
    assert state.next_due_us(SETTINGS) == 12 * S
    assert state.advance([], 12 * S, SETTINGS) == []
    assert state.next_due_us(SETTINGS) == 20 * S
    assert state.pending == []


def test_the_timeout_fires_once_the_watermark_reaches_the_due_instant() -> None:
    # Spark fires when the watermark (ms) is strictly above the timeout.
    assert timeout_ms(5 * S) == 4_999
    assert timeout_ms(5 * S + 1) == 5_000  # 5.000001 s is reached by a watermark of 5.001 s


def test_beyond_max_pending_fills_the_oldest_instants_become_final_early() -> None:
    capped = Settings(**{**SETTINGS.__dict__, "max_pending_fills": 2})
    state = KeyState()
    first = [fill(21, 1, 300.0), fill(22, 2, 400.0), fill(22, 3, 500.0), fill(23, 4, 600.0)]
    assert state.advance(first, 0, capped) == []
    # 4 pending > 2: the instants 21 s and 22 s (3 fills) are made final; 23 s waits.
    assert [f.trade_id for f in state.pending] == ["4"]
    # Id 5, the rest of the 22 s order, arrives later: it makes an order of its own.
    (row,) = state.advance([fill(22, 5, 100.0)], 30 * S, capped)
    assert (row["window_start"], row["buy_order_count"], row["early_final_orders"]) == (20 * S, 4, 2)
    assert row["buy_quote_volume"] == 300.0 + 900.0 + 100.0 + 600.0  # notionals stay exact
    assert row["large_buy_quote_volume"] == 0.0  # ids 2, 3 and 5 would have made one order of 1,000


def test_static_input_closes_every_window() -> None:
    rows = KeyState().advance(FLOWS, None, SETTINGS)
    assert [row["window_start"] // S for row in rows] == [0, 10, 40, 90]
    assert rows == run([FLOWS], [100 * S])


def test_state_round_trips_through_json_exactly() -> None:
    state = KeyState()
    state.advance([*FLOWS[:5], fill(41, 8, 0.1 + 0.2)], 20 * S, SETTINGS)
    text = state.to_json()
    assert KeyState.from_json(text).to_json() == text
    assert KeyState.from_json(text).pending[-1].quote_volume == 0.1 + 0.2
    assert json.loads(text)["version"] == 1
    with pytest.raises(ValueError, match="flow-imbalance state version 0, this code reads 1"):
        KeyState.from_json(text.replace('"version":1', '"version":0'))


def random_fills(rng: random.Random) -> list[Fill]:
    """Bursts of fills over about 10 minutes: orders of 1 to 4 fills, some with taker order ids, quiet gaps."""
    fills: list[Fill] = []
    trade_id = 0
    at = 0.0
    for _ in range(700):
        at += rng.choice([0.0, 0.001, 0.3, 0.9, 2.5]) + (25.0 if rng.random() < 0.01 else 0.0)
        side = rng.choice(["buy", "sell"])
        taker = rng.choice([None, None, f"T-{trade_id}"])
        for _ in range(rng.choice([1, 1, 2, 4])):
            trade_id += rng.choice([1, 1, 1, 2])  # an id skipped now and then splits an order
            fills.append(fill(at, trade_id, round(rng.lognormvariate(5, 1.5), 2), side, taker))
    return fills


@pytest.mark.parametrize("seed", range(8))
def test_rows_do_not_depend_on_how_fills_were_cut_into_batches(seed: int) -> None:
    rng = random.Random(seed)
    fills = random_fills(rng)
    delay = 5 * S
    unbounded = Settings(**{**SETTINGS.__dict__, "max_pending_fills": len(fills)})  # the bound breaks determinism
    newest_overall = max(f.event_us for f in fills)
    expected = run([fills], [newest_overall - delay], unbounded)
    assert len(expected) > 30
    assert any(row["net_flow_z"] is not None for row in expected)
    assert any(row["large_order_imbalance"] is None for row in expected)
    assert any(row["baseline_size"] == 4 and row["buy_order_count"] + row["sell_order_count"] > 1 for row in expected)

    cuts = sorted(rng.sample(range(1, len(fills)), 40))
    batches = [fills[a:b] for a, b in zip([0, *cuts], [*cuts, len(fills)], strict=True)]
    watermarks: list[int | None] = []
    newest = 0
    for index, batch in enumerate(batches):
        watermark = max(0, newest - delay)  # Spark's watermark trails the batches before
        watermarks.append(watermark)
        newest = max(newest, *(f.event_us for f in batch))
        # Some fills arrive a batch late, out of order, still after the watermark that filters late fills.
        if index + 1 < len(batches):
            for late in [f for f in batch if f.event_us > max(0, newest - delay) and rng.random() < 0.2]:
                batch.remove(late)
                batches[index + 1].append(late)
        rng.shuffle(batch)
    batches.append([])
    watermarks.append(newest_overall - delay)
    assert run(batches, watermarks, unbounded) == expected


def test_imbalance_is_the_normalised_net_flow() -> None:
    (row,) = run([[fill(1, 1, 0.1), fill(2, 2, 0.2, "sell")]], [10 * S])
    assert math.isclose(row["imbalance"], -1 / 3, rel_tol=1e-15)
    assert row["net_quote_flow"] == 0.1 - 0.2
