"""MOD-005 on the real Binance BTCUSDT recordings (tests/data, 2024-08-08 23:54 UTC onwards).

A synthetic TWAP is hidden in the spot recording: a taker buy of 0.5 BTC every 20 s, 16 clips,
each priced at the last real trade at or before it, with trade ids of their own (9,000,000,000
and up) so that Binance's grouping (one order = a run of consecutive ids at one instant) never
merges a clip with a real fill, even at the same millisecond. Real taker buys of 0.5 BTC within
the size tolerance join it: the public feed cannot tell them from the splitter. The expected
sequence is computed from the raw trades without the module's code: orders are runs of
consecutive trade ids with one time and taker side, same-size real orders are those within
0.5 % of 0.5 BTC.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pyspark.sql import SparkSession

from coattail_detector_split_order import SplitOrderDetector
from coattail_detector_split_order.state import KeyState
from coattail_detector_whale.fills import Fill
from coattail_devstack.testing import run_detector_stream
from coattail_framework.alerts import make_alert_id
from coattail_framework.config import CoattailConfig
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

ARCHIVE = Path(__file__).resolve().parents[3] / "tests/data/binance/archive"
SPOT = ARCHIVE / "BTCUSDT-trades-20240808T2354Z-20240809T0005Z.csv"
USDM = ARCHIVE / "BTCUSDT-UM-trades-20240808T2354Z-20240809T0000Z.csv"
MS = 1_000
SYMBOLS = {"BTC/USDT": {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT"}}
CLIP_QUANTITY, CLIPS, INTERVAL_MS, FIRST_INJECTED_ID = 0.5, 16, 20_000, 9_000_000_000


class Trade(NamedTuple):
    trade_id: int
    time_ms: int
    price: float
    quantity: float
    quote: float
    side: str


def archive_trades(path: Path) -> list[Trade]:
    """Binance archive rows (``id,price,qty,quote_qty,time,is_buyer_maker[,...]``, with or without header)."""
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row[0] != "id"]
    return [
        Trade(int(i), int(t), float(p), float(q), float(qq), "sell" if maker.lower() == "true" else "buy")
        for i, p, q, qq, t, maker, *_ in rows
    ]


def injected_twap(trades: list[Trade], after_s: int = 120) -> list[Trade]:
    """16 taker buys of 0.5 BTC every 20 s from the first real taker buy ``after_s`` into the recording."""
    start = next(t.time_ms for t in trades if t.side == "buy" and t.time_ms >= trades[0].time_ms + after_s * MS)
    times = [t.time_ms for t in trades]
    clips = []
    for index in range(CLIPS):
        time_ms = start + index * INTERVAL_MS
        price = trades[bisect.bisect_right(times, time_ms) - 1].price
        clips.append(Trade(FIRST_INJECTED_ID + index, time_ms, price, CLIP_QUANTITY, price * CLIP_QUANTITY, "buy"))
    return clips


def raw_orders(trades: list[Trade]) -> list[list[Trade]]:
    """Binance taker orders from the raw trades: runs of consecutive ids sharing time and side."""
    orders: list[list[Trade]] = []
    for trade in sorted(trades, key=lambda t: t.trade_id):
        last = orders[-1][-1] if orders else None
        if last is not None and (last.time_ms, last.side, last.trade_id + 1) == (
            trade.time_ms,
            trade.side,
            trade.trade_id,
        ):
            orders[-1].append(trade)
        else:
            orders.append([trade])
    return orders


def event_rows(exchange: str, trades: list[Trade]) -> list[dict[str, Any]]:
    rows = []
    for trade in sorted(trades, key=lambda t: (t.time_ms, t.trade_id)):
        when = datetime.fromtimestamp(trade.time_ms / 1000, tz=UTC)
        rows.append(
            {
                "event_id": f"{exchange}:BTCUSDT:{trade.trade_id}",
                "exchange": exchange,
                "symbol": "BTCUSDT",
                "price": trade.price,
                "quantity": trade.quantity,
                "quote_volume": trade.quote,
                "side": trade.side,
                "timestamp": when,
                "ingestion_timestamp": when + timedelta(milliseconds=100),
                "trade_id": str(trade.trade_id),
                "taker_order_id": None,
            }
        )
    return rows


@pytest.fixture(scope="module")
def detector() -> SplitOrderDetector:
    detector = SplitOrderDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS}))  # the shipped defaults
    return detector


def test_a_twap_hidden_in_the_spot_recording_is_found(
    spark: SparkSession, detector: SplitOrderDetector, tmp_path: Path
) -> None:
    trades = archive_trades(SPOT)
    twap = injected_twap(trades)
    start_ms, end_ms = twap[0].time_ms, twap[-1].time_ms
    # The first clip shares its millisecond with a real taker buy: only the id run keeps them apart.
    assert any(t.time_ms == start_ms and t.side == "buy" for t in trades)
    # Real taker buy orders of the clip size (within 0.5 %) from 2 minutes before to 2 minutes after.
    tolerance = detector.settings.size_tolerance * CLIP_QUANTITY
    same_size = [
        order
        for order in raw_orders(trades)
        if order[0].side == "buy"
        and start_ms - 120 * MS <= order[0].time_ms <= end_ms + 120 * MS
        and abs(math.fsum(t.quantity for t in order) - CLIP_QUANTITY) <= tolerance
    ]
    assert [order[0].time_ms - start_ms for order in same_size] == [11_025, 296_010]  # both inside the TWAP
    rows = event_rows("binance", [*trades, *twap])
    size = -(-len(rows) // 6)
    run = run_detector_stream(spark, detector, [rows[i : i + size] for i in range(0, len(rows), size)], tmp_path)

    (row,) = run.outputs  # nothing else in the recording is written
    clip_times = sorted([t.time_ms for t in twap] + [order[0].time_ms for order in same_size])
    intervals = [later - earlier for earlier, later in itertools.pairwise(clip_times)]
    injected_total = math.fsum(t.quote for t in twap)
    total = math.fsum([injected_total, *(t.quote for order in same_size for t in order)])
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC).replace(tzinfo=None)
    assert (row.side, row.sequence_start, row.first_trade_id) == ("buy", start, str(FIRST_INJECTED_ID))
    assert row.sequence_end == start + timedelta(seconds=300)
    assert row.clip_count == CLIPS + 2
    assert row.clip_base_quantity == CLIP_QUANTITY
    assert row.total_notional == pytest.approx(total, rel=1e-12)
    assert abs(row.total_notional / injected_total - 1) < 0.15  # the two real orders add 12.5 %
    assert row.interval_mean_seconds == pytest.approx(300 / 17, rel=1e-12)
    assert row.interval_cv == pytest.approx(statistics.pstdev(intervals) / statistics.mean(intervals), rel=1e-9)
    assert row.regular is True  # CV 0.27: the two real orders break the rhythm, not enough to hide it
    drift = (twap[-1].price - twap[0].price) / twap[0].price * 10_000
    assert row.price_drift_bps == pytest.approx(drift, rel=1e-9)
    (alert,) = run.alerts
    start_us = start_ms * 1000
    assert alert.alert_id == make_alert_id(
        "MOD-005", "binance", "BTCUSDT", "buy", str(start_us), str(FIRST_INJECTED_ID)
    )
    assert alert.severity == "medium"  # $555K: above 250,000, below 1,000,000
    assert alert.message == (
        "BTCUSDT binance: split BUY order, 18 clips of 0.5 over 300 s (every 17.6 s, cv 0.27, regular), "
        "$555,148, drift -32.3 bps"
    )
    print(
        f"injected TWAP: {row.clip_count} clips, ${row.total_notional:,.2f} (injected ${injected_total:,.2f}), "
        f"interval {row.interval_mean_seconds:.2f} s, cv {row.interval_cv:.4f}, drift {row.price_drift_bps:+.2f} bps"
    )


def test_the_clean_spot_recording_gives_no_sequence_with_the_shipped_defaults(
    spark: SparkSession, detector: SplitOrderDetector
) -> None:
    events = spark.createDataFrame(event_rows("binance", archive_trades(SPOT)), UNIFIED_TRADE_EVENT)
    assert detector.process(events).collect() == []  # static input: the state machine via applyInPandas


def as_fills(trades: list[Trade]) -> list[Fill]:
    return [Fill(t.time_ms * 1000, t.side, None, str(t.trade_id), t.price, t.quantity, t.quote) for t in trades]


def test_the_twap_is_found_wherever_it_is_placed_but_same_size_orders_can_hide_its_rhythm(
    detector: SplitOrderDetector,
) -> None:
    trades = archive_trades(SPOT)
    final_watermark_us = (trades[-1].time_ms - 10 * MS) * 1000
    regular = []
    for after_s in range(20, 221, 20):  # the TWAP ends 5 min later, closes within the recording
        twap = injected_twap(trades, after_s)
        buys = [fill for fill in as_fills([*trades, *twap]) if fill.side == "buy"]
        (row,) = KeyState().advance(buys, final_watermark_us, detector.state_settings)
        start_us, end_us = twap[0].time_ms * 1000, twap[-1].time_ms * 1000
        # The same two real 0.5 BTC buys join wherever the TWAP is; one before or after it moves an end.
        assert (row["clip_count"], row["clip_base_quantity"]) == (CLIPS + 2, CLIP_QUANTITY)
        assert start_us - 120_000_000 <= row["sequence_start"] <= start_us
        assert end_us <= row["sequence_end"] <= end_us + 120_000_000
        assert row["total_notional"] / math.fsum(t.quote for t in twap) == pytest.approx(1.125, abs=0.001)
        regular.append(row["regular"])
    # Regular only where the two real orders fall between clips (CV 0.18-0.27), not before or after.
    assert regular == [False, False, False, True, True, True, True, True, False, False, False]


def usdm_fills() -> list[Fill]:
    return [
        Fill(t.time_ms * 1000, t.side, None, str(t.trade_id), t.price, t.quantity, t.quote)
        for t in archive_trades(USDM)
    ]


def test_the_usdm_recording_closes_no_sequence_and_all_it_holds_are_irregular(detector: SplitOrderDetector) -> None:
    fills = usdm_fills()
    end_us = max(fill.event_us for fill in fills)
    settings = detector.state_settings
    found: dict[str, list[dict[str, Any]]] = {}
    for side in ("buy", "sell"):
        state = KeyState()
        written = state.advance([fill for fill in fills if fill.side == side], end_us - 10_000_000, settings)
        assert written == []  # 5.7 minutes: every sequence of the crowd is still open at the final watermark
        found[side] = state.advance([], end_us + 3_600_000_000, settings)  # if the stream stopped here
    summary = {side: [(row["clip_base_quantity"], row["clip_count"], row["regular"]) for row in rows]
               for side, rows in found.items()}  # fmt: skip
    # Round sizes many takers trade (0.5 and 1 BTC) and one size (0.81) at irregular intervals.
    assert summary == {"buy": [(0.5, 13, False), (1.0, 10, False)], "sell": [(0.81, 14, False), (1.0, 11, False)]}
    for side, rows in found.items():
        for row in rows:
            print(
                f"USD-M {side}: {row['clip_count']} clips of {row['clip_base_quantity']} BTC, "
                f"${row['total_notional']:,.2f}, cv {row['interval_cv']:.2f}"
            )
