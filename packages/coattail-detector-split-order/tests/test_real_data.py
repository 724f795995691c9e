"""MOD-005 on the real Binance BTCUSDT recordings (tests/data, 2024-08-08 23:54 UTC onwards).

A synthetic TWAP is hidden in the spot recording: a taker buy of 0.5 BTC every 20 s, 16 clips,
each priced at the last real trade at or before it, with trade ids of their own (9,000,000,000
and up) so that Binance's grouping (one order = a run of consecutive ids at one instant) never
merges a clip with a real fill, even at the same millisecond. Real taker buys of 0.5 BTC within
the size tolerance join its sequence: the public feed cannot tell them from the splitter by
size. Those off the TWAP's cadence are left out of the row (its regular core); one on the
cadence just before or after it cannot be told apart and stays. The same-size real orders are
found from the raw trades without the module's code: orders are runs of consecutive trade ids
with one time and taker side, same-size ones are within 0.5 % of 0.5 BTC.
"""

from __future__ import annotations

import bisect
import csv
import math
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


def test_a_twap_hidden_in_the_spot_recording_is_found_exactly(
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
    # Both between clips (0 -> 11.0 -> 20 s, 280 -> 296.0 -> 300 s): they join the sequence, off its cadence.
    assert [order[0].time_ms - start_ms for order in same_size] == [11_025, 296_010]
    rows = event_rows("binance", [*trades, *twap])
    size = -(-len(rows) // 6)
    run = run_detector_stream(spark, detector, [rows[i : i + size] for i in range(0, len(rows), size)], tmp_path)

    (row,) = run.outputs  # nothing else in the recording is written
    injected_total = math.fsum(t.quote for t in twap)
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC).replace(tzinfo=None)
    assert (row.side, row.sequence_start, row.first_trade_id) == ("buy", start, str(FIRST_INJECTED_ID))
    assert row.sequence_end == start + timedelta(seconds=300)
    assert (row.clip_count, row.off_cadence_clips) == (CLIPS, len(same_size))
    assert (row.clip_base_quantity, row.total_base_quantity) == (CLIP_QUANTITY, CLIPS * CLIP_QUANTITY)
    assert row.total_notional == pytest.approx(injected_total, rel=1e-9)
    assert (row.interval_mean_seconds, row.interval_cv, row.regular) == (20.0, 0.0, True)
    drift = (twap[-1].price - twap[0].price) / twap[0].price * 10_000
    assert row.price_drift_bps == pytest.approx(drift, rel=1e-9)
    (alert,) = run.alerts
    start_us = start_ms * 1000
    assert alert.alert_id == make_alert_id(
        "MOD-005", "binance", "BTCUSDT", "buy", str(start_us), str(FIRST_INJECTED_ID)
    )
    assert alert.severity == "medium"  # $494K: above 250,000, below 1,000,000
    assert alert.message == (
        "BTCUSDT binance: split BUY order, 16 clips of 0.5 over 300 s (every 20.0 s, cv 0.00, regular, "
        "2 off-cadence clips left out), $493,551, drift -32.3 bps"
    )
    print(
        f"injected TWAP: {row.clip_count} clips (+{row.off_cadence_clips} off cadence), "
        f"${row.total_notional:,.2f} (injected ${injected_total:,.2f}), interval {row.interval_mean_seconds:.2f} s, "
        f"cv {row.interval_cv:.4f}, drift {row.price_drift_bps:+.2f} bps"
    )


def test_the_clean_spot_recording_gives_no_sequence_with_the_shipped_defaults(
    spark: SparkSession, detector: SplitOrderDetector
) -> None:
    events = spark.createDataFrame(event_rows("binance", archive_trades(SPOT)), UNIFIED_TRADE_EVENT)
    assert detector.process(events).collect() == []  # static input: the state machine via applyInPandas


def as_fills(trades: list[Trade]) -> list[Fill]:
    return [Fill(t.time_ms * 1000, t.side, None, str(t.trade_id), t.price, t.quantity, t.quote) for t in trades]


PLACEMENTS = range(20, 221, 20)
"""Seconds into the recording of the TWAP's first clip: it ends 5 min later and closes within the recording."""


@pytest.mark.parametrize(
    ("side", "same_size", "inexact"),
    [
        ("buy", 2, {100: (17, 1, 0.0, 16.249, 30_673.59)}),  # a real buy 16.2 s after the last clip: on cadence
        (
            "sell",
            6,
            {
                # A real sell 13-27 s (20 s +/- 35 %) after the last clip or before the first joins the core.
                40: (17, 5, 0.0, 22.206, 30_862.0),
                120: (17, 5, 0.0, 13.853, 30_806.99),
                160: (17, 5, 0.0, 16.474, 30_831.26),
                200: (17, 5, -26.16, 0.0, 30_863.07),
                # Six real sells split six intervals, pulling the median interval to 17.97 s: a real sell
                # 17.7 s after the 15th clip deviates less from it than the 16th clip (20 s) and replaces it.
                180: (16, 6, 0.0, -2.306, 15.19),
            },
        ),
    ],
)
def test_the_twap_is_found_wherever_it_is_placed_with_real_orders_off_its_cadence_left_out(
    detector: SplitOrderDetector, side: str, same_size: int, inexact: dict[int, tuple[int, int, float, float, float]]
) -> None:
    """Per placement: clips, off-cadence clips, start and end offsets (s) and total minus the injected total."""
    trades = archive_trades(SPOT)
    final_watermark_us = (trades[-1].time_ms - 10 * MS) * 1000
    summary = {}
    for after_s in PLACEMENTS:
        twap = [clip._replace(side=side) for clip in injected_twap(trades, after_s)]
        fills = [fill for fill in as_fills([*trades, *twap]) if fill.side == side]
        (row,) = KeyState().advance(fills, final_watermark_us, detector.state_settings)
        assert (row["clip_base_quantity"], row["regular"]) == (CLIP_QUANTITY, True)
        summary[after_s] = (
            row["clip_count"],
            row["off_cadence_clips"],
            (row["sequence_start"] - twap[0].time_ms * 1000) / 1e6,
            (row["sequence_end"] - twap[-1].time_ms * 1000) / 1e6,
            round(row["total_notional"] - math.fsum(t.quote for t in twap), 2),
        )
        print(f"{side} TWAP at +{after_s} s: {summary[after_s]}")
    # Elsewhere exact: the 16 clips, their first and last, the injected total, every same-size real order
    # of the TWAP's span (2 buys, 6 sells) left out.
    assert summary == {after_s: inexact.get(after_s, (CLIPS, same_size, 0.0, 0.0, 0.0)) for after_s in PLACEMENTS}


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
    summary = {side: [(row["clip_base_quantity"], row["clip_count"], row["off_cadence_clips"], row["regular"])
                      for row in rows]
               for side, rows in found.items()}  # fmt: skip
    # Round sizes many takers trade (0.5 and 1 BTC) and one size (0.81) at irregular intervals: their
    # regular cores have 3 or 4 clips, fewer than min_clips (8), so the rows have every clip.
    assert summary == {
        "buy": [(0.5, 13, 0, False), (1.0, 10, 0, False)],
        "sell": [(0.81, 14, 0, False), (1.0, 11, 0, False)],
    }
    for side, rows in found.items():
        for row in rows:
            print(
                f"USD-M {side}: {row['clip_count']} clips of {row['clip_base_quantity']} BTC, "
                f"${row['total_notional']:,.2f}, cv {row['interval_cv']:.2f}"
            )
