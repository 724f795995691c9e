"""MOD-002 on a stream: hand-computed whale orders, alerts, late and split fills; the early path."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import Row, SparkSession

from coattail_detector_whale import WHALE_TRADES, WhaleDetector
from coattail_devstack.testing import run_detector_stream, run_early_stream, trade
from coattail_devstack.testing.stream import EventLike
from coattail_framework.alerts import as_parts, make_alert_id
from coattail_framework.config import CoattailConfig

T0 = datetime(2024, 8, 8, 23, 57, 53, 61_000, tzinfo=UTC)
SYMBOLS = {
    "BTC/USDT": {"binance": "BTCUSDT"},
    "BTC/USD": {"coinbase": "BTC-USD"},
    "ETH/BTC": {"coinbase": "ETH-BTC"},
}


def whale_detector(**settings: Any) -> WhaleDetector:
    detector = WhaleDetector()
    detector.configure(CoattailConfig.model_validate({"symbols": SYMBOLS, "modules": {"whale": settings}}))
    return detector


def at(offset_seconds: float) -> datetime:
    return T0 + timedelta(seconds=offset_seconds)


def raw(when: datetime, price: float, quantity: float, **fields: Any) -> dict[str, Any]:
    """A raw event row, for null fields a TradeEvent refuses."""
    row: dict[str, Any] = {
        "event_id": f"raw:{when.isoformat()}:{price}:{quantity}",
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "price": price,
        "quantity": quantity,
        "quote_volume": price * quantity,
        "side": "buy",
        "timestamp": when,
        "ingestion_timestamp": when + timedelta(milliseconds=100),
        "trade_id": None,
        "taker_order_id": None,
    }
    row.update(fields)
    return row


def whale_batches() -> list[list[EventLike]]:
    """Binance orders at T0 on both sides, Coinbase orders by taker order id, null and skipped fills."""
    first: list[EventLike] = [
        trade(T0, 60000, 1.0, trade_id=100),
        trade(T0, 60010, 1.0, trade_id=101),
        trade(T0, 60030, 0.5, trade_id=102),
        trade(T0, 60000, 5.0, trade_id=103, side="sell"),
        trade(T0, 59970, 5.0, trade_id=104, side="sell"),
        trade(T0, 60000, 2.0, trade_id=105),  # same ms and side as 100-102, but 103/104 came between
        # Coinbase: fills of one taker order share its match time; ids need not be consecutive
        trade(at(0.5), 60000, 10.0, exchange="coinbase", symbol="BTC-USD", trade_id=9001, taker_order_id="ord-1"),
        trade(at(0.5), 60060, 10.0, exchange="coinbase", symbol="BTC-USD", trade_id=9003, taker_order_id="ord-1"),
        trade(
            at(0.5),
            60000,
            2.0,
            side="sell",
            exchange="coinbase",
            symbol="BTC-USD",
            trade_id=9002,
            taker_order_id="ord-2",
        ),
        trade(at(0.7), 30, 70_000.0, exchange="coinbase", symbol="ETH-BTC", trade_id=77),  # quoted in BTC: skipped
        raw(at(1), 60000, 2.0, quote_volume=None),  # no trade id, no quote volume: price x quantity
        raw(at(1), 60000, 10.0, side=None, trade_id="500"),  # no taker side: skipped
        raw(at(1), 60000, 10.0, exchange=None, trade_id="501"),  # no exchange: skipped
    ]
    trailing: list[EventLike] = [trade(at(10), 60000, 0.001, trade_id=106)]
    return [first, trailing]


def micros(when: datetime) -> str:
    return str(int(when.timestamp()) * 1_000_000 + when.microsecond)


def whale_row(
    exchange: str,
    symbol: str,
    side: str,
    order_time: datetime,
    notional: float,
    base_quantity: float,
    fill_count: int,
    trade_ids: tuple[str | None, str | None],
    prices: tuple[float, float, float],
    impact_bps: float,
    taker_order_id: str | None = None,
) -> dict[str, Any]:
    return {
        "exchange": exchange,
        "symbol": symbol,
        "side": side,
        "order_time": order_time.replace(tzinfo=None),
        "notional": notional,
        "base_quantity": base_quantity,
        "fill_count": fill_count,
        "first_trade_id": trade_ids[0],
        "last_trade_id": trade_ids[1],
        "first_price": prices[0],
        "last_price": prices[1],
        "vwap_price": prices[2],
        "price_impact_bps": pytest.approx(impact_bps, abs=1e-9),
        "taker_order_id": taker_order_id,
    }


EXPECTED_WHALES = [
    whale_row("binance", "BTCUSDT", "buy", T0, 150_025.0, 2.5, 3, ("100", "102"), (60000, 60030, 60010), 5.0),
    whale_row("binance", "BTCUSDT", "sell", T0, 599_850.0, 10.0, 2, ("103", "104"), (60000, 59970, 59985), 5.0),
    whale_row("binance", "BTCUSDT", "buy", T0, 120_000.0, 2.0, 1, ("105", "105"), (60000, 60000, 60000), 0.0),
    whale_row(
        "coinbase",
        "BTC-USD",
        "buy",
        at(0.5),
        1_200_600.0,
        20.0,
        2,
        ("9001", "9003"),
        (60000, 60060, 60030),
        10.0,
        "ord-1",
    ),
    whale_row(
        "coinbase",
        "BTC-USD",
        "sell",
        at(0.5),
        120_000.0,
        2.0,
        1,
        ("9002", "9002"),
        (60000, 60000, 60000),
        0.0,
        "ord-2",
    ),
    whale_row("binance", "BTCUSDT", "buy", at(1), 120_000.0, 2.0, 1, (None, None), (60000, 60000, 60000), 0.0),
]


def ordered(rows: list[Row]) -> list[dict[str, Any]]:
    dicts = [row.asDict() for row in rows]
    return sorted(dicts, key=lambda r: (r["order_time"], r["exchange"], r["first_trade_id"] or ""))


def test_orders_rows_and_alerts_are_exact(spark: SparkSession, tmp_path: Path) -> None:
    detector = whale_detector()
    run = run_detector_stream(spark, detector, whale_batches(), tmp_path)

    assert ordered(run.outputs) == EXPECTED_WHALES
    assert run.outputs_by_batch[0] == run.outputs_by_batch[1] == []

    alerts = sorted(run.alerts, key=lambda a: (a.detected_at, a.exchange, a.message))
    assert [(a.exchange, a.symbol, a.severity, a.message) for a in alerts] == [
        ("binance", "BTCUSDT", "medium", "BTCUSDT binance: taker BUY order $120,000 in 1 fill, +0.0 bps impact"),
        ("binance", "BTCUSDT", "medium", "BTCUSDT binance: taker BUY order $150,025 in 3 fills, +5.0 bps impact"),
        ("binance", "BTCUSDT", "high", "BTCUSDT binance: taker SELL order $599,850 in 2 fills, +5.0 bps impact"),
        (
            "coinbase",
            "BTC-USD",
            "critical",
            "BTC-USD coinbase: taker BUY order $1,200,600 in 2 fills, +10.0 bps impact",
        ),
        ("coinbase", "BTC-USD", "medium", "BTC-USD coinbase: taker SELL order $120,000 in 1 fill, +0.0 bps impact"),
        ("binance", "BTCUSDT", "medium", "BTCUSDT binance: taker BUY order $120,000 in 1 fill, +0.0 bps impact"),
    ]
    assert {a.alert_type for a in alerts} == {"whale_trade"}
    assert {a.module_id for a in alerts} == {"MOD-002"}
    coinbase_buy = next(a for a in alerts if a.severity == "critical")
    assert coinbase_buy.detected_at == at(0.5).replace(tzinfo=None)
    assert coinbase_buy.ttl_epoch is None
    assert coinbase_buy.alert_id == make_alert_id(
        "MOD-002", *as_parts(["coinbase", "BTC-USD", "buy", micros(at(0.5)), "9001", "ord-1"])
    )
    details = json.loads(coinbase_buy.details)
    assert set(details) == set(WHALE_TRADES.fieldNames())
    assert (details["notional"], details["fill_count"], details["taker_order_id"]) == (1_200_600.0, 2, "ord-1")

    shuffled = [random.Random(7).sample(batch, len(batch)) for batch in whale_batches()]
    replay = run_detector_stream(spark, whale_detector(), shuffled, tmp_path / "replay")
    assert ordered(replay.outputs) == EXPECTED_WHALES
    assert sorted(a.alert_id for a in replay.alerts) == sorted(a.alert_id for a in alerts)
    assert len({a.alert_id for a in alerts}) == 6


def test_config_moves_the_thresholds(spark: SparkSession, tmp_path: Path) -> None:
    detector = whale_detector(min_notional_usd=500_000, thresholds={"high": 599_000, "critical": 1_300_000})
    run = run_detector_stream(spark, detector, whale_batches(), tmp_path)

    assert sorted((row.notional, row.fill_count) for row in run.outputs) == [(599_850.0, 2), (1_200_600.0, 2)]
    assert sorted((a.severity, a.exchange) for a in run.alerts) == [("high", "binance"), ("high", "coinbase")]


def test_an_order_split_across_batches_is_one_row_and_late_fills_are_dropped(
    spark: SparkSession, tmp_path: Path
) -> None:
    t1 = datetime(2024, 8, 9, 0, 1, tzinfo=UTC)

    def later(seconds: float) -> datetime:
        return t1 + timedelta(seconds=seconds)

    # Watermarks (max trade time - 2 s): after batch 0 t1 - 1 s, after 1 t1 + 4 s, after 2 t1 + 18 s.
    # Spark closes groups with the current watermark and drops fills at or before the previous one.
    batches: list[list[EventLike]] = [
        [trade(t1, 60000, 1, trade_id=200), trade(t1, 60000, 1, trade_id=201), trade(later(1), 10, 1, trade_id=210)],
        [trade(t1, 60000, 1, trade_id=202), trade(t1, 60060, 1, trade_id=203), trade(later(6), 10, 1, trade_id=300)],
        [trade(later(20), 10, 1, trade_id=400)],
        [
            trade(t1, 60000, 1, trade_id=204),  # same order, but at or before t1 + 4 s: late, dropped
            trade(later(2), 60000, 3, trade_id=250),  # a late whale: dropped too
            trade(later(21), 10, 1, trade_id=401),
        ],
    ]
    run = run_detector_stream(spark, whale_detector(), batches, tmp_path)

    assert ordered(run.outputs) == [
        whale_row("binance", "BTCUSDT", "buy", t1, 240_060.0, 4.0, 4, ("200", "203"), (60000, 60060, 60015), 10.0)
    ]
    assert [a.severity for a in run.alerts] == ["medium"]
    assert [len(run.outputs_by_batch[batch]) for batch in sorted(run.outputs_by_batch)] == [0, 0, 1, 0, 0]


# The early path (WhaleDetector.early_alerts through the job's early-query handler)


def by_id(alerts: list[Row]) -> dict[str, dict[str, Any]]:
    return {alert.alert_id: alert.asDict() for alert in alerts}


def messages(alerts: list[Row]) -> list[str]:
    return sorted(alert.message for alert in alerts)


def test_early_alerts_are_the_stateful_alerts_of_proven_orders(spark: SparkSession, tmp_path: Path) -> None:
    stateful = by_id(run_detector_stream(spark, whale_detector(), whale_batches(), tmp_path / "stateful").alerts)
    early = run_early_stream(spark, whale_detector(), whale_batches(), tmp_path / "early")

    # Batch 0: Coinbase ord-2 (9002 between ord-1's 9001 and 9003) only. Not proven: ord-1 (its fills
    # are two runs), and every Binance order: BTCUSDT has a fill without an id in the batch, which
    # the stateful query could add to any order of its group key (so BTCUSDT carries nothing either).
    assert messages(early.alerts_by_batch[0]) == [
        "BTC-USD coinbase: taker SELL order $120,000 in 1 fill, +0.0 bps impact",
    ]
    assert early.alerts_by_batch[1] == []  # 106 alone: 105 was not carried
    assert len(early.alerts) == 1
    for alert_id, alert in by_id(early.alerts).items():
        assert stateful[alert_id] == alert


def test_the_last_order_of_a_batch_waits_for_its_successor(spark: SparkSession, tmp_path: Path) -> None:
    batches: list[list[EventLike]] = [
        [trade(T0, 60000, 0.1, trade_id=1, side="sell"), trade(at(0.1), 60000, 3.0, trade_id=2)],
        [trade(at(0.2), 60000, 2.0, trade_id=3)],  # a new order (other time): 2 is complete
        [trade(at(0.2), 60000, 1.0, trade_id=4)],  # 4 continues 3 (same time and side)
        [trade(at(0.3), 60000, 0.1, trade_id=5, side="sell")],
        [trade(at(5), 60000, 0.1, trade_id=6)],  # moves the stateful query's watermark past both orders
    ]
    run = run_early_stream(spark, whale_detector(), batches, tmp_path)

    assert [messages(run.alerts_by_batch[batch]) for batch in range(5)] == [
        [],
        ["BTCUSDT binance: taker BUY order $180,000 in 1 fill, +0.0 bps impact"],
        [],  # 3-4 may go on
        ["BTCUSDT binance: taker BUY order $180,000 in 2 fills, +0.0 bps impact"],
        [],
    ]
    stateful = run_detector_stream(spark, whale_detector(), batches, tmp_path / "stateful")
    assert by_id(run.alerts) == by_id(stateful.alerts)
    assert len(stateful.alerts_by_batch[4]) == 0  # the stateful query emits them one batch later


def test_a_batch_of_one_trade_alerts_nothing(spark: SparkSession, tmp_path: Path) -> None:
    run = run_early_stream(spark, whale_detector(), [[trade(T0, 60000, 5.0, trade_id=7)]], tmp_path)

    assert run.alerts == []


def test_gaps_and_duplicates_leave_orders_to_the_stateful_query(spark: SparkSession, tmp_path: Path) -> None:
    batch: list[EventLike] = [
        trade(T0, 60000, 0.1, trade_id=10, side="sell"),
        trade(at(0.1), 60000, 3.0, trade_id=12),  # 11 missing: the order may have begun with it
        trade(at(0.2), 60000, 0.1, trade_id=13, side="sell"),
        trade(at(0.3), 60000, 3.0, trade_id=14),  # proven: 13 and 15 are other orders
        trade(at(0.4), 60000, 0.1, trade_id=15, side="sell"),
        trade(at(0.5), 60000, 0.5, trade_id=16),  # proven, but $30,000
        trade(at(0.6), 60000, 0.1, trade_id=17, side="sell"),
        trade(at(0.7), 60000, 3.0, trade_id=18),  # delivered twice
        trade(at(0.7), 60000, 3.0, trade_id=18),
        trade(at(0.8), 60000, 0.1, trade_id=19, side="sell"),
    ]
    run = run_early_stream(spark, whale_detector(), [batch], tmp_path)

    assert [(a.message, a.detected_at) for a in run.alerts] == [
        ("BTCUSDT binance: taker BUY order $180,000 in 1 fill, +0.0 bps impact", at(0.3).replace(tzinfo=None))
    ]


def test_a_fill_without_an_id_stops_the_early_path_of_its_instrument(spark: SparkSession, tmp_path: Path) -> None:
    first: list[EventLike] = [
        trade(T0, 60000, 0.1, trade_id=1, side="sell"),
        trade(at(0.1), 60000, 3.0, trade_id=2),  # proven by 1 and 3, but the stateful query may add the
        trade(at(0.2), 60000, 0.1, trade_id=3, side="sell"),
        raw(at(0.1), 60000, 1.0),  # fill without an id to 2's order (it does: $240,000 in 2 fills)
        trade(at(0.3), 60000, 3.0, trade_id=4),  # last order: not carried either
        trade(T0, 60000, 3.0, exchange="coinbase", symbol="BTC-USD", trade_id=50, side="sell"),
        trade(T0, 60000, 3.0, exchange="coinbase", symbol="BTC-USD", trade_id=51),  # other instrument: proven
        trade(T0, 60000, 3.0, exchange="coinbase", symbol="BTC-USD", trade_id=52, side="sell"),
    ]
    second: list[EventLike] = [trade(at(0.4), 60000, 0.1, trade_id=5, side="sell")]
    run = run_early_stream(spark, whale_detector(), [first, second], tmp_path)

    assert [a.message for a in run.alerts] == ["BTC-USD coinbase: taker BUY order $180,000 in 1 fill, +0.0 bps impact"]


def test_a_carry_is_dropped_when_the_early_query_restarts(spark: SparkSession, tmp_path: Path) -> None:
    first = [trade(T0, 60000, 0.1, trade_id=1, side="sell"), trade(at(0.1), 60000, 3.0, trade_id=2)]
    second = [trade(at(0.2), 60000, 0.1, trade_id=3, side="sell")]

    before = run_early_stream(spark, whale_detector(), [first], tmp_path / "run")
    after = run_early_stream(spark, whale_detector(), [first, second], tmp_path / "run")

    assert before.alerts == after.alerts == []  # 2 is left to the stateful query
