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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import Row, SparkSession

from coattail_detector_whale_alpha import WhaleAlphaDetector
from coattail_detector_whale_alpha.metadata import DETECTOR_INFO
from coattail_detector_whale_alpha.schema import WHALE_MARKOUTS
from coattail_devstack.testing import DetectorRun, TradeClock, run_detector_stream, write_event_batches
from coattail_framework import CoattailConfig, TradeEvent
from coattail_framework.alerts import make_alert_id
from coattail_framework.events import TakerSide
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

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
        "max_exit_age_seconds": 150,  # the streams below are sparse: exits up to 105 s old count
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


CLOCK = TradeClock(T0)
at, naive, fill = CLOCK.at, CLOCK.naive, CLOCK.fill


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
    """``batch -> sorted [(symbol, side, order time, horizon)]`` of the batches that wrote rows."""
    return {
        batch: sorted((row.symbol, row.side, row.order_time.strftime("%H:%M:%S"), row.horizon_seconds) for row in rows)
        for batch, rows in run.outputs_by_batch.items()
        if rows
    }


def run_stream(
    spark: SparkSession, detector: WhaleAlphaDetector, batches: list[list[TradeEvent]], tmp_path: Path
) -> DetectorRun:
    """``run_detector_stream``, checking that every row has the declared columns in order."""
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
        [fill(50, 7, 60_150, 0.5), fill(65, 8, 59_900, 0.5, "sell")],
        [fill(200, 9, 60_200, 0.5)],
        [fill(305, 10, 59_800, 0.5, "sell"), fill(320, 11, 59_850, 0.5)],
    ]
    run = run_stream(spark, detector, batches, tmp_path)

    # Watermarks of batches 1..4 (newest trade before the batch - 2 s): 10, 63, 198, 318 s.
    assert batches_of(run) == {
        1: [("BTCUSDT", "buy", "00:00:00", 0)],  # entry at 5 s <= 10 (the sell's at 15 s is not yet due)
        2: [("BTCUSDT", "buy", "00:00:00", 60), ("BTCUSDT", "sell", "00:00:10", 0)],  # 60 and 15 s <= 63
        3: [("BTCUSDT", "sell", "00:00:10", 60)],  # 70 s <= 198: neither waits for its 300 s markout
        4: [("BTCUSDT", "buy", "00:00:00", 300), ("BTCUSDT", "sell", "00:00:10", 300)],  # the no-data batch
    }
    assert rows_of(run.outputs, "binance", "BTCUSDT") == [
        entry_row(BUY, BUY_ENTRY, 2),
        entry_row(SELL, SELL_ENTRY, 1),  # a batch's rows come in event-time order: 15 s, then 60 s
        markout_row(BUY, 60, (BUY_ENTRY, 2), (60_150.0, 50), BUY_60, single(BUY_60)),
        markout_row(SELL, 60, (SELL_ENTRY, 1), (59_900.0, 65), SELL_60, single(SELL_60)),
        markout_row(BUY, 300, (BUY_ENTRY, 2), (60_200.0, 200), BUY_300, single(BUY_300)),
        markout_row(SELL, 300, (SELL_ENTRY, 1), (59_800.0, 305), SELL_300, single(SELL_300)),
    ]
    assert min(SELL_60, SELL_300) > 0  # the price fell after the sell: positive, the whale's way


# 2. BTCUSDT goes silent after the order; ETHUSDT keeps moving the watermark.
SILENT = order("buy", 0, ("1", "1"), 180_000.0, 3.0, 1, 60_000.0)
SILENT_RETURN = (60_100.0 - 60_040.0) / 60_040.0 * 1e4  # entry 60,040 (3 s), exit 60,100 (20 s)


def test_markouts_of_a_silent_venue_resolve_on_event_time_and_a_stale_exit_gives_no_return(
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
        # 300 s: the last trade (20 s) is 280 s old, past max_exit_age_seconds (150): no return, no cohort.
        markout_row(SILENT, 300, (60_040.0, 1), (60_100.0, 20), None, NO_COHORT),
    ]


# 3. The same trades on two keys: BTCUSDT in time order, ETHUSDT shuffled and with its order split.
def same_trades(symbol: str) -> list[TradeEvent]:
    """One key's trades in time order (same ids and prices on every key)."""
    return [
        fill(0, 10, 60_000, 1, symbol=symbol),  # ids 10-12: one taker buy of 60,000 + 60,010 + 60,020 = $180,030
        fill(0, 11, 60_010, 1, symbol=symbol),
        fill(0, 12, 60_020, 1, symbol=symbol),
        fill(1, 13, 60_030, 0.5, "sell", symbol=symbol),  # entry: (30,015 + 30,025) / (0.5 + 0.5) = 60,040
        fill(4, 14, 60_050, 0.5, symbol=symbol),
        fill(30, 15, 60_100, 0.25, symbol=symbol),  # 60 s exit
        fill(200, 16, 60_070, 0.25, "sell", symbol=symbol),  # 300 s exit
        fill(310, 17, 60_090, 0.25, symbol=symbol),  # moves the watermark past 300 s
    ]


def test_rows_do_not_depend_on_fill_order_or_on_how_an_order_is_cut_into_batches(
    spark: SparkSession, detector: WhaleAlphaDetector, tmp_path: Path
) -> None:
    ordered, scrambled = same_trades("BTCUSDT"), same_trades("ETHUSDT")
    batches = [
        # Newest trade 1 s: batch 1's watermark is -1 s, so ids 11 and 12 (0 s, 1 s behind) are not late.
        [*ordered[0:4], scrambled[3], scrambled[0]],
        [*ordered[4:7], *(scrambled[i] for i in (6, 2, 5, 1, 4))],
        [ordered[7], scrambled[7]],
    ]
    run = run_stream(spark, detector, batches, tmp_path)

    whale = order("buy", 0, ("10", "12"), 180_030.0, 3.0, 3, 60_010.0)
    return_60 = (60_100.0 - 60_040.0) / 60_040.0 * 1e4  # +9.99 bps
    return_300 = (60_070.0 - 60_040.0) / 60_040.0 * 1e4  # +5.00 bps
    assert rows_of(run.outputs, "binance", "BTCUSDT") == [
        entry_row(whale, 60_040.0, 2),
        markout_row(whale, 60, (60_040.0, 2), (60_100.0, 30), return_60, single(return_60)),
        markout_row(whale, 300, (60_040.0, 2), (60_070.0, 200), return_300, single(return_300)),
    ]
    as_ordered = [{**row, "symbol": "BTCUSDT"} for row in rows_of(run.outputs, "binance", "ETHUSDT")]
    assert as_ordered == rows_of(run.outputs, "binance", "BTCUSDT")
    assert batches_of(run) == {  # watermarks 1: -1 s, 2: 198 s, 3 (no data): 308 s; the same for both keys
        2: sorted((symbol, "buy", "00:00:00", h) for h in (0, 60) for symbol in ("BTCUSDT", "ETHUSDT")),
        3: [("BTCUSDT", "buy", "00:00:00", 300), ("ETHUSDT", "buy", "00:00:00", 300)],
    }


def test_static_input_gives_the_rows_the_stream_ends_with(
    spark: SparkSession, detector: WhaleAlphaDetector, tmp_path: Path
) -> None:
    """Reprocessing stored trades: the watermark is the key's newest trade (310 s) minus 2 s, as the stream's last."""
    folder = write_event_batches([same_trades("BTCUSDT")], tmp_path / "stored")
    static = detector.process(spark.read.schema(UNIFIED_TRADE_EVENT).parquet(str(folder)))
    assert not static.isStreaming
    whale = order("buy", 0, ("10", "12"), 180_030.0, 3.0, 3, 60_010.0)
    return_60 = (60_100.0 - 60_040.0) / 60_040.0 * 1e4
    return_300 = (60_070.0 - 60_040.0) / 60_040.0 * 1e4
    assert rows_of(static.collect(), "binance", "BTCUSDT") == [
        entry_row(whale, 60_040.0, 2),
        markout_row(whale, 60, (60_040.0, 2), (60_100.0, 30), return_60, single(return_60)),
        markout_row(whale, 300, (60_040.0, 2), (60_070.0, 200), return_300, single(return_300)),
    ]


# 4. An order without a trade in its entry window; a stream of one trade and empty batches.
NO_ENTRY = order("buy", 0, ("1", "1"), 180_000.0, 3.0, 1, 60_000.0)
LATER = order("buy", 100, ("4", "4"), 180_000.0, 3.0, 1, 60_000.0)
LATER_60 = (60_300.0 - 60_050.0) / 60_050.0 * 1e4  # entry 60,050 (102 s), exit 60,300 (150 s): +41.63 bps


@pytest.fixture(scope="module")
def no_entry_run(
    spark: SparkSession, detector: WhaleAlphaDetector, tmp_path_factory: pytest.TempPathFactory
) -> DetectorRun:
    trades = [
        fill(0, 1, 60_000, 3),  # NO_ENTRY: nothing trades in (0, 5]
        fill(10, 2, 60_100, 0.5, "sell"),  # its 60 s exit
        fill(70, 3, 60_200, 0.5),
        fill(100, 4, 60_000, 3),  # LATER, same cohort
        fill(102, 5, 60_050, 0.5, "sell"),  # its entry
        fill(150, 6, 60_300, 0.5),  # its 60 s exit; NO_ENTRY's 300 s exit
        fill(310, 7, 60_400, 0.5),  # watermark 308 s
    ]
    return run_stream(spark, detector, [trades], tmp_path_factory.mktemp("no-entry"))


def test_an_order_without_entry_trade_has_null_returns_and_stays_out_of_the_cohort(no_entry_run: DetectorRun) -> None:
    rows = rows_of(no_entry_run.outputs, "binance", "BTCUSDT")
    for row in rows:  # see test_an_order_without_entry_trade_has_a_null_entry_trade_count
        row.pop("entry_trade_count")
    expected = [
        entry_row(NO_ENTRY, None, 0),
        markout_row(NO_ENTRY, 60, (None, 0), (60_100.0, 10), None, NO_COHORT),
        # LATER's signal: the 60 s cohort at 100 s holds no return (NO_ENTRY's 60 s markout has none).
        entry_row(LATER, 60_050.0, 1),
        markout_row(LATER, 60, (60_050.0, 1), (60_300.0, 150), LATER_60, single(LATER_60)),  # n 1, not 2
        markout_row(NO_ENTRY, 300, (None, 0), (60_300.0, 150), None, NO_COHORT),
    ]
    for row in expected:
        row.pop("entry_trade_count")
    assert rows == expected
    # One alert: LATER's 60 s markout. NO_ENTRY's markouts have no return; no cohort reaches 2.
    assert [(alert.alert_type, alert.detected_at) for alert in no_entry_run.alerts] == [("whale_markout", naive(160))]


def test_an_order_without_entry_trade_counts_zero_entry_trades(no_entry_run: DetectorRun) -> None:
    rows = rows_of(no_entry_run.outputs, "binance", "BTCUSDT")
    assert [row["entry_trade_count"] for row in rows if row["first_trade_id"] == "1"] == [0, 0, 0]


def test_a_single_trade_and_empty_batches_give_no_rows(
    spark: SparkSession, detector: WhaleAlphaDetector, tmp_path: Path
) -> None:
    run = run_stream(spark, detector, [[], [fill(0, 1, 60_000, 5)], []], tmp_path)  # a $300,000 whale, alone

    assert sorted(run.outputs_by_batch) == [0, 1, 2]  # every batch ran; the watermark never passed 0 s
    assert (run.outputs, run.alerts) == ([], [])


# 5 and 7. Coinbase: orders are taker order ids; an instrument quoted in BTC is never followed.
COINBASE = order(
    "buy", 0, ("100", "107"), 180_030.0, 3.0, 3, 60_010.0, exchange="coinbase", symbol="BTC-USD",
    taker_order_id="T-1",
)  # fmt: skip
COINBASE_60 = (60_100.0 - 60_040.0) / 60_040.0 * 1e4


@pytest.fixture(scope="module")
def coinbase_run(
    spark: SparkSession, detector: WhaleAlphaDetector, tmp_path_factory: pytest.TempPathFactory
) -> DetectorRun:
    def usd(seconds: float, trade_id: int, price: float, quantity: float, side: TakerSide, taker: str) -> TradeEvent:
        return fill(seconds, trade_id, price, quantity, side, exchange="coinbase", symbol="BTC-USD",
                    taker_order_id=taker)  # fmt: skip

    def btc(seconds: float, trade_id: int, price: float, quantity: float, side: TakerSide, taker: str) -> TradeEvent:
        return fill(seconds, trade_id, price, quantity, side, exchange="coinbase", symbol="ETH-BTC",
                    taker_order_id=taker)  # fmt: skip

    trades = [
        usd(0, 100, 60_000, 1, "buy", "T-1"),  # T-1: ids 100, 103, 107 (gaps), $180,030
        usd(0, 101, 60_000, 1, "buy", "T-2"),  # same time and side, its own $60,000 order
        usd(0, 103, 60_010, 1, "buy", "T-1"),
        usd(0, 107, 60_020, 1, "buy", "T-1"),
        usd(2, 108, 60_030, 0.5, "sell", "T-3"),  # entry: (30,015 + 30,025) / 1 = 60,040
        usd(4, 109, 60_050, 0.5, "buy", "T-4"),
        usd(40, 110, 60_100, 0.25, "buy", "T-5"),  # 60 s exit
        usd(70, 111, 60_110, 0.25, "buy", "T-6"),  # watermark 68 s
        btc(0, 200, 0.05, 4_000_000, "buy", "E-1"),  # 200,000 BTC of ETH: no USD notional
        btc(3, 201, 0.051, 10, "sell", "E-2"),
        btc(40, 202, 0.052, 10, "buy", "E-3"),
        btc(70, 203, 0.053, 10, "buy", "E-4"),
    ]
    return run_stream(spark, detector, [trades], tmp_path_factory.mktemp("coinbase"))


def test_coinbase_orders_are_their_taker_order_ids(coinbase_run: DetectorRun) -> None:
    assert rows_of(coinbase_run.outputs, "coinbase", "BTC-USD") == [
        entry_row(COINBASE, 60_040.0, 2),
        markout_row(COINBASE, 60, (60_040.0, 2), (60_100.0, 40), COINBASE_60, single(COINBASE_60)),
    ]
    (alert,) = [alert for alert in coinbase_run.alerts if alert.symbol == "BTC-USD"]
    assert alert.alert_id == make_alert_id("MOD-008", "coinbase", "BTC-USD", "buy", str(T0_US), "100", "T-1", "60")
    assert json.loads(alert.details)["taker_order_id"] == "T-1"


def test_an_instrument_not_quoted_in_usd_never_gives_rows(coinbase_run: DetectorRun) -> None:
    assert {(row.exchange, row.symbol) for row in coinbase_run.outputs} == {("coinbase", "BTC-USD")}
    assert {alert.symbol for alert in coinbase_run.alerts} == {"BTC-USD"}


# 6. Three buys of one cohort, each followed by a rise: the third is signalled.
RISES = [(60_060.0 - 60_000.0) / 60_000.0 * 1e4, (60_120.0 - 60_000.0) / 60_000.0 * 1e4,
         (60_180.0 - 60_000.0) / 60_000.0 * 1e4]  # fmt: skip
"""The 60 s returns of the orders at 0, 100 and 200 s: +10, +20, +30 bps (entry 60,000 each)."""


@pytest.fixture(scope="module")
def cohort_run(
    spark: SparkSession, detector: WhaleAlphaDetector, tmp_path_factory: pytest.TempPathFactory
) -> DetectorRun:
    trades = []
    for index, start in enumerate((0, 100, 200)):
        trades += [
            fill(start, 3 * index + 1, 60_000, 3),  # buy of $180,000, ids 1, 4, 7
            fill(start + 2, 3 * index + 2, 60_000, 0.5, "sell"),  # entry 60,000
            fill(start + 50, 3 * index + 3, 60_000 + 60 * (index + 1), 0.5),  # 60 s exit: 60,060 / 60,120 / 60,180
        ]
    trades.append(fill(265, 10, 60_180, 0.5))  # watermark 263 s: the three 60 s markouts, no 300 s one
    return run_stream(spark, detector, [trades], tmp_path_factory.mktemp("cohort"))


def markout_alerts(run: DetectorRun) -> list[Row]:
    return sorted((alert for alert in run.alerts if alert.alert_type == "whale_markout"), key=lambda a: a.detected_at)


def test_a_cohort_that_paid_signals_and_every_markout_alerts(cohort_run: DetectorRun) -> None:
    run = cohort_run
    entries = {row.order_time: row for row in run.outputs if row.horizon_seconds == 0}
    first, second, third = (entries[naive(start)] for start in (0, 100, 200))
    assert (first.signal_n, first.signal_mean_bps) == (0, None)
    # At 100 s the cohort holds the first order's 60 s return (resolved at 60 s): n 1, no std.
    assert (second.signal_n, second.signal_mean_bps, second.signal_std_bps) == (1, RISES[0], None)
    assert second.signal_t is None
    # At 200 s it holds [+10, +20]: mean 15, sample std sqrt((5^2 + 5^2) / 1) = sqrt(50),
    # t = 15 / (sqrt(50) / sqrt(2)) = 15 / 5 = 3, both above 0.
    mean = (RISES[0] + RISES[1]) / 2
    std = math.sqrt(((RISES[0] - mean) ** 2 + (RISES[1] - mean) ** 2) / 1)
    assert (third.signal_horizon_seconds, third.signal_n, third.signal_hit_rate) == (60, 2, 1.0)
    assert (third.signal_mean_bps, third.signal_std_bps, third.signal_t) == pytest.approx(
        (mean, std, mean / (std / math.sqrt(2))), rel=1e-12
    )
    assert third.signal_t == pytest.approx(3.0, rel=1e-12)

    (signal,) = [alert for alert in run.alerts if alert.alert_type == "whale_alpha_signal"]
    assert signal.alert_id == make_alert_id("MOD-008", "binance", "BTCUSDT", "buy", str(T0_US + 200_000_000), "7", "")
    assert (signal.module_id, signal.exchange, signal.symbol) == ("MOD-008", "binance", "BTCUSDT")
    assert (signal.severity, signal.detected_at) == ("high", naive(200))  # t 3 > high 2.5; the order's time
    assert signal.message == (
        "BTCUSDT binance: whale BUY $180,000; its cohort (buy 100K-500K) returned +15.00 bps on average "
        "60 s after entry, t=3.00, hit 100% over 2 orders"
    )
    details = json.loads(signal.details)
    # Spark's to_json leaves null values out: taker_order_id (Binance has none).
    assert list(details) == [field.name for field in SIGNAL_TYPE.details if field.name != "taker_order_id"]
    assert SIGNAL_TYPE.details_problems(details) == []
    assert (details["first_trade_id"], details["notional"], details["entry_price"]) == ("7", 180_000.0, 60_000.0)
    assert (details["signal_n"], details["signal_hit_rate"], details["signal_t"]) == (2, 1.0, third.signal_t)
    assert details["order_time"].startswith("2024-08-09T00:03:20")

    markouts = [row for row in run.outputs if row.horizon_seconds > 0]
    assert [(row.order_time, row.horizon_seconds, row.return_bps, row.cohort_n) for row in markouts] == [
        (naive(0), 60, RISES[0], 1),
        (naive(100), 60, RISES[1], 2),
        (naive(200), 60, RISES[2], 3),
    ]
    alerts = markout_alerts(run)
    assert [(alert.alert_id, alert.severity, alert.detected_at) for alert in alerts] == [
        (make_alert_id("MOD-008", "binance", "BTCUSDT", "buy", str(T0_US + start * 1_000_000), trade_id, "", "60"),
         "low", naive(start + 60))
        for start, trade_id in ((0, "1"), (100, "4"), (200, "7"))
    ]  # fmt: skip
    assert alerts[2].message == (
        "BTCUSDT binance: whale BUY $180,000, 60 s markout +30.00 bps; cohort (buy 100K-500K) at 60 s: "
        "mean +20.00 bps, t=3.46, n=3"
    )
    # The third: cohort [+10, +20, +30], mean 20, std 10, t = 20 / (10 / sqrt(3)) = 3.46.
    third_markout = json.loads(alerts[2].details)
    assert list(third_markout) == [field.name for field in MARKOUT_TYPE.details if field.name != "taker_order_id"]
    assert MARKOUT_TYPE.details_problems(third_markout) == []
    assert (third_markout["cohort_n"], third_markout["cohort_hit_rate"]) == (3, 1.0)
    assert (third_markout["cohort_mean_bps"], third_markout["cohort_std_bps"], third_markout["cohort_t"]) == (
        pytest.approx((20.0, 10.0, 2 * math.sqrt(3)), rel=1e-12)
    )


def test_a_markout_message_without_a_t_statistic_says_n_a(cohort_run: DetectorRun) -> None:
    assert markout_alerts(cohort_run)[0].message == (
        "BTCUSDT binance: whale BUY $180,000, 60 s markout +10.00 bps; cohort (buy 100K-500K) at 60 s: "
        "mean +10.00 bps, t=n/a, n=1"
    )
