"""MOD-008 on the real Binance BTCUSDT spot recording (tests/data, 2024-08-08 23:54 to 00:05 UTC).

The markouts the stream writes are checked against a computation from the raw trades that
shares no code with the module: orders are runs of consecutive trade ids with one time and
one taker side (Binance publishes no taker order id), entry = VWAP of the trades in
(t, t + 5 s], exit = the last trade at or before t + h, return side-signed in bps.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from coattail_detector_whale_alpha import WhaleAlphaDetector
from coattail_devstack.testing import run_detector_stream
from coattail_framework.config import CoattailConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
SPOT_TRADES = REPO_ROOT / "tests/data/binance/archive/BTCUSDT-trades-20240808T2354Z-20240809T0005Z.csv"
MS = 1000


def archive_trades(path: Path) -> list[tuple[int, int, float, float, float, str]]:
    """``(trade id, time ms, price, quantity, quote volume, taker side)`` in file (id) order."""
    with path.open(newline="") as handle:
        return [
            (int(i), int(t), float(p), float(q), float(qq), "sell" if maker == "True" else "buy")
            for i, p, q, qq, t, maker, *_ in csv.reader(handle)
        ]


def event_rows(trades: list[tuple[int, int, float, float, float, str]]) -> list[dict[str, Any]]:
    rows = []
    for trade_id, time_ms, price, quantity, quote, side in trades:
        when = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
        rows.append(
            {
                "event_id": f"binance:BTCUSDT:{trade_id}",
                "exchange": "binance",
                "symbol": "BTCUSDT",
                "price": price,
                "quantity": quantity,
                "quote_volume": quote,
                "side": side,
                "timestamp": when,
                "ingestion_timestamp": when + timedelta(milliseconds=100),
                "trade_id": str(trade_id),
                "taker_order_id": None,
            }
        )
    return rows


def oracle(
    trades: list[tuple[int, int, float, float, float, str]], horizons_s: list[int], watermark_ms: int
) -> dict[tuple[int, str, int], float]:
    """``(order time ms, first trade id, horizon s) -> return bps`` for every whale order's resolved horizon."""
    orders: list[list[tuple[int, int, float, float, float, str]]] = []
    for trade in trades:
        last = orders[-1][-1] if orders else None
        if last is not None and (last[1], last[5], last[0] + 1) == (trade[1], trade[5], trade[0]):
            orders[-1].append(trade)
        else:
            orders.append([trade])
    found = {}
    for order in orders:
        if sum(fill[4] for fill in order) < 100_000:
            continue
        start, side = order[0][1], order[0][5]
        window = [t for t in trades if start < t[1] <= start + 5 * MS]
        entry = sum(t[4] for t in window) / sum(t[3] for t in window)
        for horizon in horizons_s:
            if start + horizon * MS > watermark_ms:
                continue
            exit_price = [t for t in trades if t[1] <= start + horizon * MS][-1][2]
            sign = 1 if side == "buy" else -1
            found[start, str(order[0][0]), horizon] = sign * (exit_price - entry) / entry * 10_000
    return found


def test_markouts_equal_a_computation_from_the_raw_trades(spark: SparkSession, tmp_path: Path) -> None:
    trades = archive_trades(SPOT_TRADES)
    rows = event_rows(trades)
    detector = WhaleAlphaDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": {"BTC/USDT": {"binance": "BTCUSDT"}}}))
    size = -(-len(rows) // 6)
    run = run_detector_stream(spark, detector, [rows[i : i + size] for i in range(0, len(rows), size)], tmp_path)

    expected = oracle(trades, detector.settings.horizons_seconds, max(t[1] for t in trades) - 2 * MS)
    markouts = [row for row in run.outputs if row.horizon_seconds > 0]
    got = {
        (int(row.order_time.replace(tzinfo=UTC).timestamp() * 1000), row.first_trade_id, row.horizon_seconds): row
        for row in markouts
    }
    assert len(got) == len(markouts)
    assert sorted(got) == sorted(expected)
    assert len({key[:2] for key in expected}) >= 30  # of the recording's 36 whale orders
    assert {key[2] for key in expected} == {60, 300}  # 10.8 minutes: 15 and 60 min never resolve
    for key, row in got.items():
        assert row.return_bps == pytest.approx(expected[key], abs=0.05), key
    entries = [row for row in run.outputs if row.horizon_seconds == 0]
    assert len(entries) == 36  # every whale order (MOD-002 finds 36 here): each entry window closed in time
    assert {(row.notional_bucket, row.side) for row in entries} >= {("100K-500K", "buy"), ("500K-1M", "buy")}
    worst = max(abs(row.return_bps - expected[key]) for key, row in got.items())
    print(f"{len(got)} markouts ({len(entries)} orders), largest difference from the raw trades {worst:.2e} bps")
    alerts = [alert for alert in run.alerts if alert.alert_type == "whale_markout"]
    assert len(alerts) == len(markouts)
    assert not [alert for alert in run.alerts if alert.alert_type == "whale_alpha_signal"]  # no cohort reaches 30
