"""TradeEvent: what it accepts, what it rejects (naming the field), and its JSON wire form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from coattail_framework.events import TradeEvent

VALID: dict[str, Any] = {
    "event_id": "binance:BTCUSDT:3737284470",
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "price": Decimal("61009.99"),
    "quantity": Decimal("0.00123"),
    "quote_volume": Decimal("75.0442877"),
    "side": "sell",
    "timestamp": datetime(2024, 8, 8, 23, 54, 15, 208000, tzinfo=UTC),
    "ingestion_timestamp": datetime(2024, 8, 8, 23, 54, 16, 400000, tzinfo=UTC),
    "trade_id": "3737284470",
}


def test_json_round_trip_keeps_exact_values() -> None:
    event = TradeEvent(**VALID)
    wire = event.to_json()
    assert '"timestamp":"2024-08-08T23:54:15.208000Z"' in wire
    assert '"price":61009.99' in wire
    assert TradeEvent.model_validate_json(wire) == event
    assert event.partition_key == "BTCUSDT"


def test_other_time_zones_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    event = TradeEvent(**{**VALID, "timestamp": datetime(2024, 8, 9, 1, 54, 15, tzinfo=plus_two)})
    assert event.timestamp == datetime(2024, 8, 8, 23, 54, 15, tzinfo=UTC)
    assert event.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("price", Decimal("0"), "greater than 0"),
        ("quantity", Decimal("-1"), "greater than 0"),
        ("price", Decimal("NaN"), "finite"),
        ("side", "BUY", "'buy' or 'sell'"),
        ("symbol", "btcusdt", "pattern"),
        ("exchange", "Binance", "pattern"),
        ("event_id", "", "at least 1 character"),
        ("timestamp", datetime(2024, 8, 8, 23, 54), "timezone-aware"),
    ],
)
def test_rejects_what_the_schema_cannot_hold(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        TradeEvent(**{**VALID, field: value})
    problems = error.value.errors()
    assert [problem["loc"] for problem in problems] == [(field,)]
    assert message in problems[0]["msg"]


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError) as error:
        TradeEvent(**{**VALID, "maker_order_id": "x"})
    assert error.value.errors()[0]["loc"] == ("maker_order_id",)
