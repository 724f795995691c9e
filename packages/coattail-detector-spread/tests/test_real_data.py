"""MOD-003 on the real Binance recordings: spot vs USD-M BTCUSDT, 2024-08-08 23:54 to 00:00 UTC."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from coattail_detector_spread import SpreadDetector
from coattail_devstack.testing import run_detector_stream
from coattail_framework.config import CoattailConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
ARCHIVE = REPO_ROOT / "tests/data/binance/archive"
SPOT = ARCHIVE / "BTCUSDT-trades-20240808T2354Z-20240809T0005Z.csv"
USDM = ARCHIVE / "BTCUSDT-UM-trades-20240808T2354Z-20240809T0000Z.csv"
WINDOW_MS = 30_000
WATERMARK_DELAY_MS = 15_000


def archive_rows(path: Path, exchange: str, header: bool) -> list[dict[str, Any]]:
    """Binance archive rows (id,price,qty,quote_qty,time,is_buyer_maker,...) as trade event rows."""
    rows = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        if header:
            next(reader)
        for trade_id, price, qty, quote_qty, time_ms, buyer_is_maker, *_ in reader:
            when = datetime.fromtimestamp(int(time_ms) / 1000, tz=UTC)
            rows.append(
                {
                    "event_id": f"{exchange}:BTCUSDT:{trade_id}",
                    "exchange": exchange,
                    "symbol": "BTCUSDT",
                    "price": float(price),
                    "quantity": float(qty),
                    "quote_volume": float(quote_qty),
                    "side": "sell" if buyer_is_maker.lower() == "true" else "buy",
                    "timestamp": when,
                    "ingestion_timestamp": when + timedelta(milliseconds=100),
                    "trade_id": trade_id,
                    "taker_order_id": None,
                }
            )
    return rows


def expected_premiums(rows: list[dict[str, Any]]) -> dict[datetime, float]:
    """USD-M over spot VWAP premium (bps) per closed 30 s window, computed without Spark."""
    totals: dict[tuple[datetime, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        epoch_ms = round(row["timestamp"].timestamp() * 1000)
        start = datetime.fromtimestamp(epoch_ms // WINDOW_MS * WINDOW_MS / 1000, tz=UTC)
        totals[(start, row["exchange"])][0] += row["quote_volume"]
        totals[(start, row["exchange"])][1] += row["quantity"]
    watermark = max(row["timestamp"] for row in rows) - timedelta(milliseconds=WATERMARK_DELAY_MS)
    premiums = {}
    for start in sorted({start for start, _ in totals}):
        both = (start, "binance") in totals and (start, "binance-usdm") in totals
        if both and start + timedelta(milliseconds=WINDOW_MS) <= watermark:
            spot = totals[(start, "binance")][0] / totals[(start, "binance")][1]
            usdm = totals[(start, "binance-usdm")][0] / totals[(start, "binance-usdm")][1]
            premiums[start.replace(tzinfo=None)] = (usdm - spot) / ((spot + usdm) / 2) * 10_000
    return premiums


def test_spot_and_usdm_stay_within_the_recorded_basis(spark: SparkSession, tmp_path: Path) -> None:
    rows = sorted(
        archive_rows(SPOT, "binance", header=False) + archive_rows(USDM, "binance-usdm", header=True),
        key=lambda row: row["timestamp"],
    )
    assert len(rows) == 19_904 + 21_313
    detector = SpreadDetector()
    detector.configure(
        CoattailConfig.model_validate({"symbols": {"BTC/USDT": {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT"}}})
    )
    size = -(-len(rows) // 4)
    run = run_detector_stream(spark, detector, [rows[i : i + size] for i in range(0, len(rows), size)], tmp_path)

    expected = expected_premiums(rows)
    assert len(expected) == 12
    premiums = {row.window_start: row.premium_bps for row in run.outputs}
    assert premiums == pytest.approx(expected, rel=1e-9)
    assert {(row.symbol, row.exchange_a, row.exchange_b) for row in run.outputs} == {
        ("BTC/USD", "binance", "binance-usdm")
    }
    assert all(-13 <= premium <= 4.6 for premium in premiums.values())
    assert statistics.median(premiums.values()) == pytest.approx(-3.65, abs=0.01)
    assert max(row.spread_pct for row in run.outputs) < 0.07
    assert run.alerts == []
