"""MOD-001 as a stream: one scenario, hand-computed expected rows and alerts.

Configuration: 60 s windows, baseline of 8 windows, warm-up 4 windows, watermark 10 s,
floor $1,000, z bounds medium 2.5 / high 3.5. Six keys, each showing one behaviour, run
through one streaming query of three micro-batches (plus the no-data batch Spark runs
when the watermark moved):

- A binance BTCUSDT: quote volume per minute 2,4,4,9,4,5,7,5,12 ($K): a taker buy of
  (total - 1)K and a taker sell of 1K (3K in minute 8), all at price 1,000. Minute 3 is
  split over batches 0 and 1. Minute 8 vs baseline [2,4,4,9,4,5,7,5]: mean 5, population
  std 2, z = 3.5 -> medium (3.5 is not above the high bound). Minute 3 has z = 6.0 with
  3 windows of baseline: warm-up, no alert. Batch 2 also holds two late trades.
- G binance-usdm BTCUSDT (same symbol, other venue): 1,3,1,3 then 5 ($K): mean 2, std 1,
  z = 3 -> medium.
- B binance ETHUSDT: 6, 6, quiet, quiet, 15 ($K): baseline [6,6,0,0], mean 3, std 3,
  z = 4 -> high. Without the zeros the baseline would be flat and z null.
- D binance SOLUSDT: 6,6,6,6 then 60 ($K): flat baseline, z null, no alert.
- E coinbase ETH-USD: 6, quiet, 60 ($K): z = 19 but a baseline of 2 windows: no alert.
- F coinbase BTC-USD: $60, $60, quiet, quiet, $150: z = 4 but below the $1,000 floor.
- L binance XRPUSDT: $100 in minutes 0 and 3, plus three late trades in batch 2.

Late trades: Spark drops a trade before the stateful operator when it is at or before the
watermark of the PREVIOUS micro-batch (its late-events watermark; SPARK-40925), so a trade
whose window was already emitted never reaches the state. A trade newer than that but
behind the current watermark still counts if its window is open.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import Row, SparkSession

from coattail_detector_volume_anomaly import VOLUME_AGGREGATES, VolumeAnomalyDetector
from coattail_devstack.testing import DetectorRun, run_detector_stream, trade
from coattail_framework import CoattailConfig, TradeEvent
from coattail_framework.alerts import make_alert_id
from coattail_framework.events import TakerSide

T0 = datetime(2024, 8, 9, tzinfo=UTC)
T0_MS = 1_723_161_600_000
SETTINGS = {
    "window_seconds": 60,
    "baseline_windows": 8,
    "min_baseline_windows": 4,
    "watermark_delay_seconds": 10,
    "min_quote_volume": 1000,
    "thresholds": {"medium": 2.5, "high": 3.5},
}

A = ("binance", "BTCUSDT")
G = ("binance-usdm", "BTCUSDT")
B = ("binance", "ETHUSDT")
D = ("binance", "SOLUSDT")
E = ("coinbase", "ETH-USD")
F = ("coinbase", "BTC-USD")
L = ("binance", "XRPUSDT")
A_BUY_K = [1, 3, 3, 8, 3, 4, 6, 4, 9]
A_SELL_K = [1, 1, 1, 1, 1, 1, 1, 1, 3]


def at(minute: int, second: float = 0) -> datetime:
    return T0 + timedelta(minutes=minute, seconds=second)


def naive(minute: int) -> datetime:
    """What Spark's collect returns for a window bound (UTC session, TZ=UTC)."""
    return at(minute).replace(tzinfo=None)


def fill(
    key: tuple[str, str], minute: int, second: float, price: float, quantity: float, side: TakerSide
) -> TradeEvent:
    exchange, symbol = key
    return trade(at(minute, second), price, quantity, side=side, exchange=exchange, symbol=symbol)


def broken(**nulls: None) -> Mapping[str, Any]:
    """A $50K taker buy of A in minute 1 with some fields null."""
    row = fill(A, 1, 45, 1000, 50, "buy").model_dump()
    row.update(price=1000.0, quantity=50.0, quote_volume=50_000.0, event_id=f"broken-{'-'.join(nulls)}")
    return {**row, **nulls}


BATCHES: list[list[TradeEvent | Mapping[str, Any]]] = [
    [
        *(fill(A, m, 10, 1000, A_BUY_K[m], "buy") for m in range(3)),
        *(fill(A, m, 30, 1000, A_SELL_K[m], "sell") for m in range(3)),
        fill(A, 3, 5, 1000, A_BUY_K[3], "buy"),
        fill(B, 0, 15, 2000, 3, "buy"),
        fill(B, 1, 15, 2000, 3, "buy"),
        *(fill(G, m, 15, 1000, k, "buy") for m, k in enumerate([1, 3, 1])),
        *(fill(D, m, 25, 100, 60, "sell") for m in range(3)),
        fill(E, 0, 30, 3000, 2, "buy"),
        fill(E, 2, 30, 3000, 20, "buy"),
        fill(F, 0, 40, 30, 2, "buy"),
        fill(F, 1, 40, 30, 2, "buy"),
        fill(L, 0, 45, 1000, 0.1, "buy"),
        broken(side=None),
        broken(quote_volume=None),
        broken(quantity=None),
        broken(exchange=None),
        broken(timestamp=None),
    ],
    [
        fill(A, 3, 40, 1000, A_SELL_K[3], "sell"),
        *(fill(A, m, 10, 1000, A_BUY_K[m], "buy") for m in (4, 5, 6)),
        *(fill(A, m, 30, 1000, A_SELL_K[m], "sell") for m in (4, 5, 6)),
        fill(B, 4, 30, 2000, 7.5, "buy"),
        fill(G, 3, 15, 1000, 3, "buy"),
        fill(G, 4, 15, 2000, 1, "buy"),
        fill(G, 4, 25, 3000, 1, "sell"),
        fill(D, 3, 25, 100, 60, "sell"),
        fill(D, 4, 25, 100, 600, "sell"),
        fill(F, 4, 40, 30, 5, "buy"),
        fill(L, 3, 45, 1000, 0.1, "buy"),
    ],
    [
        # Spark drops trades at or before the previous batch's watermark (00:02:55) before the state:
        fill(L, 0, 50, 1000, 5, "buy"),  # window 00:00 was emitted in batch 1: dropped
        fill(L, 2, 50, 1000, 5, "buy"),  # before 00:02:55: dropped
        fill(L, 3, 10, 1000, 0.2, "buy"),  # behind this batch's watermark (00:06:20), window still open: counted
        *(fill(A, m, 10, 1000, A_BUY_K[m], "buy") for m in (7, 8)),
        *(fill(A, m, 30, 1000, A_SELL_K[m], "sell") for m in (7, 8)),
        fill(A, 9, 10, 1000, 1, "buy"),  # moves the watermark to 00:09:00: minute 8 closes
    ],
]


@pytest.fixture(scope="module")
def detector() -> VolumeAnomalyDetector:
    detector = VolumeAnomalyDetector()
    detector.configure(CoattailConfig.model_validate({"modules": {"volume-anomaly": SETTINGS}}))
    return detector


@pytest.fixture(scope="module")
def run(spark: SparkSession, detector: VolumeAnomalyDetector, tmp_path_factory: pytest.TempPathFactory) -> DetectorRun:
    workdir: Path = tmp_path_factory.mktemp("volume-stream")
    return run_detector_stream(spark, detector, BATCHES, workdir)


def rows_of(run: DetectorRun, key: tuple[str, str]) -> dict[int, Row]:
    """The key's output rows by window minute (after T0); fails on a window emitted twice."""
    rows = [row for row in run.outputs if (row.exchange, row.symbol) == key]
    by_minute = {int((row.window_start - naive(0)).total_seconds() // 60): row for row in rows}
    assert len(by_minute) == len(rows), f"a window of {key} was emitted twice"
    return by_minute


def stats(row: Row, prefix: str = "") -> tuple[Any, ...]:
    return (row[f"{prefix}baseline_mean"], row[f"{prefix}baseline_std"], row[f"{prefix}z_score"])


def test_output_has_the_declared_schema(run: DetectorRun, detector: VolumeAnomalyDetector) -> None:
    assert run.outputs
    assert all(list(row.asDict()) == VOLUME_AGGREGATES.fieldNames() for row in run.outputs)
    assert {(row.exchange, row.symbol) for row in run.outputs} == {A, G, B, D, E, F, L}


def test_happy_path_rows(run: DetectorRun) -> None:
    a = rows_of(run, A)
    assert sorted(a) == list(range(9))
    assert [a[m].quote_volume for m in range(9)] == [
        2000.0,
        4000.0,
        4000.0,
        9000.0,
        4000.0,
        5000.0,
        7000.0,
        5000.0,
        12000.0,
    ]
    assert [a[m].baseline_size for m in range(9)] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert a[0] == Row(
        exchange="binance", symbol="BTCUSDT", window_start=naive(0), window_end=naive(1), trade_count=2,
        base_volume=2.0, quote_volume=2000.0, buy_quote_volume=1000.0, sell_quote_volume=1000.0, vwap=1000.0,
        baseline_size=0, baseline_mean=None, baseline_std=None, z_score=None,
        buy_baseline_mean=None, buy_baseline_std=None, buy_z_score=None,
        sell_baseline_mean=None, sell_baseline_std=None, sell_z_score=None,
    )  # fmt: skip
    assert stats(a[1]) == (2000.0, 0.0, None)  # one value: std 0, z undefined
    assert stats(a[2]) == (3000.0, 1000.0, 1.0)  # [2K, 4K]
    # [2K, 4K, 4K]: mean 10K/3, squared deviations (16 + 4 + 4)/9 -> std 1K * sqrt(8/9); z = (9 - 10/3)/sqrt(8/9)
    assert stats(a[3]) == pytest.approx((10_000 / 3, 1000 * math.sqrt(8 / 9), 17 / math.sqrt(8)), rel=1e-12)
    # [2,4,4,9,4,5,7] ($K): mean 5, squared deviations 9+1+1+16+1+0+4 = 32 -> std sqrt(32/7); 5K is the mean: z 0
    assert stats(a[7]) == pytest.approx((5000.0, 1000 * math.sqrt(32 / 7), 0.0), rel=1e-12)
    assert a[8] == Row(
        exchange="binance", symbol="BTCUSDT", window_start=naive(8), window_end=naive(9), trade_count=2,
        base_volume=12.0, quote_volume=12000.0, buy_quote_volume=9000.0, sell_quote_volume=3000.0, vwap=1000.0,
        baseline_size=8, baseline_mean=5000.0, baseline_std=2000.0, z_score=3.5,
        buy_baseline_mean=4000.0, buy_baseline_std=2000.0, buy_z_score=2.5,
        sell_baseline_mean=1000.0, sell_baseline_std=0.0, sell_z_score=None,
    )  # fmt: skip


def test_state_carries_across_micro_batches(run: DetectorRun) -> None:
    emitted = {
        batch: sorted(minute for minute, row in rows_of(run, A).items() if row in rows)
        for batch, rows in run.outputs_by_batch.items()
    }
    # Batch 1 runs with watermark 00:02:55, batch 2 with 00:06:20, the no-data batch 3 with 00:09:00.
    assert {batch: minutes for batch, minutes in emitted.items() if minutes} == {
        1: [0, 1],
        2: [2, 3, 4, 5],
        3: [6, 7, 8],
    }
    minute_3 = rows_of(run, A)[3]  # its buy came in batch 0, its sell in batch 1
    assert (minute_3.trade_count, minute_3.quote_volume, minute_3.sell_quote_volume) == (2, 9000.0, 1000.0)


def test_quiet_minutes_are_zeros_in_the_baseline(run: DetectorRun) -> None:
    b = rows_of(run, B)
    assert sorted(b) == [0, 1, 4]  # quiet minutes 2 and 3 emit no row
    assert (b[4].trade_count, b[4].base_volume, b[4].quote_volume, b[4].vwap) == (1, 7.5, 15000.0, 2000.0)
    assert (b[4].baseline_size, *stats(b[4])) == (4, 3000.0, 3000.0, 4.0)  # baseline [6K, 6K, 0, 0]
    f = rows_of(run, F)
    assert (f[4].baseline_size, *stats(f[4])) == (4, 30.0, 30.0, 4.0)  # baseline [60, 60, 0, 0]
    e = rows_of(run, E)
    assert (e[2].baseline_size, *stats(e[2])) == (2, 3000.0, 3000.0, 19.0)  # baseline [6K, 0]


def test_rows_with_null_fields_are_not_counted(run: DetectorRun) -> None:
    minute_1 = rows_of(run, A)[1]  # five $50K trades of minute 1 each miss a field
    assert (minute_1.trade_count, minute_1.base_volume, minute_1.quote_volume) == (2, 4.0, 4000.0)
    assert all(row.exchange is not None for row in run.outputs)


def test_late_events_beyond_the_watermark_are_dropped(run: DetectorRun) -> None:
    late = rows_of(run, L)
    assert sorted(late) == [0, 3]
    assert (late[0].trade_count, late[0].quote_volume) == (1, 100.0)
    assert (late[3].trade_count, late[3].quote_volume) == (2, 300.0)


def test_zero_variance_gives_no_z_and_no_alert(run: DetectorRun) -> None:
    d = rows_of(run, D)
    assert [d[m].quote_volume for m in sorted(d)] == [6000.0, 6000.0, 6000.0, 6000.0, 60000.0]
    assert (d[4].baseline_size, *stats(d[4])) == (4, 6000.0, 0.0, None)
    assert (d[4].buy_baseline_mean, d[4].buy_baseline_std, d[4].buy_z_score) == (0.0, 0.0, None)
    assert not [alert for alert in run.alerts if (alert.exchange, alert.symbol) == D]


def test_no_alert_during_warm_up(run: DetectorRun) -> None:
    assert rows_of(run, A)[3].z_score > 3.5
    assert rows_of(run, E)[2].z_score > 3.5
    alerted = {(alert.exchange, alert.symbol, alert.detected_at) for alert in run.alerts}
    assert ("binance", "BTCUSDT", naive(4)) not in alerted
    assert not [alert for alert in run.alerts if (alert.exchange, alert.symbol) == E]


def test_no_alert_below_the_volume_floor(run: DetectorRun) -> None:
    assert not [alert for alert in run.alerts if (alert.exchange, alert.symbol) == F]


def test_buy_and_sell_z_scores(run: DetectorRun) -> None:
    # A minute 8: buys 9K vs [1,3,3,8,3,4,6,4] ($K, mean 4, std 2) -> 2.5; sells flat at 1K -> null.
    assert stats(rows_of(run, A)[8], "buy_") == (4000.0, 2000.0, 2.5)
    assert stats(rows_of(run, A)[8], "sell_") == (1000.0, 0.0, None)
    g = rows_of(run, G)[4]  # a 2K buy at 2,000 and a 3K sell at 3,000
    assert (g.trade_count, g.base_volume, g.buy_quote_volume, g.sell_quote_volume, g.vwap) == (
        2,
        2.0,
        2000.0,
        3000.0,
        2500.0,
    )
    assert stats(g, "buy_") == (2000.0, 1000.0, 0.0)
    assert stats(g, "sell_") == (0.0, 0.0, None)


def test_keys_are_independent(run: DetectorRun) -> None:
    # Same symbol on two venues, same minutes: each baseline holds only its own key's windows.
    assert [rows_of(run, G)[m].quote_volume for m in range(5)] == [1000.0, 3000.0, 1000.0, 3000.0, 5000.0]
    assert (rows_of(run, G)[4].baseline_size, *stats(rows_of(run, G)[4])) == (4, 2000.0, 1000.0, 3.0)
    assert rows_of(run, A)[4].baseline_mean == 4750.0  # [2, 4, 4, 9] ($K)


def test_alerts(run: DetectorRun) -> None:
    alerts = sorted(run.alerts, key=lambda alert: (alert.exchange, alert.symbol))
    assert [(a.exchange, a.symbol, a.severity, a.detected_at, a.message) for a in alerts] == [
        ("binance", "BTCUSDT", "medium", naive(9),
         "BTCUSDT binance: quote volume $12.0K in 1 min, z=3.5 (baseline $5.0K ± $2.0K over 8 min)"),
        ("binance", "ETHUSDT", "high", naive(5),
         "ETHUSDT binance: quote volume $15.0K in 1 min, z=4.0 (baseline $3.0K ± $3.0K over 4 min)"),
        ("binance-usdm", "BTCUSDT", "medium", naive(5),
         "BTCUSDT binance-usdm: quote volume $5.0K in 1 min, z=3.0 (baseline $2.0K ± $1.0K over 4 min)"),
    ]  # fmt: skip
    assert {(a.alert_type, a.module_id, a.ttl_epoch) for a in alerts} == {("volume_spike", "MOD-001", None)}
    details = json.loads(alerts[0].details)
    assert details["window_start"].startswith("2024-08-09T00:08:00")
    assert (details["quote_volume"], details["baseline_size"], details["z_score"], details["buy_z_score"]) == (
        12000.0,
        8,
        3.5,
        2.5,
    )


def test_alert_ids_are_deterministic(run: DetectorRun) -> None:
    window_start_ms = {("binance", "BTCUSDT"): T0_MS + 8 * 60_000, B: T0_MS + 4 * 60_000, G: T0_MS + 4 * 60_000}
    assert {alert.alert_id for alert in run.alerts} == {
        make_alert_id("MOD-001", exchange, symbol, str(start)) for (exchange, symbol), start in window_start_ms.items()
    }
