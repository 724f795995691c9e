"""MOD-005 as a stream: exact ``split_order_sequences`` rows and alerts, computed by hand.

Settings: clips from $1,000 (default maximum $250,000), the default 0.5 % size tolerance, a 30 s
gap, 4 clips and $100,000 to be written, a 2 s watermark delay, severity medium above
$200,000. Times are seconds after ``T0``.

The watermark of a micro-batch is the newest trade time of the batches before it minus 2 s;
Spark drops a trade at or before the PREVIOUS batch's watermark before the state function, and
runs a final no-data batch when the watermark moved. A sequence is written in the batch whose
watermark first reaches its last clip + 30 s.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from coattail_detector_split_order import SplitOrderDetector
from coattail_detector_split_order.metadata import DETECTOR_INFO
from coattail_detector_split_order.schema import SPLIT_ORDER_SEQUENCES
from coattail_devstack.testing import DetectorRun, TradeClock, run_detector_stream, write_event_batches
from coattail_framework import CoattailConfig, TradeEvent
from coattail_framework.alerts import make_alert_id
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

T0 = datetime(2024, 8, 9, tzinfo=UTC)
T0_US = 1_723_161_600_000_000
SYMBOLS = {
    "BTC/USDT": {"binance": "BTCUSDT"},
    "BTC/USD": {"coinbase": "BTC-USD"},
    "ETH/BTC": {"coinbase": "ETH-BTC"},  # quoted in BTC: never evaluated
}
MODULES = {
    "split-order": {
        "min_clip_usd": 1_000,
        "max_gap_seconds": 30,
        "min_clips": 4,
        "min_total_usd": 100_000,
        "watermark_delay_seconds": 2,
        "thresholds": {"medium": 200_000, "high": 1_000_000},
    }
}
(ALERT_TYPE,) = DETECTOR_INFO.alert_types


@pytest.fixture(scope="module")
def detector() -> SplitOrderDetector:
    detector = SplitOrderDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": MODULES}))
    return detector


CLOCK = TradeClock(T0)
at, naive, fill = CLOCK.at, CLOCK.naive, CLOCK.fill


def run_stream(
    spark: SparkSession, detector: SplitOrderDetector, batches: list[list[TradeEvent]], workdir: Path
) -> DetectorRun:
    """``run_detector_stream``, checking that every row has the declared columns in order."""
    run = run_detector_stream(spark, detector, batches, workdir)
    assert all(list(row.asDict()) == SPLIT_ORDER_SEQUENCES.fieldNames() for row in run.outputs)
    return run


def written_in(run: DetectorRun) -> dict[int, list[tuple[str, str, str]]]:
    """``batch -> [(exchange, symbol, side)]`` of the batches that wrote rows."""
    return {
        batch: sorted((row.exchange, row.symbol, row.side) for row in rows)
        for batch, rows in run.outputs_by_batch.items()
        if rows
    }


# 1. A buy TWAP on Binance: one order's fills in two batches and out of order, quiet batches between.
TWAP_BATCHES = [
    [],
    [fill(0, 1, 60_000, 1.0), fill(1, 2, 60_010, 0.01, "sell")],  # clip 1
    [fill(10, 4, 60_030, 0.75)],  # clip 2 (ids 3 and 4), its second fill first
    [fill(20, 5, 60_060, 1.0), fill(10, 3, 60_030, 0.25), fill(30, 6, 60_120, 1.0)],  # clips 3 and 4
    [],
    [fill(70, 7, 60_100, 0.01, "sell")],  # after a quiet 40 s: moves the watermark to 68 s >= 30 + 30
]
TWAP_ROW = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "side": "buy",
    "sequence_start": naive(0),
    "sequence_end": naive(30),
    "clip_count": 4,
    "off_cadence_clips": 0,
    "clip_base_quantity": 1.0,
    "clip_notional_median": 60_045.0,  # (60,030 + 60,060) / 2
    "total_notional": 240_210.0,  # 60,000 + 60,030 + 60,060 + 60,120
    "total_base_quantity": 4.0,
    "vwap_price": 60_052.5,
    "interval_mean_seconds": 10.0,
    "interval_cv": 0.0,
    "regular": True,
    "price_drift_bps": 20.0,  # (60,120 - 60,000) / 60,000 x 10,000: the buyer paid more and more
    "first_trade_id": "1",
    "orders_dropped": 0,
}


@pytest.fixture(scope="module")
def twap_run(
    spark: SparkSession, detector: SplitOrderDetector, tmp_path_factory: pytest.TempPathFactory
) -> DetectorRun:
    return run_stream(spark, detector, TWAP_BATCHES, tmp_path_factory.mktemp("twap"))


def test_a_twap_is_one_exact_row_whatever_the_order_and_batches_of_its_fills(twap_run: DetectorRun) -> None:
    # Watermarks of batches 0..6: -, -, -1, 8, 28, 28, 68 s; the final no-data batch (6) closes it.
    assert written_in(twap_run) == {6: [("binance", "BTCUSDT", "buy")]}
    assert [row.asDict() for row in twap_run.outputs] == [TWAP_ROW]


def test_its_alert_has_the_designed_id_severity_message_and_details(twap_run: DetectorRun) -> None:
    (alert,) = twap_run.alerts
    assert alert.alert_id == make_alert_id("MOD-005", "binance", "BTCUSDT", "buy", str(T0_US), "1")
    assert (alert.module_id, alert.alert_type, alert.exchange, alert.symbol) == (
        "MOD-005", "split_order", "binance", "BTCUSDT",
    )  # fmt: skip
    assert (alert.severity, alert.detected_at) == ("medium", naive(30))  # 240,210 > 200,000
    assert alert.message == (
        "BTCUSDT binance: split BUY order, 4 clips of 1.0 over 30 s (every 10.0 s, cv 0.00, regular), "
        "$240,210, drift +20.0 bps"
    )
    details = json.loads(alert.details)
    assert list(details) == [field.name for field in ALERT_TYPE.details]
    assert ALERT_TYPE.details_problems(details) == []
    assert (details["clip_count"], details["regular"], details["first_trade_id"]) == (4, True, "1")
    assert details["sequence_start"].startswith("2024-08-09T00:00:00")


def test_static_input_gives_the_same_rows(spark: SparkSession, detector: SplitOrderDetector, tmp_path: Path) -> None:
    folder = write_event_batches(TWAP_BATCHES, tmp_path / "static")
    events = spark.read.schema(UNIFIED_TRADE_EVENT).parquet(str(folder))
    # The watermark of static input is its newest trade (70 s) minus 2 s: as the stream ends.
    assert [row.asDict() for row in detector.process(events).collect()] == [TWAP_ROW]


# 2. Coinbase sells grouped by taker order id; Coinbase goes silent while Binance moves the watermark.
def coinbase(seconds: float, trade_id: int, price: float, quantity: float, taker: str) -> TradeEvent:
    return fill(seconds, trade_id, price, quantity, "sell", exchange="coinbase", symbol="BTC-USD",
                taker_order_id=taker)  # fmt: skip


def eth_btc(seconds: float, trade_id: int) -> TradeEvent:
    return fill(seconds, trade_id, 0.05, 100.0, exchange="coinbase", symbol="ETH-BTC", taker_order_id=f"E-{trade_id}")


@pytest.fixture(scope="module")
def silent_run(
    spark: SparkSession, detector: SplitOrderDetector, tmp_path_factory: pytest.TempPathFactory
) -> DetectorRun:
    batches = [
        [
            coinbase(0, 100, 60_000, 0.5, "T-1"),  # T-1: ids 100 and 103, one clip of 1.0
            coinbase(0, 103, 60_000, 0.5, "T-1"),
            coinbase(15, 104, 59_970, 0.6, "T-2"),  # T-2: 0.6 + 0.4
            coinbase(15, 105, 59_970, 0.3, "T-X"),  # another taker at the same instant: its own order
            coinbase(15, 107, 59_970, 0.4, "T-2"),
            fill(0, 1, 60_000, 0.001),  # Binance: $60 trades, no clips
            *(eth_btc(15 * index, 200 + index) for index in range(4)),  # 100 ETH clips of 5 BTC: not USD
        ],
        [coinbase(30, 110, 59_940, 1.0, "T-3"), coinbase(45, 111, 59_880, 1.0, "T-4"), fill(40, 2, 59_900, 0.001)],
        [fill(60, 3, 59_900, 0.001)],  # Coinbase is silent from here on
        [fill(100, 4, 59_950, 0.001)],
    ]
    return run_stream(spark, detector, batches, tmp_path_factory.mktemp("silent"))


def test_a_silent_venue_closes_its_sequence_on_event_time_and_taker_orders_are_ids(silent_run: DetectorRun) -> None:
    # Watermarks of batches 0..4: -, 13, 43, 58, 98 s (ETH-BTC is filtered out before the watermark).
    # Coinbase's sequence closes at 45 + 30 = 75 s, in the final no-data batch (4), where no key had
    # trades: its event-time timeout fired, as it did in batches 2 and 3 to take its last clips.
    assert written_in(silent_run) == {4: [("coinbase", "BTC-USD", "sell")]}
    (row,) = [row.asDict() for row in silent_run.outputs]
    assert row == {
        "exchange": "coinbase",
        "symbol": "BTC-USD",
        "side": "sell",
        "sequence_start": naive(0),
        "sequence_end": naive(45),
        "clip_count": 4,
        "off_cadence_clips": 0,
        "clip_base_quantity": 1.0,  # the 0.3 of T-X at 15 s is an order of its own, no clip of this sequence
        "clip_notional_median": 59_955.0,  # (59,970 + 59,940) / 2
        "total_notional": 239_790.0,  # 60,000 + 59,970 + 59,940 + 59,880
        "total_base_quantity": 4.0,
        "vwap_price": 59_947.5,
        "interval_mean_seconds": 15.0,
        "interval_cv": 0.0,
        "regular": True,
        "price_drift_bps": 20.0,  # -(59,880 - 60,000) / 60,000 x 10,000: sold lower and lower
        "first_trade_id": "100",
        "orders_dropped": 0,
    }
    (alert,) = silent_run.alerts
    assert alert.alert_id == make_alert_id("MOD-005", "coinbase", "BTC-USD", "sell", str(T0_US), "100")


def test_an_instrument_not_quoted_in_usd_never_gives_rows(silent_run: DetectorRun) -> None:
    assert {row.symbol for row in silent_run.outputs} == {"BTC-USD"}


# 3. Edge cases: nothing but empty batches and a single trade.
def test_a_single_trade_and_empty_batches_give_no_rows(
    spark: SparkSession, detector: SplitOrderDetector, tmp_path: Path
) -> None:
    run = run_stream(spark, detector, [[], [fill(0, 1, 60_000, 4.0)], [], [fill(100, 2, 60_000, 0.001)]], tmp_path)
    assert sorted(run.outputs_by_batch) == [0, 1, 2, 3, 4]  # every batch ran, and the no-data batch at 98 s
    assert (run.outputs, run.alerts) == ([], [])
