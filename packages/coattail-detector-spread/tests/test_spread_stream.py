"""MOD-003 on a stream: hand-computed spread rows and alerts, gates, late trades, quote equivalence."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import Row, SparkSession

from coattail_detector_spread import EXCHANGE_SPREADS, SpreadDetector
from coattail_devstack.testing import run_detector_stream, trade
from coattail_devstack.testing.stream import EventLike
from coattail_framework.alerts import as_parts, make_alert_id
from coattail_framework.config import CoattailConfig

W0 = datetime(2024, 8, 9, 0, 0, tzinfo=UTC)
SYMBOLS = {
    "BTC/USDT": {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT"},
    "BTC/USD": {"coinbase": "BTC-USD"},
    "ETH/USDT": {"binance": "ETHUSDT"},
}
VENUE_SYMBOL = {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT", "coinbase": "BTC-USD"}


def spread_detector(**settings: Any) -> SpreadDetector:
    detector = SpreadDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": {"spread": settings}}))
    return detector


def at(seconds: float) -> datetime:
    return W0 + timedelta(seconds=seconds)


def btc(seconds: float, exchange: str, price: float, quantity: float) -> EventLike:
    return trade(at(seconds), price, quantity, exchange=exchange, symbol=VENUE_SYMBOL[exchange])


def raw(seconds: float | None, price: float, quantity: float, **fields: Any) -> dict[str, Any]:
    """A raw event row, for null fields a TradeEvent refuses."""
    when = None if seconds is None else at(seconds)
    row: dict[str, Any] = {
        "event_id": f"raw:{seconds}:{price}",
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "price": price,
        "quantity": quantity,
        "quote_volume": price * quantity,
        "side": "buy",
        "timestamp": when,
        "ingestion_timestamp": when,
        "trade_id": None,
        "taker_order_id": None,
    }
    row.update(fields)
    return row


def spread_batches() -> list[list[EventLike]]:
    """30 s windows from 00:00 UTC: W0 three venues, W1 and W2 two, W3 thin, W4 quiet, W5 one venue; late trades."""
    windows: list[EventLike] = [
        btc(1, "binance", 60000, 1.0),
        btc(2, "binance", 60300, 1.0),
        btc(3, "binance-usdm", 60000, 0.5),
        btc(4, "coinbase", 60600, 1.0),
        trade(at(5), 3000, 10, symbol="ETHUSDT"),  # one venue only: no row
        btc(31, "binance", 60000, 1.0),
        raw(32, 60000, 1.0, quote_volume=None),  # quote volume from price x quantity
        raw(33, 90000, 1.0, exchange=None),  # no venue: skipped
        raw(34, 90000, 1.0, symbol="BTCUSDC"),  # not configured: skipped
        raw(None, 90000, 1.0, exchange="coinbase", symbol="BTC-USD"),  # no trade time: skipped
        btc(35, "coinbase", 61000, 1.0),
        btc(61, "binance", 60000, 1.0),
        btc(62, "coinbase", 62000, 1.0),
        btc(91, "binance", 60000, 0.1),  # 6,000 of quote volume: below min_quote_volume
        btc(92, "coinbase", 66000, 1.0),
        btc(155, "binance", 60000, 1.0),
    ]
    # Watermark (max trade time - 15 s) after each batch: 140 s, 195 s, 196 s. Spark drops a trade
    # whose window ended at or before the previous batch's watermark: W0 and W4 trades in the last batch.
    late: list[EventLike] = [
        btc(10, "coinbase", 70000, 1.0),
        btc(125, "binance", 60000, 1.0),
        btc(126, "coinbase", 60000, 1.0),
    ]
    return [windows, [btc(210, "binance", 60000, 0.001)], [btc(211, "binance", 60000, 0.001)], late]


def spread_row(
    window: int, a: tuple[str, float, float, int], b: tuple[str, float, float, int], symbol: str = "BTC/USD"
) -> dict[str, Any]:
    """Expected row; a and b are (exchange, vwap, quote volume, trade count)."""
    (exchange_a, vwap_a, quote_a, count_a), (exchange_b, vwap_b, quote_b, count_b) = a, b
    mid = (vwap_a + vwap_b) / 2
    return {
        "window_start": at(30 * window).replace(tzinfo=None),
        "window_end": at(30 * window + 30).replace(tzinfo=None),
        "symbol": symbol,
        "exchange_a": exchange_a,
        "symbol_a": VENUE_SYMBOL[exchange_a],
        "exchange_b": exchange_b,
        "symbol_b": VENUE_SYMBOL[exchange_b],
        "vwap_a": vwap_a,
        "vwap_b": vwap_b,
        "quote_volume_a": quote_a,
        "quote_volume_b": quote_b,
        "trade_count_a": count_a,
        "trade_count_b": count_b,
        "mid_price": mid,
        "spread_pct": abs(vwap_a - vwap_b) / mid * 100,
        "premium_bps": (vwap_b - vwap_a) / mid * 10_000,
    }


BINANCE_W0 = ("binance", 60150.0, 120_300.0, 2)
USDM_W0 = ("binance-usdm", 60000.0, 30_000.0, 1)
COINBASE_W0 = ("coinbase", 60600.0, 60_600.0, 1)
EXPECTED_SPREADS = [
    spread_row(0, BINANCE_W0, USDM_W0),
    spread_row(0, BINANCE_W0, COINBASE_W0),
    spread_row(0, USDM_W0, COINBASE_W0),
    spread_row(1, ("binance", 60000.0, 120_000.0, 2), ("coinbase", 61000.0, 61_000.0, 1)),
    spread_row(2, ("binance", 60000.0, 60_000.0, 1), ("coinbase", 62000.0, 62_000.0, 1)),
    spread_row(3, ("binance", 60000.0, 6_000.0, 1), ("coinbase", 66000.0, 66_000.0, 1)),
]


def ordered(rows: list[Row]) -> list[dict[str, Any]]:
    return sorted((row.asDict() for row in rows), key=lambda r: (r["window_start"], r["exchange_a"], r["exchange_b"]))


def test_spread_rows_and_alerts_are_exact(spark: SparkSession, tmp_path: Path) -> None:
    run = run_detector_stream(spark, spread_detector(), spread_batches(), tmp_path)

    assert ordered(run.outputs) == EXPECTED_SPREADS
    assert [len(run.outputs_by_batch[batch]) for batch in sorted(run.outputs_by_batch)] == [0, 6, 0, 0]

    alerts = sorted(run.alerts, key=lambda a: (a.detected_at, a.exchange))
    assert [(a.symbol, a.exchange, a.severity, a.message) for a in alerts] == [
        (
            "BTC/USD",
            "binance-usdm|coinbase",
            "medium",
            "BTC/USD binance-usdm vs coinbase: 1.00% spread, VWAP 60,000.00 vs 60,600.00 "
            "(30 s window from 2024-08-09 00:00:00 UTC)",
        ),
        (
            "BTC/USD",
            "binance|coinbase",
            "medium",
            "BTC/USD binance vs coinbase: 0.75% spread, VWAP 60,150.00 vs 60,600.00 "
            "(30 s window from 2024-08-09 00:00:00 UTC)",
        ),
        (
            "BTC/USD",
            "binance|coinbase",
            "high",
            "BTC/USD binance vs coinbase: 1.65% spread, VWAP 60,000.00 vs 61,000.00 "
            "(30 s window from 2024-08-09 00:00:30 UTC)",
        ),
        (
            "BTC/USD",
            "binance|coinbase",
            "critical",
            "BTC/USD binance vs coinbase: 3.28% spread, VWAP 60,000.00 vs 62,000.00 "
            "(30 s window from 2024-08-09 00:01:00 UTC)",
        ),
    ]
    first = alerts[1]
    assert (first.alert_type, first.module_id, first.detected_at) == (
        "spread_divergence",
        "MOD-003",
        datetime(2024, 8, 9, 0, 0, 30),
    )
    window_us = [str(int(at(s).timestamp()) * 1_000_000) for s in (0, 30)]
    assert first.alert_id == make_alert_id(
        "MOD-003", *as_parts(["BTC/USD", "binance", "BTCUSDT", "coinbase", "BTC-USD", *window_us])
    )
    details = json.loads(first.details)
    assert set(details) == set(EXCHANGE_SPREADS.fieldNames())
    assert (details["vwap_a"], details["vwap_b"], details["trade_count_a"]) == (60150.0, 60600.0, 2)

    shuffled = [random.Random(3).sample(batch, len(batch)) for batch in spread_batches()]
    replay = run_detector_stream(spark, spread_detector(), shuffled, tmp_path / "replay")
    assert ordered(replay.outputs) == EXPECTED_SPREADS
    assert sorted(a.alert_id for a in replay.alerts) == sorted(a.alert_id for a in alerts)
    assert len({a.alert_id for a in alerts}) == 4


def test_without_quote_equivalence_only_identical_symbols_are_compared(spark: SparkSession, tmp_path: Path) -> None:
    detector = spread_detector(quote_equivalents_enabled=False, thresholds={"low": 0.1}, min_quote_volume=30_000)
    run = run_detector_stream(spark, detector, spread_batches(), tmp_path)

    assert ordered(run.outputs) == [spread_row(0, BINANCE_W0, USDM_W0, symbol="BTC/USDT")]
    assert [(a.symbol, a.exchange, a.severity) for a in run.alerts] == [("BTC/USDT", "binance|binance-usdm", "low")]


def test_the_minimum_volume_gate_keeps_the_row_and_drops_the_alert(spark: SparkSession, tmp_path: Path) -> None:
    detector = spread_detector(quote_equivalents_enabled=False, thresholds={"low": 0.1}, min_quote_volume=30_000.01)
    rows = spark.createDataFrame([spread_row(0, BINANCE_W0, USDM_W0, symbol="BTC/USDT")], EXCHANGE_SPREADS)
    assert detector.build_alerts(rows).count() == 0
    assert spread_detector(thresholds={"low": 0.1}, min_quote_volume=30_000).build_alerts(rows).count() == 1
