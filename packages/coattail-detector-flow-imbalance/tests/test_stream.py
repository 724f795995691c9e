"""MOD-004 as a stream: exact ``flow_imbalance`` rows and alerts, computed by hand.

Settings: 10 s windows, a baseline of 4 windows (warm-up 3), watermark delay 5 s, large
orders from $1,000, alert floors ``|imbalance| >= 0.3`` and ``B + S >= $1,000``, z bounds
medium 2 / high 3. Every fill trades at $1,000; times are seconds after ``T0``.

Batches (one micro-batch each) and their watermarks, the newest trade time of the batches
before minus 5 s. Spark drops a fill at or before the PREVIOUS batch's watermark before the
state function; an order is final once the watermark passes its time, a window once it
passes its end:

- 0: nothing (watermark 0).
- 1 (watermark 0): A's first fills; B's single trade; C's fills out of time order; D (quoted in BTC).
- 2 (watermark 12 - 5 = 7): the second fill of A's 1 s order; A's 14 s order, fills reversed; two
  fills of A's 41 s order; the third fill of C's order T-1.
- 3 (watermark 41 - 5 = 36): the last fill of A's 41 s order; A's 56 s trade. A's windows 0 and 10
  close; B and C have no fill, their event-time timeouts close their windows 0.
- 4 (watermark 56 - 5 = 51): A's sell at 44 s, out of order but after the late watermark (36):
  it counts, in window 40, which closes now; A's sell at 8 s is at or before 36: dropped.

A binance BTCUSDT, net flows per window: +3,000 (0), -1,000 (10), quiet (20, 30), +5,000 (40);
window 40 against [3,000, -1,000, 0, 0]: mean 500, std 1,500, z = 4,500 / 1,500 = 3 -> medium
(3 is not above the high bound 3). Window 50 (the 56 s trade) never closes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql import SparkSession

from coattail_detector_flow_imbalance import FLOW_IMBALANCE, FlowImbalanceDetector
from coattail_devstack.testing import DetectorRun, run_detector_stream, trade
from coattail_framework import CoattailConfig, TradeEvent
from coattail_framework.alerts import make_alert_id
from coattail_framework.events import TakerSide

T0 = datetime(2024, 8, 9, tzinfo=UTC)
T0_MS = 1_723_161_600_000
SYMBOLS = {
    "BTC/USDT": {"binance": "BTCUSDT"},
    "ETH/USDT": {"binance": "ETHUSDT"},
    "BTC/USD": {"coinbase": "BTC-USD"},
    "ETH/BTC": {"coinbase": "ETH-BTC"},  # quoted in BTC: not evaluated
}
SETTINGS = {
    "window_seconds": 10,
    "baseline_windows": 4,
    "min_baseline_windows": 3,
    "watermark_delay_seconds": 5,
    "large_order_usd": 1_000,
    "min_imbalance": 0.3,
    "min_quote_volume": 1_000,
    "thresholds": {"medium": 2, "high": 3},
}
A = ("binance", "BTCUSDT")
B = ("binance", "ETHUSDT")
C = ("coinbase", "BTC-USD")
D = ("coinbase", "ETH-BTC")


def fill(
    key: tuple[str, str], seconds: float, trade_id: int, quote: float, side: TakerSide = "buy", taker: str | None = None
) -> TradeEvent:
    exchange, symbol = key
    return trade(
        T0 + timedelta(seconds=seconds), 1_000, quote / 1_000, side=side, exchange=exchange, symbol=symbol,
        trade_id=trade_id, taker_order_id=taker,
    )  # fmt: skip


BATCHES = [
    [],
    [
        fill(A, 1, 1, 3_000),
        fill(A, 3, 3, 1_000, "sell"),
        fill(A, 12, 4, 500),
        fill(B, 2, 1, 2_000),
        fill(C, 6, 104, 2_000, "sell", "S-1"),
        fill(C, 5, 103, 300, taker="T-1"),  # T-1 has ids 100, 103, 105: with a taker order id, gaps do not split
        fill(C, 5, 101, 200, taker="T-2"),  # same instant and side, another taker order
        fill(C, 5, 100, 1_200, taker="T-1"),
        fill(D, 1, 1, 900_000),
    ],
    [
        fill(A, 1, 2, 1_000),  # with id 1: one buy of 4,000
        fill(A, 14, 6, 500, "sell"),
        fill(A, 14, 5, 1_000, "sell"),  # ids 5-6: one sell of 1,500
        fill(A, 41, 7, 2_000),
        fill(A, 41, 8, 2_000),
        fill(C, 5, 105, 500, taker="T-1"),  # T-1: 1,200 + 300 + 500 = 2,000
    ],
    [fill(A, 41, 9, 2_000), fill(A, 56, 11, 100)],  # ids 7-9: one buy of 6,000
    [fill(A, 44, 10, 1_000, "sell"), fill(A, 8, 13, 5_000, "sell")],
]


def naive(seconds: float) -> datetime:
    """What Spark's collect returns for a timestamp (UTC session, TZ=UTC)."""
    return (T0 + timedelta(seconds=seconds)).replace(tzinfo=None)


def row(
    key: tuple[str, str],
    start: int,
    counts: tuple[int, int],
    flows: tuple[float, float],
    large: tuple[float, float],
    baseline: tuple[int, float | None, float | None, float | None],
) -> dict[str, Any]:
    """A ``flow_imbalance`` row: imbalances and net flow derived from the flows as the module does."""
    (buy, sell), (large_buy, large_sell) = flows, large
    size, mean, std, z = baseline
    large_total = large_buy + large_sell
    return {
        "exchange": key[0],
        "symbol": key[1],
        "window_start": naive(start),
        "window_end": naive(start + 10),
        "buy_order_count": counts[0],
        "sell_order_count": counts[1],
        "buy_quote_volume": buy,
        "sell_quote_volume": sell,
        "large_buy_quote_volume": large_buy,
        "large_sell_quote_volume": large_sell,
        "net_quote_flow": buy - sell,
        "imbalance": (buy - sell) / (buy + sell),
        "large_order_imbalance": (large_buy - large_sell) / large_total if large_total else None,
        "baseline_size": size,
        "baseline_mean": mean,
        "baseline_std": std,
        "net_flow_z": z,
        "early_final_orders": 0,
    }


@pytest.fixture(scope="module")
def run(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> DetectorRun:
    detector = FlowImbalanceDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": {"flow-imbalance": SETTINGS}}))
    return run_detector_stream(spark, detector, BATCHES, tmp_path_factory.mktemp("flow-stream"))


def rows_by_batch(run: DetectorRun) -> dict[int, list[dict[str, Any]]]:
    return {
        batch: sorted((r.asDict() for r in rows), key=lambda r: (r["exchange"], r["symbol"], r["window_start"]))
        for batch, rows in run.outputs_by_batch.items()
        if rows
    }


def test_windows_close_as_the_watermark_passes_them_with_hand_computed_rows(run: DetectorRun) -> None:
    assert all(list(r.asDict()) == FLOW_IMBALANCE.fieldNames() for r in run.outputs)
    assert sorted(run.outputs_by_batch) == [0, 1, 2, 3, 4]  # the empty batch ran; batch 4 left the watermark at 51
    assert rows_by_batch(run) == {
        3: [
            # A, window 0: one buy of 4,000 (ids 1-2, two batches), one sell of 1,000; both large.
            row(A, 0, (1, 1), (4_000.0, 1_000.0), (4_000.0, 1_000.0), (0, None, None, None)),
            # A, window 10: a buy of 500 (not large), a sell of 1,500; baseline [3,000], flat: no z.
            row(A, 10, (1, 1), (500.0, 1_500.0), (0.0, 1_500.0), (1, 3_000.0, 0.0, None)),
            # B: a single trade, its window closed by the timeout while A moved the watermark.
            row(B, 0, (1, 0), (2_000.0, 0.0), (2_000.0, 0.0), (0, None, None, None)),
            # C: T-1 2,000 (three fills, two batches) and T-2 200 against S-1 2,000: I = 200 / 4,200.
            row(C, 0, (2, 1), (2_200.0, 2_000.0), (2_000.0, 2_000.0), (0, None, None, None)),
        ],
        4: [
            # A, window 40: ids 7-9 one buy of 6,000; the out-of-order sell of 1,000 counts, the late 5,000 does not.
            row(A, 40, (1, 1), (6_000.0, 1_000.0), (6_000.0, 1_000.0), (4, 500.0, 1_500.0, 3.0)),
        ],
    }


def test_only_the_unusual_window_alerts(run: DetectorRun) -> None:
    (alert,) = run.alerts
    assert (alert.severity, alert.detected_at, alert.exchange, alert.symbol) == ("medium", naive(50), *A)
    assert alert.alert_id == make_alert_id("MOD-004", "binance", "BTCUSDT", str(T0_MS + 40_000))
    assert alert.message == (
        "BTCUSDT binance: net taker BUY flow +$5.0K in 10 s (imbalance +0.71 of $7.0K, large orders +0.71), "
        "z=+3.0 against +$500 ± $1.5K over 40 s"
    )
    details = json.loads(alert.details)
    assert (details["direction"], details["net_flow_z"], details["baseline_size"]) == ("buy", 3.0, 4)
    assert details["window_start"].startswith("2024-08-09T00:00:40")
