"""The stateful detectors' shared plan (``keyed_state``): static input sees the whole input's newest trade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from pyspark.sql import SparkSession
from pyspark.sql.types import LongType, StringType, StructField, StructType

from coattail_framework.keyed_state import event_rows, keyed_state, watermark_ms
from coattail_framework.schemas import UNIFIED_TRADE_EVENT
from coattail_framework.stateful import static_watermark_us

T0 = datetime(2024, 8, 8, 23, 58, tzinfo=UTC)
OUT = StructType([StructField("symbol", StringType()), StructField("rows", LongType()), StructField("wm", LongType())])
STATE = StructType([StructField("state_json", StringType())])


def row(symbol: str, seconds: float) -> tuple[Any, ...]:
    values = {
        "event_id": f"{symbol}:{seconds}",
        "exchange": "binance",
        "symbol": symbol,
        "price": 1.0,
        "quantity": 1.0,
        "quote_volume": 1.0,
        "side": "buy",
        "timestamp": T0 + timedelta(seconds=seconds),
        "ingestion_timestamp": T0,
        "trade_id": "1",
        "taker_order_id": None,
    }
    return tuple(values[name] for name in UNIFIED_TRADE_EVENT.fieldNames())


def test_static_input_puts_every_key_watermark_at_the_whole_inputs_newest_trade(spark: SparkSession) -> None:
    def batch(key: tuple[Any, ...], frame: Any) -> Any:
        return pd.DataFrame({"symbol": [key[0]], "rows": [len(frame)], "wm": [static_watermark_us(frame, 2_000_000)]})

    def never(*_: Any) -> Any:
        raise AssertionError("a static input must not reach the state function")

    trades = spark.createDataFrame([row("AAA", 1), row("AAA", 5), row("BBB", 60)], UNIFIED_TRADE_EVENT)
    rows = event_rows(trades, delay_ms=watermark_ms(2.0), keys=("symbol",), columns=("price",))
    assert rows.columns == ["symbol", "timestamp", "event_us", "price"]
    out = keyed_state(rows, ("symbol",), streaming=False, state_function=never, batch_function=batch,
                      output_schema=OUT, state_schema=STATE, static_newest=True)  # fmt: skip
    newest_us = int((T0 + timedelta(seconds=60)).timestamp() * 1_000_000)
    assert sorted(tuple(r) for r in out.collect()) == [
        ("AAA", 2, newest_us - 2_000_000),
        ("BBB", 1, newest_us - 2_000_000),
    ]
