"""MOD-002 on the real Binance BTCUSDT spot recording (tests/data, 2024-08-08 23:54 to 00:05 UTC)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from coattail_detector_whale import WhaleDetector
from coattail_devstack.testing import run_detector_stream
from coattail_framework.config import CoattailConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
SPOT_TRADES = REPO_ROOT / "tests/data/binance/archive/BTCUSDT-trades-20240808T2354Z-20240809T0005Z.csv"
BATCHES = 4


def archive_rows(path: Path) -> list[dict[str, Any]]:
    """Binance archive rows (id,price,qty,quote_qty,time,is_buyer_maker,...) as trade event rows."""
    rows = []
    with path.open(newline="") as handle:
        for trade_id, price, qty, quote_qty, time_ms, buyer_is_maker, *_ in csv.reader(handle):
            when = datetime.fromtimestamp(int(time_ms) / 1000, tz=UTC)
            rows.append(
                {
                    "event_id": f"binance:BTCUSDT:{trade_id}",
                    "exchange": "binance",
                    "symbol": "BTCUSDT",
                    "price": float(price),
                    "quantity": float(qty),
                    "quote_volume": float(quote_qty),
                    "side": "sell" if buyer_is_maker == "True" else "buy",
                    "timestamp": when,
                    "ingestion_timestamp": when + timedelta(milliseconds=100),
                    "trade_id": trade_id,
                    "taker_order_id": None,
                }
            )
    return rows


def test_the_recording_holds_36_whale_orders_where_single_fills_show_one(spark: SparkSession, tmp_path: Path) -> None:
    rows = archive_rows(SPOT_TRADES)
    assert len(rows) == 19_904
    assert sum(1 for row in rows if row["quote_volume"] > 100_000) == 1

    detector = WhaleDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": {"BTC/USDT": {"binance": "BTCUSDT"}}}))
    size = -(-len(rows) // BATCHES)
    run = run_detector_stream(spark, detector, [rows[i : i + size] for i in range(0, len(rows), size)], tmp_path)

    assert len(run.outputs) == 36
    largest = max(run.outputs, key=lambda row: row.notional)
    assert largest.notional == pytest.approx(846_954.3905418, rel=1e-12)
    assert (largest.fill_count, largest.side, largest.first_trade_id, largest.last_trade_id) == (
        82,
        "buy",
        "3735687957",
        "3735688038",
    )
    assert largest.order_time == datetime(2024, 8, 8, 23, 57, 53, 61_000)
    assert largest.price_impact_bps == pytest.approx((61692.08 - 61665.0) / 61665.0 * 10_000, rel=1e-12)
    assert sorted(alert.severity for alert in run.alerts).count("high") == 3
    assert len(run.alerts) == 36
    assert "BTCUSDT binance: taker BUY order $846,954 in 82 fills, +4.4 bps impact" in {a.message for a in run.alerts}
