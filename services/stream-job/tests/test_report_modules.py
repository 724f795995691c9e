"""The replay report's sections of the medium and large tier modules, from hand-built rows (no Spark)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from coattail_stream_job.replay.report import summary_sections

T0 = datetime(2024, 8, 8, 23, 57, tzinfo=UTC)
SUMMARY: dict[str, Any] = {
    "events": {"published": 0, "read": 0, "valid": 0, "invalid": 0, "invalid_by_rule": {}, "warnings_by_rule": {}},
    "late_rows": {},
    "table_rows": {},
    "alerts": {"by_module": {}},
}


def section(tables: dict[str, list[dict[str, Any]]], title: str) -> list[list[str]] | None:
    found = [rows for name, _, rows in summary_sections(SUMMARY, tables, {"coinbase": ["BTC-USD"]}) if name == title]
    return found[0] if found else None


def flow(minute: int, exchange: str, symbol: str, buy: float, sell: float, z: float | None) -> dict[str, Any]:
    return {
        "window_start": T0 + timedelta(minutes=minute),
        "exchange": exchange,
        "symbol": symbol,
        "buy_quote_volume": buy,
        "sell_quote_volume": sell,
        "imbalance": (buy - sell) / (buy + sell),
        "net_flow_z": z,
        "baseline_size": 30,
    }


def test_flow_imbalance_windows_are_shown_by_the_size_of_their_z_score_unscored_last() -> None:
    rows = [
        flow(0, "binance", "BTCUSDT", 300_000, 100_000, 2.0),
        flow(1, "binance", "BTCUSDT", 100_000, 700_000, -5.5),
        flow(2, "coinbase", "BTC-USD", 50_000, 50_000, None),
    ]
    assert section({"flow_imbalance": rows}, "Strongest taker flow imbalances") == [
        ["2024-08-08 23:58:00", "binance BTCUSDT", "$100.0K", "$700.0K", "-0.75", "-5.50", "30"],
        ["2024-08-08 23:57:00", "binance BTCUSDT", "$300.0K", "$100.0K", "+0.50", "+2.00", "30"],
        ["2024-08-08 23:59:00", "coinbase BTC-USD [SYNTHETIC]", "$50.0K", "$50.0K", "+0.00", "n/a", "30"],
    ]
    assert section({}, "Strongest taker flow imbalances") is None


def sequence(minute: int, clips: int, total: float, cv: float) -> dict[str, Any]:
    return {
        "sequence_start": T0 + timedelta(minutes=minute),
        "sequence_end": T0 + timedelta(minutes=minute + 5),
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "side": "buy",
        "clip_count": clips,
        "clip_base_quantity": 0.5,
        "total_notional": total,
        "interval_mean_seconds": 20.0,
        "interval_cv": cv,
        "regular": cv <= 0.35,
        "price_drift_bps": -32.33,
    }


def test_split_order_sequences_are_shown_largest_first() -> None:
    rows = [sequence(0, 16, 493_551.23, 0.268), sequence(2, 18, 555_148.14, 0.5)]
    assert section({"split_order_sequences": rows}, "Split-order sequences") == [
        ["2024-08-08 23:59:00", "2024-08-09 00:04:00", "binance BTCUSDT", "buy", "18", "0.5", "$555.1K", "20.0 s",
         "0.50", "no", "-32.3"],
        ["2024-08-08 23:57:00", "2024-08-09 00:02:00", "binance BTCUSDT", "buy", "16", "0.5", "$493.6K", "20.0 s",
         "0.27", "yes", "-32.3"],
    ]  # fmt: skip


def test_lead_lag_windows_are_shown_in_time_order() -> None:
    row = {
        "window_end": T0 + timedelta(minutes=3),
        "symbol": "BTC/USDT",
        "exchange_a": "binance",
        "symbol_a": "BTCUSDT",
        "exchange_b": "binance-usdm",
        "symbol_b": "BTCUSDT",
        "lag_seconds": -0.1,
        "leader": "binance-usdm",
        "correlation_at_lag": 0.770,
        "correlation_at_zero": 0.178,
        "significant": True,
    }
    later = {**row, "window_end": T0 + timedelta(minutes=4), "lag_seconds": 0.0, "leader": None, "significant": False}
    assert section({"lead_lag": [later, row]}, "Lead-lag between venues") == [
        ["2024-08-09 00:00:00", "BTC/USDT", "binance BTCUSDT / binance-usdm BTCUSDT", "-0.1 s", "binance-usdm",
         "+0.770", "+0.178", "yes"],
        ["2024-08-09 00:01:00", "BTC/USDT", "binance BTCUSDT / binance-usdm BTCUSDT", "+0 s", "none", "+0.770",
         "+0.178", "no"],
    ]  # fmt: skip
