"""MOD-008 as a stream: exact ``whale_markouts`` rows and alerts, computed by hand.

Settings: whale orders of at least $150,000 (``modules.whale``), horizons 60 and 300 s, the
default entry window (order, order + 5 s] and watermark delay 2 s, signal at the 60 s
horizon from 2 returns up, t-statistic bounds medium 0.5 and high 2.5. Every order below is
in the ``100K-500K`` bucket. Times are seconds after ``T0``.

The watermark of a micro-batch is the newest trade time of the batches before it minus 2 s;
Spark drops a trade at or before the PREVIOUS batch's watermark before the state function,
and runs a final no-data batch when the watermark moved. So a row is due in the batch whose
watermark first reaches its time: ``order_time + 5 s`` for the entry row (horizon 0),
``order_time + h`` for a markout.

Returns are written as the module computes them, ``s x (exit - entry) / entry x 10,000``,
so the doubles are identical: ``(exit - entry) / entry * 1e4`` for a buy and
``-(exit - entry) / entry * 1e4`` for a sell.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import Row, SparkSession

from coattail_detector_whale_alpha import WhaleAlphaDetector
from coattail_detector_whale_alpha.metadata import DETECTOR_INFO
from coattail_detector_whale_alpha.schema import WHALE_MARKOUTS
from coattail_devstack.testing import DetectorRun, run_detector_stream, trade
from coattail_framework import CoattailConfig, TradeEvent
from coattail_framework.alerts import make_alert_id
from coattail_framework.events import TakerSide

T0 = datetime(2024, 8, 9, tzinfo=UTC)
T0_US = 1_723_161_600_000_000
SYMBOLS = {
    "BTC/USDT": {"binance": "BTCUSDT"},
    "ETH/USDT": {"binance": "ETHUSDT"},
    "BTC/USD": {"coinbase": "BTC-USD"},
    "ETH/BTC": {"coinbase": "ETH-BTC"},  # quoted in BTC: never followed
}
MODULES = {
    "whale": {"min_notional_usd": 150_000},
    "whale-alpha": {
        "horizons_seconds": [60, 300],
        "min_cohort_orders": 2,
        "cohort_size": 5,
        "score_horizon_seconds": 60,
        "thresholds": {"medium": 0.5, "high": 2.5},
    },
}
SIGNAL_TYPE, MARKOUT_TYPE = DETECTOR_INFO.alert_types
NO_SIGNAL = {
    "signal_horizon_seconds": 60,
    "signal_n": 0,
    "signal_mean_bps": None,
    "signal_std_bps": None,
    "signal_t": None,
    "signal_hit_rate": None,
}
NO_COHORT = {"cohort_n": None, "cohort_mean_bps": None, "cohort_std_bps": None, "cohort_t": None,
             "cohort_hit_rate": None}  # fmt: skip


@pytest.fixture(scope="module")
def detector() -> WhaleAlphaDetector:
    detector = WhaleAlphaDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": MODULES}))
    return detector


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def naive(seconds: float) -> datetime:
    """What Spark's collect returns for a timestamp (UTC session, TZ=UTC)."""
    return at(seconds).replace(tzinfo=None)


def fill(
    seconds: float,
    trade_id: int,
    price: float,
    quantity: float,
    side: TakerSide = "buy",
    *,
    symbol: str = "BTCUSDT",
    exchange: str = "binance",
    taker_order_id: str | None = None,
) -> TradeEvent:
    return trade(
        at(seconds), price, quantity, side=side, exchange=exchange, symbol=symbol, trade_id=trade_id,
        taker_order_id=taker_order_id,
    )  # fmt: skip


def order(
    side: str,
    seconds: float,
    trade_ids: tuple[str, str],
    notional: float,
    base_quantity: float,
    fill_count: int,
    vwap: float,
    *,
    exchange: str = "binance",
    symbol: str = "BTCUSDT",
    taker_order_id: str | None = None,
) -> dict[str, Any]:
    """The order columns of a whale order's rows (bucket 100K-500K)."""
    return {
        "exchange": exchange,
        "symbol": symbol,
        "side": side,
        "order_time": naive(seconds),
        "first_trade_id": trade_ids[0],
        "last_trade_id": trade_ids[1],
        "taker_order_id": taker_order_id,
        "notional": notional,
        "base_quantity": base_quantity,
        "fill_count": fill_count,
        "order_vwap_price": vwap,
        "notional_bucket": "100K-500K",
        "orders_untracked": 0,
    }


def entry_row(
    whale: dict[str, Any], entry: float | None, count: int, signal: dict[str, Any] = NO_SIGNAL
) -> dict[str, Any]:
    """The horizon 0 row: the entry price stands as its exit, with a return of 0 (null without entry)."""
    start = (whale["order_time"] - naive(0)).total_seconds()
    return {
        **whale, "horizon_seconds": 0, "horizon_end": naive(start + 5), "entry_price": entry,
        "entry_trade_count": count, "exit_price": entry, "exit_time": None,
        "return_bps": None if entry is None else 0.0, **NO_COHORT, **signal,
    }  # fmt: skip


def markout_row(
    whale: dict[str, Any],
    horizon: int,
    entry: tuple[float | None, int],
    exit_at: tuple[float, float],
    return_bps: float | None,
    cohort: dict[str, Any],
    signal: dict[str, Any] = NO_SIGNAL,
) -> dict[str, Any]:
    start = (whale["order_time"] - naive(0)).total_seconds()
    return {
        **whale, "horizon_seconds": horizon, "horizon_end": naive(start + horizon), "entry_price": entry[0],
        "entry_trade_count": entry[1], "exit_price": exit_at[0], "exit_time": naive(exit_at[1]),
        "return_bps": return_bps, **cohort, **signal,
    }  # fmt: skip


def single(return_bps: float) -> dict[str, Any]:
    """Cohort statistics over one return: its mean is itself, no std, no t."""
    return {"cohort_n": 1, "cohort_mean_bps": return_bps, "cohort_std_bps": None, "cohort_t": None,
            "cohort_hit_rate": 1.0 if return_bps > 0 else 0.0}  # fmt: skip


def rows_of(rows: list[Row], exchange: str, symbol: str) -> list[dict[str, Any]]:
    return [row.asDict() for row in rows if (row.exchange, row.symbol) == (exchange, symbol)]


def batches_of(run: DetectorRun) -> dict[int, list[tuple[str, str, str, int]]]:
    """``batch -> [(symbol, side, order time, horizon)]`` of the batches that wrote rows."""
    return {
        batch: [(row.symbol, row.side, row.order_time.strftime("%H:%M:%S"), row.horizon_seconds) for row in rows]
        for batch, rows in run.outputs_by_batch.items()
        if rows
    }


def run_stream(spark: SparkSession, detector: WhaleAlphaDetector, batches: list[list[TradeEvent]], tmp_path: Path):
    run = run_detector_stream(spark, detector, batches, tmp_path)
    assert all(list(row.asDict()) == WHALE_MARKOUTS.fieldNames() for row in run.outputs)
    return run


# 1. A buy and a sell whale order on BTCUSDT, one micro-batch per step of the watermark.
BUY = order("buy", 0, ("1", "2"), 180_000.0, 3.0, 2, 60_000.0)  # 60,000 x 2 + 60,000 x 1
SELL = order("sell", 10, ("5", "5"), 180_000.0, 3.0, 1, 60_000.0)  # 60,000 x 3
BUY_ENTRY = 60_025.0  # (60,010 x 0.25 + 60,030 x 0.75) / (0.25 + 0.75) = (15,002.5 + 45,022.5) / 1
SELL_ENTRY = 59_990.0  # one trade at 59,990
BUY_60 = (60_150.0 - 60_025.0) / 60_025.0 * 1e4  # exit: the 50 s trade (last at or before 60 s); +20.82 bps
SELL_60 = -(59_900.0 - 59_990.0) / 59_990.0 * 1e4  # exit: the 65 s trade (last at or before 70 s); +15.00 bps
BUY_300 = (60_200.0 - 60_025.0) / 60_025.0 * 1e4  # exit: the 200 s trade (the 305 s one is after 300 s); +29.15
SELL_300 = -(59_800.0 - 59_990.0) / 59_990.0 * 1e4  # exit: the 305 s trade (last at or before 310 s); +31.67


def test_buy_and_sell_markouts_resolve_horizon_by_horizon_as_the_watermark_passes(
    spark: SparkSession, detector: WhaleAlphaDetector, tmp_path: Path
) -> None:
    batches = [
        [
            fill(0, 1, 60_000, 2),
            fill(0, 2, 60_000, 1),  # with id 1: one taker buy of $180,000
            fill(2, 3, 60_010, 0.25, "sell"),  # buy's entry window (0, 5]
            fill(4, 4, 60_030, 0.75),
            fill(10, 5, 60_000, 3, "sell"),  # taker sell of $180,000
            fill(12, 6, 59_990, 0.5),  # sell's entry window (10, 15]
        ],
        [fill(50, 7, 60_150, 0.5)],
        [fill(65, 8, 59_900, 0.5, "sell")],
        [fill(200, 9, 60_200, 0.5)],
        [fill(305, 10, 59_800, 0.5, "sell")],
        [fill(320, 11, 59_850, 0.5)],
    ]
    run = run_stream(spark, detector, batches, tmp_path)

    # Watermarks of batches 1..6 (newest trade before the batch - 2 s): 10, 48, 63, 198, 303, 318 s.
    assert batches_of(run) == {
        1: [("BTCUSDT", "buy", "00:00:00", 0)],  # entry at 5 s <= 10 (the sell's at 15 s is not yet due)
        2: [("BTCUSDT", "sell", "00:00:10", 0)],  # 15 s <= 48
        3: [("BTCUSDT", "buy", "00:00:00", 60)],  # 60 s <= 63; the sell's 70 s not yet
        4: [("BTCUSDT", "sell", "00:00:10", 60)],  # 70 s <= 198: neither waits for its 300 s markout
        5: [("BTCUSDT", "buy", "00:00:00", 300)],  # 300 s <= 303
        6: [("BTCUSDT", "sell", "00:00:10", 300)],  # 310 s <= 318, in the final no-data batch
    }
    assert rows_of(run.outputs, "binance", "BTCUSDT") == [
        entry_row(BUY, BUY_ENTRY, 2),
        entry_row(SELL, SELL_ENTRY, 1),
        markout_row(BUY, 60, (BUY_ENTRY, 2), (60_150.0, 50), BUY_60, single(BUY_60)),
        markout_row(SELL, 60, (SELL_ENTRY, 1), (59_900.0, 65), SELL_60, single(SELL_60)),
        markout_row(BUY, 300, (BUY_ENTRY, 2), (60_200.0, 200), BUY_300, single(BUY_300)),
        markout_row(SELL, 300, (SELL_ENTRY, 1), (59_800.0, 305), SELL_300, single(SELL_300)),
    ]
    assert SELL_60 > 0 and SELL_300 > 0  # the price fell after the sell: positive, the whale's way


# 2. BTCUSDT goes silent after the order; ETHUSDT keeps moving the watermark.
SILENT = order("buy", 0, ("1", "1"), 180_000.0, 3.0, 1, 60_000.0)
SILENT_RETURN = (60_100.0 - 60_040.0) / 60_040.0 * 1e4  # entry 60,040 (3 s), exit 60,100 (20 s) at both horizons


def test_markouts_of_a_silent_venue_resolve_on_event_time_with_its_last_trade(
    spark: SparkSession, detector: WhaleAlphaDetector, tmp_path: Path
) -> None:
    batches = [
        [
            fill(0, 1, 60_000, 3),
            fill(3, 2, 60_040, 0.5, "sell"),
            fill(20, 3, 60_100, 0.5),  # BTCUSDT's last trade
            fill(1, 1, 3_000, 1, symbol="ETHUSDT"),
        ],
        [fill(100, 2, 3_010, 1, symbol="ETHUSDT")],
        [fill(400, 3, 3_020, 1, symbol="ETHUSDT")],
    ]
    run = run_stream(spark, detector, batches, tmp_path)

    # Watermarks 18, 98, 398 s: BTCUSDT has no trade in batches 1-3, its event-time timeout fires.
    assert batches_of(run) == {
        1: [("BTCUSDT", "buy", "00:00:00", 0)],
        2: [("BTCUSDT", "buy", "00:00:00", 60)],
        3: [("BTCUSDT", "buy", "00:00:00", 300)],  # the no-data batch
    }
    assert rows_of(run.outputs, "binance", "BTCUSDT") == [
        entry_row(SILENT, 60_040.0, 1),
        markout_row(SILENT, 60, (60_040.0, 1), (60_100.0, 20), SILENT_RETURN, single(SILENT_RETURN)),
        markout_row(SILENT, 300, (60_040.0, 1), (60_100.0, 20), SILENT_RETURN, single(SILENT_RETURN)),
    ]


# 3. The same trades on two keys: BTCUSDT in time order, ETHUSDT shuffled and with the order split.
SCRAMBLED = [
    (0, 10, 60_000, 1, "buy"),  # ids 10-12: one taker buy of 60,000 + 60,010 + 60,020 = $180,030
    (0, 11, 60_010, 1, "buy"),
    (0, 12, 60_020, 1, "buy"),
    (1, 13, 60_030, 0.5, "sell"),  # entry: (30,015 + 30,025) / (0.5 + 0.5) = 60,040
    (4, 14, 60_050, 0.5, "buy"),
    (30, 15, 60_100, 0.25, "buy"),  # 60 s exit
    (200, 16, 60_070, 0.25, "sell"),  # 300 s exit
    (310, 17, 60_090, 0.25, "buy"),  # moves the watermark past 300 s
]


def test_rows_do_not_depend_on_fill_order_or_on_how_an_order_is_cut_into_batches(
    spark: SparkSession, detector: WhaleAlphaDetector, tmp_path: Path
) -> None:
    def fills(symbol: str, indexes: list[int]) -> list[TradeEvent]:
        return [fill(*SCRAMBLED[i][:4], SCRAMBLED[i][4], symbol=symbol) for i in indexes]  # type: ignore[arg-type]

    batches = [
        # Newest trade 1 s: batch 1's watermark is -1 s, so ids 11 and 12 at 0 s, 1 s behind, are not late.
        [*fills("BTCUSDT", [0, 1, 2, 3]), *fills("ETHUSDT", [3, 0])],
        [*fills("BTCUSDT", [4, 5, 6]), *fills("ETHUSDT", [6, 2, 5, 1, 4])],
        [*fills("BTCUSDT", [7]), *fills("ETHUSDT", [7])],
    ]
    run = run_stream(spark, detector, batches, tmp_path)

    whale = order("buy", 0, ("10", "12"), 180_030.0, 3.0, 3, 60_010.0)
    return_60 = (60_100.0 - 60_040.0) / 60_040.0 * 1e4
    return_300 = (60_070.0 - 60_040.0) / 60_040.0 * 1e4
    assert rows_of(run.outputs, "binance", "BTCUSDT") == [
        entry_row(whale, 60_040.0, 2),
        markout_row(whale, 60, (60_040.0, 2), (60_100.0, 30), return_60, single(return_60)),
        markout_row(whale, 300, (60_040.0, 2), (60_070.0, 200), return_300, single(return_300)),
    ]
    ordered, scrambled = ({**row, "symbol": None} for row in rows_of(run.outputs, "binance", "BTCUSDT")), (
        {**row, "symbol": None} for row in rows_of(run.outputs, "binance", "ETHUSDT")
    )
    assert list(scrambled) == list(ordered)
    by_batch = batches_of(run)  # watermarks 1: -1 s, 2: 198 s, 3 (no data): 308 s
    assert by_batch == {
        2: [(s, "buy", "00:00:00", h) for h in (0, 60) for s in ("BTCUSDT", "ETHUSDT")],
        3: [(s, "buy", "00:00:00", 300) for s in ("BTCUSDT", "ETHUSDT")],
    } or sorted(by_batch[2]) == sorted((s, "buy", "00:00:00", h) for h in (0, 60) for s in ("BTCUSDT", "ETHUSDT"))
