"""MOD-010 as a stream: exact ``lead_lag`` rows and alerts on constructed legs, and the edge cases.

Settings: grid 1 s, window 20 s, lags up to 3 s, a step every 10 s, 16 non-zero returns per leg,
a leader change after 2 significant windows, watermark delay 1 s. An evaluation at step end ``E``
reads the returns of cells [E - 23, E) and prices from cell E - 24. Times are seconds after
``T0`` (2024-08-09 00:00 UTC); a leg's trade of cell ``c`` is at ``c + 0.5`` s.

"b repeats a k cells later" means b's price in cell ``c`` is a's in cell ``c - k``: b's return at
``t + k`` is a's at ``t``, the same double, so rho(k) is exactly 1 and k* = k.

Micro-batches hold 20 s of trades each. The watermark of a batch is the newest trade time of
the batches before it minus 1 s; Spark runs a final no-data batch when it moved.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql import SparkSession

from coattail_detector_lead_lag import LEAD_LAG, LeadLagDetector
from coattail_devstack.testing import DetectorRun, TradeClock, run_detector_stream, trade
from coattail_framework import CoattailConfig, TradeEvent
from coattail_framework.alerts import make_alert_id

T0 = datetime(2024, 8, 9, tzinfo=UTC)
T0_US = 1_723_161_600_000_000
SYMBOLS = {
    "BTC/USDT": {"binance": "BTCUSDT"},
    "BTC/USD": {"coinbase": "BTC-USD"},
    "ETH/USDT": {"binance": "ETHUSDT"},
    "ETH/USD": {"coinbase": "ETH-USD"},
    "SOL/USDT": {"binance": "SOLUSDT"},
    "SOL/USD": {"coinbase": "SOL-USD"},
    "XRP/USDT": {"binance": "XRPUSDT"},
    "XRP/USD": {"coinbase": "XRP-USD"},
}
MODULES = {
    "lead-lag": {
        "window_seconds": 20,
        "max_lag_seconds": 3,
        "step_seconds": 10,
        "min_samples": 16,
        "min_consecutive": 2,
        "watermark_delay_seconds": 1,
    }
}
LAGS = range(-3, 4)
Prices = dict[int, float]


@pytest.fixture(scope="module")
def detector() -> LeadLagDetector:
    detector = LeadLagDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": MODULES}))
    return detector


CLOCK = TradeClock(T0)
at, naive = CLOCK.at, CLOCK.naive


def walk(seed: int, count: int) -> list[float]:
    rng = random.Random(seed)
    prices = [60_000.0]
    for _ in range(count - 1):
        prices.append(prices[-1] * math.exp(rng.gauss(0, 5e-4)))
    return prices


def legs_trades(exchange: str, symbol: str, prices: Prices) -> list[TradeEvent]:
    """One trade per cell at ``cell + 0.5`` s, trade id = cell + 1000."""
    return [
        trade(at(cell + 0.5), price, 0.01, exchange=exchange, symbol=symbol, trade_id=cell + 1000)
        for cell, price in sorted(prices.items())
    ]


def price_at(prices: Prices, cell: int) -> float:
    """The price of the last cell at or before ``cell`` with a trade (carried forward)."""
    return prices[max(held for held in prices if held <= cell)]


def expected_row(
    symbol: str, legs: tuple[str, str, str, str], prices_a: Prices, prices_b: Prices, end: int
) -> dict[str, Any]:
    """The row for the window ending at ``end`` s, its correlations computed here with ``statistics``."""

    def returns(prices: Prices) -> list[float]:
        path = [price_at(prices, cell) for cell in range(end - 24, end)]
        return [math.log(later / earlier) for earlier, later in itertools.pairwise(path)]

    returns_a, returns_b = returns(prices_a), returns(prices_b)  # cells end - 23 .. end - 1

    def rho(lag: int) -> float:
        if lag >= 0:
            return statistics.correlation(returns_a[3 - lag : 23 - lag], returns_b[3:])
        return statistics.correlation(returns_a[3:], returns_b[3 + lag : 23 + lag])

    best = max(LAGS, key=lambda lag: (abs(rho(lag)), -abs(lag), -lag))
    exchange_a, symbol_a, exchange_b, symbol_b = legs
    return {
        "window_start": naive(end - 20),
        "window_end": naive(end),
        "symbol": symbol,
        "exchange_a": exchange_a,
        "symbol_a": symbol_a,
        "exchange_b": exchange_b,
        "symbol_b": symbol_b,
        "lag_seconds": float(best),
        "leader": exchange_a if best > 0 else exchange_b if best < 0 else None,
        "correlation_at_lag": pytest.approx(rho(best), abs=1e-9),
        "correlation_at_zero": pytest.approx(rho(0), abs=1e-9),
        "lead_lag_ratio": pytest.approx(
            sum(rho(lag) ** 2 for lag in (1, 2, 3)) / sum(rho(-lag) ** 2 for lag in (1, 2, 3)), rel=1e-9
        ),
        "samples": 20,
        "nonzero_returns_a": sum(value != 0 for value in returns_a[3:]),
        "nonzero_returns_b": sum(value != 0 for value in returns_b[3:]),
    }


# BTC/USD: binance leads by 3 cells in cells 0..44, both legs are quiet in 45..74, coinbase leads by 3 in 75..129.
DRIVER = walk(1, 140)
BTC_A = {cell: DRIVER[cell + 3] for cell in range(45)} | {cell: DRIVER[cell] for cell in range(75, 130)}
BTC_B = {cell: DRIVER[cell] for cell in range(45)} | {cell: DRIVER[cell + 3] for cell in range(75, 130)}
BTC_LEGS = ("binance", "BTCUSDT", "coinbase", "BTC-USD")
# ETH/USD: coinbase repeats binance 2 cells later; coinbase stops after cell 59, binance after 64.
ETH_A = dict(enumerate(walk(2, 65)))
ETH_B = {cell: ETH_A.get(cell - 2, ETH_A[0]) for cell in range(60)}
ETH_LEGS = ("binance", "ETHUSDT", "coinbase", "ETH-USD")


def btc_like(symbol_a: str, symbol_b: str) -> list[TradeEvent]:
    """BTC/USD's trades under other symbols, with an earlier trade in some cells that its last trade overrides."""
    trades = legs_trades("binance", symbol_a, BTC_A) + legs_trades("coinbase", symbol_b, BTC_B)
    overridden = [
        trade(event.timestamp - timedelta(milliseconds=300 * (cell % 2)), float(event.price) * 1.01, 0.01,
              exchange=event.exchange, symbol=event.symbol, trade_id=int(event.trade_id or 0) - 500)
        for cell, event in enumerate(trades) if cell % 5 == 0
    ]  # fmt: skip
    return trades + overridden  # the same time (ids 500 below) or 0.3 s earlier: never the cell's last trade


def by_20_seconds(trades: list[TradeEvent]) -> list[list[TradeEvent]]:
    batches: list[list[TradeEvent]] = [[] for _ in range(7)]
    for event in trades:
        batches[int((event.timestamp - T0).total_seconds()) // 20].append(event)
    return batches


@pytest.fixture(scope="module")
def stream_run(spark: SparkSession, detector: LeadLagDetector, tmp_path_factory: pytest.TempPathFactory) -> DetectorRun:
    in_order = by_20_seconds(
        btc_like("BTCUSDT", "BTC-USD")
        + legs_trades("binance", "ETHUSDT", ETH_A)
        + legs_trades("coinbase", "ETH-USD", ETH_B)
        + [trade(at(135), 0.5, 100, exchange="binance", symbol="XRPUSDT", trade_id=1)]  # XRP/USD: one trade
    )
    # SOL/USD: BTC/USD's trades, shuffled inside each batch; those of a batch's last 0.8 s arrive one batch
    # later (after the watermark, which trails the newest trade by 1 s: not late), and one trade arrives late.
    sol = by_20_seconds(btc_like("SOLUSDT", "SOL-USD"))
    rng = random.Random(5)
    moved = [[event for event in batch if (event.timestamp - T0).total_seconds() % 20 > 19.2] for batch in sol[:6]]
    for index, later in enumerate(moved):
        sol[index] = [event for event in sol[index] if event not in later]
        sol[index + 1] += later
    # late: 97.9 s is before the watermark of the batch before (98.5 s); taken, it would be cell 97's price (the
    # 97.5 s trade's id is lower), which the windows ending at 100, 110 and 120 s read
    sol[6].append(trade(at(97.9), 1.0, 1, exchange="binance", symbol="SOLUSDT", trade_id=99_999))
    for batch in sol:
        rng.shuffle(batch)
    batches = [[*btc, *sol_batch] for btc, sol_batch in zip(in_order, sol, strict=True)]
    return run_detector_stream(spark, detector, [[], *batches[:3], [], *batches[3:]], tmp_path_factory.mktemp("run"))


def rows_of(run: DetectorRun, symbol: str) -> list[dict[str, Any]]:
    return [row.asDict() for row in run.outputs if row.symbol == symbol]


def measured(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without their history columns (``significant``, ``previous_leader``, ``leader_change``)."""
    kept = [name for name in LEAD_LAG.fieldNames() if name not in ("significant", "previous_leader", "leader_change")]
    return [{name: row[name] for name in kept} for row in rows]


def history(rows: list[dict[str, Any]]) -> list[tuple[int, bool, str | None, bool]]:
    return [
        (int((row["window_end"] - naive(0)).total_seconds()), row["significant"], row["previous_leader"],
         row["leader_change"])
        for row in rows
    ]  # fmt: skip


def test_every_row_has_the_declared_columns(stream_run: DetectorRun) -> None:
    assert stream_run.outputs
    assert all(list(row.asDict()) == LEAD_LAG.fieldNames() for row in stream_run.outputs)


def test_a_lead_of_three_cells_each_way_around_a_quiet_period(stream_run: DetectorRun) -> None:
    rows = rows_of(stream_run, "BTC/USD")
    # 10 and 20 s: no price before cell 0; 50 to 90 s: fewer than 16 moves in the window (quiet from 45 to 74 s)
    ends = (30, 40, 100, 110, 120, 130)
    assert measured(rows) == [expected_row("BTC/USD", BTC_LEGS, BTC_A, BTC_B, end) for end in ends]
    assert [(row["lag_seconds"], row["leader"], row["correlation_at_lag"]) for row in rows] == [
        (3.0, "binance", 1.0),
        (3.0, "binance", 1.0),
        (-3.0, "coinbase", 1.0),
        (-3.0, "coinbase", 1.0),
        (-3.0, "coinbase", 1.0),
        (-3.0, "coinbase", 1.0),
    ]
    assert history(rows) == [
        (30, True, None, False),
        (40, True, None, False),  # one significant window before: fewer than min_consecutive (2)
        (100, True, "binance", True),  # binance led the previous 2 significant windows
        (110, True, None, False),  # binance then coinbase: no single leader held
        (120, True, "coinbase", False),
        (130, True, "coinbase", False),
    ]


def test_the_leader_change_alert(stream_run: DetectorRun) -> None:
    (alert,) = [alert for alert in stream_run.alerts if alert.symbol == "BTC/USD"]
    assert alert.alert_id == make_alert_id(
        "MOD-010", "BTC/USD", "binance", "BTCUSDT", "coinbase", "BTC-USD", str(T0_US + 100_000_000)
    )
    assert (alert.alert_type, alert.module_id, alert.exchange) == ("leader_change", "MOD-010", "binance|coinbase")
    assert (alert.severity, alert.detected_at) == ("critical", naive(100))  # |rho(k*)| 1.0 > 0.6
    assert alert.message == (
        "BTC/USD binance|coinbase: coinbase now leads by 3.0 s (correlation 1.00 at that lag, "
        f"{rows_of(stream_run, 'BTC/USD')[2]['correlation_at_zero']:.2f} at 0); binance led the previous 2 "
        "significant windows (window 2024-08-09 00:01:20 to 00:01:40 UTC)"
    )
    details = json.loads(alert.details)
    assert (details["lag_seconds"], details["leader"], details["previous_leader"]) == (-3.0, "coinbase", "binance")
    assert details["window_end"].startswith("2024-08-09T00:01:40")


def test_a_venue_going_silent_ends_its_rows_once_its_moves_fall_below_min_samples(stream_run: DetectorRun) -> None:
    rows = rows_of(stream_run, "ETH/USD")
    # coinbase's last move is in cell 59: the 70 s window holds 10 of them
    assert measured(rows) == [expected_row("ETH/USD", ETH_LEGS, ETH_A, ETH_B, end) for end in (30, 40, 50, 60)]
    assert {(row["lag_seconds"], row["leader"], row["correlation_at_lag"]) for row in rows} == {(2.0, "binance", 1.0)}
    assert history(rows) == [(30, True, None, False), (40, True, None, False), (50, True, "binance", False),
                             (60, True, "binance", False)]  # fmt: skip


def test_windows_are_due_when_the_watermark_passes_their_end_even_without_trades(stream_run: DetectorRun) -> None:
    # Batches 0 and 4 are empty; 1, 2, 3 hold 0-20, 20-40, 40-60 s, 5 to 8 hold 60-80 .. 120-140 s; 9 is the
    # final no-data batch. Watermarks: 0, 0, 18.5, 38.5, 58.5, 58.5, 78.5, 98.5, 118.5, 134 s.
    due = {
        batch: sorted((row.symbol, int((row.window_end - naive(0)).total_seconds())) for row in rows)
        for batch, rows in stream_run.outputs_by_batch.items()
        if rows
    }
    assert due == {
        3: [("BTC/USD", 30), ("ETH/USD", 30), ("SOL/USD", 30)],
        # an empty micro-batch: every row comes from an event-time timeout
        4: [("BTC/USD", 40), ("ETH/USD", 40), ("ETH/USD", 50), ("SOL/USD", 40)],
        6: [("ETH/USD", 60)],  # ETH's last trade is at 64.5 s (batch 5): no ETH trade in batch 6
        8: [("BTC/USD", 100), ("BTC/USD", 110), ("SOL/USD", 100), ("SOL/USD", 110)],
        9: [("BTC/USD", 120), ("BTC/USD", 130), ("SOL/USD", 120), ("SOL/USD", 130)],
    }


def test_rows_do_not_depend_on_arrival_order_and_late_trades_are_dropped(stream_run: DetectorRun) -> None:
    renamed = {"SOL/USD": "BTC/USD", "SOLUSDT": "BTCUSDT", "SOL-USD": "BTC-USD"}
    sol = [{key: renamed.get(value, value) for key, value in row.items()} for row in rows_of(stream_run, "SOL/USD")]
    assert sol == rows_of(stream_run, "BTC/USD")


def test_a_single_trade_and_empty_batches_give_no_rows(stream_run: DetectorRun) -> None:
    assert rows_of(stream_run, "XRP/USD") == []
    assert sorted(stream_run.outputs_by_batch) == list(range(10))  # 9 batches and the final no-data one
    assert stream_run.outputs_by_batch[0] == []
