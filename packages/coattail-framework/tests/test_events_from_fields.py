"""TradeEvent.from_fields: the same event, or the same ValidationError, as TradeEvent(...)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter, ValidationError

from coattail_framework.events import PositiveDecimal, TradeEvent

VALID: dict[str, Any] = {
    "event_id": "coinbase:BTC-USD:3737284470",
    "exchange": "coinbase",
    "symbol": "BTC-USD",
    "price": Decimal("61009.99"),
    "quantity": Decimal("0.00123"),
    "quote_volume": Decimal("75.0442877"),
    "side": "sell",
    "timestamp": datetime(2024, 8, 8, 23, 54, 15, 208000, tzinfo=UTC),
    "ingestion_timestamp": datetime(2024, 8, 8, 23, 54, 16, 400000, tzinfo=UTC),
    "trade_id": "3737284470",
    "taker_order_id": "dd068ce5-f175-4396-bae1-a1db56d209f5",
}


def _same(fields: dict[str, Any]) -> TradeEvent:
    """from_fields(**fields), checked against TradeEvent(**fields) in every observable way."""
    try:
        expected = TradeEvent(**fields)
    except ValidationError as error:
        rejected: ValidationError = error
    else:
        event = TradeEvent.from_fields(**fields)
        _assert_identical(event, expected)
        return event
    with pytest.raises(ValidationError) as caught:
        TradeEvent.from_fields(**fields)
    assert caught.value.errors(include_context=False) == rejected.errors(include_context=False)
    assert str(caught.value) == str(rejected)
    raise caught.value


def _assert_identical(event: TradeEvent, expected: TradeEvent) -> None:
    assert type(event) is TradeEvent
    assert event == expected
    assert list(event.__dict__.items()) == list(expected.__dict__.items())
    assert event.model_fields_set == expected.model_fields_set
    assert event.__pydantic_extra__ == expected.__pydantic_extra__
    assert event.__pydantic_private__ == expected.__pydantic_private__
    assert event.to_json() == expected.to_json()
    assert repr(event) == repr(expected)
    assert hash(event) == hash(expected)
    assert event.timestamp.tzinfo is UTC
    assert event.ingestion_timestamp.tzinfo is UTC
    with pytest.raises(ValidationError):
        event.price = Decimal(1)  # type: ignore[misc]  # frozen like any TradeEvent


def test_valid_fields_give_the_same_event() -> None:
    _same(VALID)
    _same({**VALID, "trade_id": None, "taker_order_id": None, "side": "buy"})
    copied = TradeEvent.from_fields(**VALID).model_copy(update={"side": "buy"})
    assert copied == TradeEvent(**{**VALID, "side": "buy"})


@pytest.mark.parametrize(
    "changes",
    [
        {"price": Decimal("0")},
        {"quantity": Decimal("-1")},
        {"price": Decimal("NaN")},
        {"price": Decimal("sNaN")},
        {"quote_volume": Decimal("Infinity")},
        {"quote_volume": Decimal("152415787.532388367526596557677488187881")},  # 39 digits
        {"price": Decimal("1E+40")},
        {"quantity": Decimal("1E-40")},
        {"side": "BUY"},
        {"side": None},
        {"symbol": "btc-usd"},
        {"symbol": "BTC-USD\n"},
        {"symbol": ["BTC-USD"]},
        {"exchange": "Coinbase"},
        {"exchange": {"coinbase": 1}},
        {"event_id": ""},
        {"event_id": "x" * 257},
        {"trade_id": ""},
        {"trade_id": "1" * 129},
        {"taker_order_id": 7},
        {"timestamp": datetime(2024, 8, 8, 23, 54)},
        {"ingestion_timestamp": "not a time"},
    ],
)
def test_invalid_fields_give_the_same_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _same({**VALID, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"timestamp": datetime(2024, 8, 9, 1, 54, 15, tzinfo=timezone(timedelta(hours=2)))},
        {"ingestion_timestamp": datetime(2024, 8, 8, 23, 54, tzinfo=ZoneInfo("UTC"))},
        {"price": "61009.99", "quantity": 0.5, "quote_volume": 3},
        {"quote_volume": Decimal("1" * 38)},  # 38 digits: valid, but past the plain bound
        {"price": Decimal("0." + "0" * 35 + "1")},
        {"event_id": "x" * 256, "trade_id": "1" * 128},
    ],
)
def test_values_validation_converts_or_keeps_give_the_same_event(changes: dict[str, Any]) -> None:
    _same({**VALID, **changes})


def test_plain_decimal_strings_are_always_within_max_digits() -> None:
    """The fast path's premise: a finite positive Decimal whose str has <= 37 chars and no E passes."""
    adapter = TypeAdapter(PositiveDecimal)
    generator = random.Random(20240808)
    checked = 0
    while checked < 20_000:
        digits = "".join(generator.choice("0123456789") for _ in range(generator.randint(1, 40)))
        point = generator.randint(0, len(digits))
        value = Decimal(f"{digits[:point]}.{digits[point:]}" if point < len(digits) else digits)
        text = str(value)
        if value > 0 and len(text) <= 37 and "E" not in text:
            assert adapter.validate_python(value) == value
            checked += 1
    for text in ["9" * 37, "0." + "0" * 35 + "1", "9" * 36 + ".9", "0.000001"]:
        assert adapter.validate_python(Decimal(text)) == Decimal(text)
