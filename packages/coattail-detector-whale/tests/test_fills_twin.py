"""``fills.taker_orders`` (Python) gives exactly the orders of MOD-002's Spark expressions.

Both run on the same trades: the bundled BTCUSDT recording, and seeded random fills built to
hit every branch (shared trade times, gaps in ids, unnumbered and non-integer ids, taker order
ids, missing quote volumes, skipped fills). Orders must agree field for field, doubles
included (``==``, not approx): MOD-008 relies on them being MOD-002's orders.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql import SparkSession

from coattail_detector_whale import WhaleDetector
from coattail_detector_whale.fills import Fill, TakerOrder, taker_orders
from coattail_framework.config import CoattailConfig
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

from .test_real_data import SPOT_TRADES, archive_rows

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2024, 8, 8, 23, 57, 53, tzinfo=UTC)


def micros(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def spark_orders(spark: SparkSession, rows: list[dict[str, Any]]) -> list[TakerOrder]:
    """MOD-002's orders of ``rows`` (every order: the minimum is one cent), as ``TakerOrder``s."""
    detector = WhaleDetector()
    symbols = {"BTC/USDT": {"binance": "BTCUSDT"}}
    detector.configure(
        CoattailConfig.model_validate({"symbols": symbols, "modules": {"whale": {"min_notional_usd": 0.01}}})
    )
    frame = spark.createDataFrame([tuple(row.get(n) for n in UNIFIED_TRADE_EVENT.fieldNames()) for row in rows],
                                  UNIFIED_TRADE_EVENT)  # fmt: skip
    found = [
        TakerOrder(
            side=row.side,
            event_us=micros(row.order_time.replace(tzinfo=UTC)),
            taker_order_id=row.taker_order_id,
            notional=row.notional,
            base_quantity=row.base_quantity,
            fill_count=row.fill_count,
            first_trade_id=row.first_trade_id,
            last_trade_id=row.last_trade_id,
            first_price=row.first_price,
            last_price=row.last_price,
            vwap_price=row.vwap_price,
            price_impact_bps=row.price_impact_bps,
        )
        for row in detector.process(frame).collect()
    ]
    return sorted(found, key=lambda o: (o.event_us, o.side, o.taker_order_id or "", o.first_trade_id or ""))


def python_orders(rows: list[dict[str, Any]]) -> list[TakerOrder]:
    fills = [
        Fill(
            micros(row["timestamp"]),
            row["side"],
            row["taker_order_id"],
            row["trade_id"],
            row["price"],
            row["quantity"],
            row["quote_volume"],
        )
        for row in rows
    ]
    orders = [order for order in taker_orders(fills) if order.notional >= 0.01]
    return sorted(orders, key=lambda o: (o.event_us, o.side, o.taker_order_id or "", o.first_trade_id or ""))


def random_fills(seed: int, count: int) -> list[dict[str, Any]]:
    """Hostile but valid-typed fills: few distinct times, so groups collide and split."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        when = T0 + timedelta(milliseconds=rng.randrange(6))
        trade_id = rng.choice(
            [str(1000 + rng.randrange(40)), str(1000 + index), None, f"x{rng.randrange(5)}", "0" * 19, "12\n", "-3"]
        )
        price = rng.choice([60_000.0, 60_000.5, 59_999.25, 0.0, -1.0, 1e-9])
        quantity = rng.choice([0.001, 0.5, 2.0, 0.0, 3.3333333])
        rows.append(
            {
                "event_id": f"fuzz:{seed}:{index}",
                "exchange": "binance",
                "symbol": "BTCUSDT",
                "price": price,
                "quantity": quantity,
                "quote_volume": rng.choice([None, price * quantity, price * quantity * 1.0000001]),
                "side": rng.choice(["buy", "sell", "buy", "unknown", None]),
                "timestamp": when,
                "ingestion_timestamp": when,
                "trade_id": trade_id,
                "taker_order_id": rng.choice([None, None, "o-1", "o-2"]),
            }
        )
    return rows


def test_the_recording_gives_the_same_orders_both_ways(spark: SparkSession) -> None:
    rows = archive_rows(SPOT_TRADES)
    expected = spark_orders(spark, rows)
    assert len(expected) > 5_000  # every taker order of the recording, not only the whales
    assert python_orders(rows) == expected
    assert sum(order.notional >= 100_000 for order in expected) == 36


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seeded_random_fills_give_the_same_orders_both_ways(spark: SparkSession, seed: int) -> None:
    rows = random_fills(seed, 400)
    expected = spark_orders(spark, rows)
    assert len(expected) > 20
    assert python_orders(rows) == expected
