"""MOD-004 on the real Binance recordings (tests/data/binance/archive, 2024-08-08 23:54 UTC onwards).

Every window the module writes is checked against a computation from the raw trades that
shares no code with it: an order is a run of consecutive trade ids with one trade time and
one taker side (Binance publishes no taker order id; ``is_buyer_maker`` true means the taker
sold), it counts in the window of its time, and the net-flow baseline is the previous windows'
net flows with windows without trades as zeros (numpy, population std).

- Spot BTCUSDT (10.8 min), as a stream in six micro-batches, with 10 s windows, a baseline of
  30 windows and a warm-up of 12 (the defaults' 30-minute warm-up cannot be reached in ten
  minutes): rows and alerts against the raw trades.
- Spot BTCUSDT and USD-M BTCUSDT (5.7 min) through the static path with the defaults
  (60 s windows), and USD-M with the 10 s windows.

The figures each run finds are printed (``pytest -s``) and quoted in
docs/modules/MOD-004-flow-imbalance.md.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import Row, SparkSession

from coattail_detector_flow_imbalance import FlowImbalanceDetector
from coattail_devstack.testing import DetectorRun, run_detector_stream, write_event_batches
from coattail_framework.config import CoattailConfig
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

ARCHIVE = Path(__file__).resolve().parents[3] / "tests/data/binance/archive"
SPOT = ARCHIVE / "BTCUSDT-trades-20240808T2354Z-20240809T0005Z.csv"  # no header; is_buyer_maker True/False
USDM = ARCHIVE / "BTCUSDT-UM-trades-20240808T2354Z-20240809T0000Z.csv"  # header; is_buyer_maker true/false
SYMBOLS = {"BTC/USDT": {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT"}}
SMALL_WINDOWS = {"window_seconds": 10, "baseline_windows": 30, "min_baseline_windows": 12}
DELAY_MS = 30_000  # the default watermark delay
LARGE = 50_000.0  # the default large_order_usd


@dataclass(frozen=True)
class RawTrade:
    trade_id: int
    time_ms: int
    quote: float
    taker_sold: bool


def raw_trades(path: Path) -> list[RawTrade]:
    """The archive's trades in file (trade id) order."""
    with path.open(newline="") as handle:
        lines = csv.reader(handle)
        if path == USDM:
            next(lines)
        return [RawTrade(int(i), int(t), float(q), maker.lower() == "true") for i, _, _, q, t, maker, *_ in lines]


def events(trades: Sequence[RawTrade], exchange: str) -> list[dict[str, Any]]:
    """``UNIFIED_TRADE_EVENT`` rows (price x quantity is not needed: quote_volume is the archive's)."""
    rows = []
    for trade in trades:
        at = datetime.fromtimestamp(trade.time_ms / 1000, tz=UTC)
        rows.append(
            {
                "event_id": f"{exchange}:BTCUSDT:{trade.trade_id}",
                "exchange": exchange,
                "symbol": "BTCUSDT",
                "price": 60_000.0,
                "quantity": trade.quote / 60_000.0,
                "quote_volume": trade.quote,
                "side": "sell" if trade.taker_sold else "buy",
                "timestamp": at,
                "ingestion_timestamp": at + timedelta(milliseconds=100),
                "trade_id": str(trade.trade_id),
                "taker_order_id": None,
            }
        )
    return rows


def continues(order: list[RawTrade], trade: RawTrade) -> bool:
    """Whether ``trade`` is the next fill of ``order``: the next trade id, at the same time, on the same side."""
    last = order[-1]
    return (last.trade_id + 1, last.time_ms, last.taker_sold) == (trade.trade_id, trade.time_ms, trade.taker_sold)


def expected_windows(trades: Sequence[RawTrade], window_s: int, baseline_n: int) -> dict[int, dict[str, Any]]:
    """``window start ms -> figures`` of every window with a trade, from the raw trades alone."""
    window_ms = window_s * 1000
    orders: list[list[RawTrade]] = []
    for trade in trades:
        if orders and continues(orders[-1], trade):
            orders[-1].append(trade)
        else:
            orders.append([trade])
    windows: dict[int, dict[str, Any]] = {}
    for order in orders:
        notional = sum(fill.quote for fill in order)
        side = "sell" if order[0].taker_sold else "buy"
        start = order[0].time_ms - order[0].time_ms % window_ms
        window = windows.setdefault(start, {"buy": [0, 0.0, 0.0], "sell": [0, 0.0, 0.0]})
        window[side][0] += 1
        window[side][1] += notional
        window[side][2] += notional if notional >= LARGE else 0.0
    first, last = min(windows), max(windows)
    net = {start: windows[start]["buy"][1] - windows[start]["sell"][1] if start in windows else 0.0
           for start in range(first, last + 1, window_ms)}  # fmt: skip
    starts = sorted(net)
    for index, start in enumerate(starts):
        if start not in windows:
            continue
        baseline = np.array([net[s] for s in starts[max(0, index - baseline_n) : index]])
        mean = std = z = None
        if len(baseline):
            mean, std = float(np.mean(baseline)), float(np.std(baseline))  # population std
            z = (net[start] - mean) / std if std else None
        window = windows[start]
        buy, sell = window["buy"][1], window["sell"][1]
        large_buy, large_sell = window["buy"][2], window["sell"][2]
        window.update(
            net=net[start],
            imbalance=(buy - sell) / (buy + sell),
            large_imbalance=(large_buy - large_sell) / (large_buy + large_sell) if large_buy + large_sell else None,
            baseline_size=len(baseline),
            mean=mean,
            std=std,
            z=z,
        )
    return windows


def start_ms(row: Row) -> int:
    return int(row.window_start.replace(tzinfo=UTC).timestamp() * 1000)


def assert_rows_match(rows: Sequence[Row], expected: dict[int, dict[str, Any]]) -> None:
    for row in rows:
        want = expected[start_ms(row)]
        assert (row.buy_order_count, row.sell_order_count, row.baseline_size) == (
            want["buy"][0],
            want["sell"][0],
            want["baseline_size"],
        )
        got = (row.buy_quote_volume, row.sell_quote_volume, row.large_buy_quote_volume, row.large_sell_quote_volume)
        assert got == pytest.approx((want["buy"][1], want["sell"][1], want["buy"][2], want["sell"][2]), rel=1e-12)
        assert (row.net_quote_flow, row.imbalance) == pytest.approx((want["net"], want["imbalance"]), rel=1e-9)
        for name, key in (("large_order_imbalance", "large_imbalance"), ("baseline_mean", "mean"),
                          ("baseline_std", "std"), ("net_flow_z", "z")):  # fmt: skip
            value = row[name]
            assert (value is None) == (want[key] is None), (start_ms(row), name)
            if value is not None:
                assert value == pytest.approx(want[key], rel=1e-9, abs=1e-9), (start_ms(row), name)


def expected_alerts(expected: dict[int, dict[str, Any]], starts: Sequence[int]) -> list[tuple[str, str, str]]:
    """``(window start, severity, direction)`` by the default rule, computed in plain Python."""
    found = []
    for start in starts:
        window = expected[start]
        z = window["z"]
        if (
            z is None
            or window["baseline_size"] < SMALL_WINDOWS["min_baseline_windows"]
            or abs(window["imbalance"]) < 0.3
            or window["buy"][1] + window["sell"][1] < 250_000
            or (z > 0) != (window["net"] > 0)
        ):
            continue
        severity = next((name for name, bound in (("critical", 5), ("high", 4), ("medium", 3)) if abs(z) > bound), None)
        if severity:
            found.append((clock(start), severity, "buy" if window["net"] > 0 else "sell"))
    return found


def summary(alerts: Sequence[Row]) -> list[tuple[str, str, str]]:
    """``(window start, severity, direction)`` of the alerts, by window."""
    return sorted(
        (json.loads(alert.details)["window_start"][11:19], alert.severity, json.loads(alert.details)["direction"])
        for alert in alerts
    )


def clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


def report(title: str, rows: Sequence[Row]) -> None:
    print(f"\n{title}: {len(rows)} windows")
    for row in rows:
        z = "-" if row.net_flow_z is None else f"{row.net_flow_z:+.2f}"
        large = "-" if row.large_order_imbalance is None else f"{row.large_order_imbalance:+.3f}"
        print(
            f"  {clock(start_ms(row))} orders {row.buy_order_count}/{row.sell_order_count} "
            f"B {row.buy_quote_volume:,.2f} S {row.sell_quote_volume:,.2f} I {row.imbalance:+.3f} I_L {large} "
            f"baseline {row.baseline_size} z {z}"
        )


def detector_with(settings: dict[str, Any]) -> FlowImbalanceDetector:
    detector = FlowImbalanceDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": {"flow-imbalance": settings}}))
    return detector


@pytest.fixture(scope="module")
def spot() -> list[RawTrade]:
    return raw_trades(SPOT)


@pytest.fixture(scope="module")
def usdm() -> list[RawTrade]:
    return raw_trades(USDM)


def static_rows(spark: SparkSession, detector: FlowImbalanceDetector, rows: list[dict[str, Any]], folder: Path) -> Any:
    trades = spark.read.schema(UNIFIED_TRADE_EVENT).parquet(str(write_event_batches([rows], folder)))
    output = detector.process(trades)
    return output.persist()


def test_spot_stream_with_10_s_windows_equals_the_raw_trades(
    spark: SparkSession, spot: list[RawTrade], tmp_path: Path
) -> None:
    detector = detector_with(SMALL_WINDOWS)
    rows = events(spot, "binance")
    size = -(-len(rows) // 6)
    batches = [rows[i : i + size] for i in range(0, len(rows), size)]
    run: DetectorRun = run_detector_stream(spark, detector, batches, tmp_path)

    expected = expected_windows(spot, 10, 30)
    watermark_ms = max(trade.time_ms for trade in spot) - DELAY_MS
    closed = [start for start in sorted(expected) if start + 10_000 <= watermark_ms]
    outputs = sorted(run.outputs, key=start_ms)
    assert [start_ms(row) for row in outputs] == closed  # every 10 s window had a trade
    assert len(closed) == 62
    assert_rows_match(outputs, expected)
    report("spot BTCUSDT, 10 s windows (stream)", outputs)

    found = summary(run.alerts)
    assert found == expected_alerts(expected, closed)
    assert found == [("23:57:20", "critical", "buy"), ("23:57:30", "critical", "sell")]
    for alert in run.alerts:
        print(f"  alert {alert.severity}: {alert.message}")


def test_default_windows_of_spot_and_usdm_equal_the_raw_trades(
    spark: SparkSession, spot: list[RawTrade], usdm: list[RawTrade], tmp_path: Path
) -> None:
    detector = detector_with({})
    for name, trades, exchange, count in (("spot", spot, "binance", 12), ("USD-M", usdm, "binance-usdm", 6)):
        output = static_rows(spark, detector, events(trades, exchange), tmp_path / name)
        rows = sorted(output.collect(), key=start_ms)
        expected = expected_windows(trades, 60, 60)
        assert [start_ms(row) for row in rows] == sorted(expected)
        assert len(rows) == count
        assert_rows_match(rows, expected)
        assert detector.build_alerts(output).count() == 0  # the 30-window warm-up is never reached
        report(f"{name} BTCUSDT, 60 s windows (static)", rows)


def test_usdm_with_10_s_windows_equals_the_raw_trades(
    spark: SparkSession, usdm: list[RawTrade], tmp_path: Path
) -> None:
    detector = detector_with(SMALL_WINDOWS)
    output = static_rows(spark, detector, events(usdm, "binance-usdm"), tmp_path)
    rows = sorted(output.collect(), key=start_ms)
    expected = expected_windows(usdm, 10, 30)
    assert [start_ms(row) for row in rows] == sorted(expected)
    assert_rows_match(rows, expected)
    report("USD-M BTCUSDT, 10 s windows (static)", rows)
    alerts = detector.build_alerts(output).collect()
    found = summary(alerts)
    assert found == expected_alerts(expected, sorted(expected))
    assert found == [
        ("23:56:50", "medium", "buy"),
        ("23:58:20", "critical", "sell"),
        ("23:58:30", "critical", "buy"),
        ("23:58:50", "medium", "buy"),
    ]  # 23:57:50 (z -5.68) is one-sided by only -0.185: below min_imbalance
    for alert in sorted(alerts, key=lambda a: a.detected_at):
        print(f"  alert {alert.severity}: {alert.message}")
