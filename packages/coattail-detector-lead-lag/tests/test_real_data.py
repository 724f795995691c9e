"""MOD-010 on the real Binance recordings: spot against USD-M perpetual, BTCUSDT and ETHUSDT, 2024-08-08/09.

Spot trades run 23:54:15-00:05:05 UTC, the perpetual's 23:54:16-00:00:00: 5.7 minutes together.
The rows are checked against a computation from the raw trades that shares no code with the
module: per leg the trades sorted by (time, id), the price at each grid cell = the last trade
before the cell's end (``searchsorted``), ``numpy.diff(numpy.log(...))`` returns and
``numpy.corrcoef`` at every lag.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import SparkSession

from coattail_detector_lead_lag import LeadLagDetector
from coattail_devstack.testing import DetectorRun, run_detector_stream
from coattail_framework.config import CoattailConfig
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

REPO_ROOT = Path(__file__).resolve().parents[3]
ARCHIVE = REPO_ROOT / "tests/data/binance/archive"
SYMBOLS = {"BTC/USDT": {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT"},
           "ETH/USDT": {"binance": "ETHUSDT", "binance-usdm": "ETHUSDT"}}  # fmt: skip
FINE = {"grid_ms": 100, "window_seconds": 60, "max_lag_seconds": 2, "step_seconds": 30, "min_samples": 60}
"""A finer grid: 100 ms cells, 1 minute windows every 30 s, lags up to 2 s."""
MIDNIGHT_MS = 1_723_161_600_000


@dataclass(frozen=True)
class Leg:
    """One recording: its trades sorted by (time, id)."""

    times_ms: np.ndarray
    prices: np.ndarray


def archive(symbol: str, perpetual: bool) -> tuple[Leg, list[dict[str, Any]]]:
    """A Binance archive CSV (id,price,qty,quote_qty,time,is_buyer_maker,...) as a ``Leg`` and as event rows."""
    name = f"{symbol}-UM-trades-20240808T2354Z-20240809T0000Z.csv" if perpetual else (
        f"{symbol}-trades-20240808T2354Z-20240809T0005Z.csv")  # fmt: skip
    exchange = "binance-usdm" if perpetual else "binance"
    with (ARCHIVE / name).open(newline="") as handle:
        lines = list(csv.reader(handle))[1 if perpetual else 0 :]
    rows = []
    for trade_id, price, quantity, quote, time_ms, buyer_is_maker, *_ in lines:
        when = datetime.fromtimestamp(int(time_ms) / 1000, tz=UTC)
        rows.append({
            "event_id": f"{exchange}:{symbol}:{trade_id}", "exchange": exchange, "symbol": symbol,
            "price": float(price), "quantity": float(quantity), "quote_volume": float(quote),
            "side": "sell" if buyer_is_maker.lower() == "true" else "buy", "timestamp": when,
            "ingestion_timestamp": when + timedelta(milliseconds=100), "trade_id": trade_id, "taker_order_id": None,
        })  # fmt: skip
    ordered = sorted((int(time_ms), int(trade_id), float(price)) for trade_id, price, _, _, time_ms, *_ in lines)
    return Leg(np.array([t for t, _, _ in ordered]), np.array([p for _, _, p in ordered])), rows


def oracle(spot: Leg, perp: Leg, settings: dict[str, Any], watermark_ms: int) -> list[dict[str, Any]]:
    """Rows of the pair (spot, perpetual) for every step end up to ``watermark_ms``, from the raw trades."""
    grid, step = settings.get("grid_ms", 1000), settings.get("step_seconds", 60) * 1000
    window = settings.get("window_seconds", 300) * 1000 // grid
    lags = round(settings.get("max_lag_seconds", 10) * 1000) // grid
    min_samples, held = settings.get("min_samples", 120), []
    silence_ms = settings.get("max_leg_silence_seconds", 60) * 1000
    rows = []
    for end in range(spot.times_ms[0] // step * step + step, watermark_ms + 1, step):
        cell_ends = end - grid * np.arange(window + lags + 1)[::-1]  # prices at the ends of cells before `end`
        last = [np.searchsorted(leg.times_ms, cell_ends, side="left") - 1 for leg in (spot, perp)]
        if min(index[0] for index in last) < 0:
            continue  # a leg had not traded before the first cell
        newest = [int(leg.times_ms[index[-1]]) for leg, index in zip((spot, perp), last, strict=True)]
        if max(end - (t // grid + 1) * grid for t in newest) > silence_ms:
            continue  # a leg fell silent (the perpetual's recording ends at 00:00): no row
        a, b = (np.diff(np.log(leg.prices[index])) for leg, index in zip((spot, perp), last, strict=True))
        moves = (int(np.count_nonzero(a[lags:])), int(np.count_nonzero(b[lags:])))
        if min(moves) < min_samples:
            continue
        rho = {k: np.corrcoef(a[lags - k : len(a) - k] if k >= 0 else a[lags:],
                              b[lags:] if k >= 0 else b[lags + k : len(b) + k])[0, 1]
               for k in range(-lags, lags + 1)}  # fmt: skip
        best = max(rho, key=lambda k: (abs(rho[k]), -abs(k), -k))
        significant = abs(rho[best]) >= 0.2 and abs(rho[best]) - abs(rho[0]) >= 0.05
        leader = "binance" if best > 0 else "binance-usdm" if best < 0 else None
        previous = held[0] if len(held) == 3 and len(set(held)) == 1 else None
        held = [*held, leader][-3:] if significant else held
        rows.append({
            "window_end": datetime.fromtimestamp(end / 1000, tz=UTC).replace(tzinfo=None),
            "lag_seconds": best * grid / 1000, "leader": leader, "correlation_at_lag": rho[best],
            "correlation_at_zero": rho[0],
            "lead_lag_ratio": sum(rho[k] ** 2 for k in range(1, lags + 1)) / sum(rho[k] ** 2 for k in range(-lags, 0)),
            "samples": window, "nonzero_returns_a": moves[0], "nonzero_returns_b": moves[1],
            "significant": significant, "previous_leader": previous,
            "leader_change": significant and previous is not None and leader != previous,
        })  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def recordings() -> dict[str, tuple[Leg, Leg, list[dict[str, Any]]]]:
    """Per instrument (BTC/USD, ETH/USD): spot leg, perpetual leg, and both as event rows."""
    found = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        spot, spot_rows = archive(symbol, perpetual=False)
        perp, perp_rows = archive(symbol, perpetual=True)
        found[f"{symbol[:3]}/USD"] = (spot, perp, spot_rows + perp_rows)
    return found


def detector_with(settings: dict[str, Any]) -> LeadLagDetector:
    detector = LeadLagDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": {"lead-lag": settings}}))
    return detector


def compare(got: list[Any], expected: list[dict[str, Any]]) -> float:
    """Assert ``got`` (Spark rows) equals ``expected``; returns the largest correlation difference."""
    assert [row.window_end for row in got] == [row["window_end"] for row in expected]
    worst = 0.0
    for row, wanted in zip(got, expected, strict=True):
        for name, value in wanted.items():
            if isinstance(value, float) and name != "lag_seconds":
                assert getattr(row, name) == pytest.approx(value, abs=1e-9), (row.window_end, name)
                worst = max(worst, abs(getattr(row, name) - value))
            else:
                assert getattr(row, name) == value, (row.window_end, name)
    return worst


@pytest.fixture(scope="module")
def default_run(
    spark: SparkSession,
    recordings: dict[str, tuple[Leg, Leg, list[dict[str, Any]]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[DetectorRun, Path]:
    """Both instruments streamed through the default settings in 6 micro-batches (in time order)."""
    rows = sorted((row for *_, rows in recordings.values() for row in rows), key=lambda row: row["timestamp"])
    size = -(-len(rows) // 6)
    workdir = tmp_path_factory.mktemp("default")
    run = run_detector_stream(
        spark, detector_with({}), [rows[i : i + size] for i in range(0, len(rows), size)], workdir
    )
    return run, workdir / "input"


def test_default_rows_equal_a_computation_from_the_raw_trades(
    default_run: tuple[DetectorRun, Path], recordings: dict[str, tuple[Leg, Leg, list[dict[str, Any]]]]
) -> None:
    run, _ = default_run
    newest_ms = max(int(leg.times_ms[-1]) for spot, perp, _ in recordings.values() for leg in (spot, perp))
    for instrument, (spot, perp, _) in recordings.items():
        expected = oracle(spot, perp, {}, newest_ms - 5_000)  # the stream's last watermark
        got = [row for row in run.outputs if row.symbol == instrument]
        worst = compare(got, expected)
        print(f"{instrument}: {len(got)} default rows, largest difference from numpy {worst:.1e}")
        # The perpetual's recording stops at midnight (last trades 23:59:59.643 BTC, 00:00:00.029 ETH):
        # at 00:01 its last 1 s cell ended 60 s before, within max_leg_silence_seconds (60): a row on
        # the carried price; at 00:02, 120 s: silent, no row (before the rule, 00:02 had one too).
        assert [row.window_end.strftime("%H:%M") for row in got] == ["00:00", "00:01"]
        midnight = got[0]
        assert (midnight.lag_seconds, midnight.leader, midnight.significant) == (0.0, None, False)
    btc, eth = (next(row for row in run.outputs if row.symbol == name) for name in ("BTC/USD", "ETH/USD"))
    assert (round(btc.correlation_at_zero, 3), round(eth.correlation_at_zero, 3)) == (0.918, 0.837)
    assert run.alerts == []


def test_finer_grid_rows_equal_a_computation_from_the_raw_trades(
    spark: SparkSession,
    default_run: tuple[DetectorRun, Path],
    recordings: dict[str, tuple[Leg, Leg, list[dict[str, Any]]]],
) -> None:
    _, stored = default_run  # the same trades, read as a static DataFrame: the applyInPandas path
    events = spark.read.schema(UNIFIED_TRADE_EVENT).parquet(str(stored))
    outputs = detector_with(FINE).process(events).orderBy("symbol", "window_end").collect()
    for instrument, (spot, perp, _) in recordings.items():
        newest_ms = max(int(spot.times_ms[-1]), int(perp.times_ms[-1]))
        expected = oracle(spot, perp, FINE, newest_ms - 5_000)  # static: the instrument's own newest trade
        got = [row for row in outputs if row.symbol == instrument]
        worst = compare(got, expected)
        print(f"{instrument}: {len(got)} rows at 100 ms, largest difference from numpy {worst:.1e}")
        assert len([row for row in got if row.window_end <= datetime(2024, 8, 9)]) == 10  # 23:55:30 .. 00:00
    btc_midnight = next(row for row in outputs if row.symbol == "BTC/USD" and row.window_end == datetime(2024, 8, 9))
    # The minute before midnight: the perpetual leads spot by one 100 ms cell
    assert (btc_midnight.lag_seconds, btc_midnight.leader, btc_midnight.significant) == (-0.1, "binance-usdm", True)
