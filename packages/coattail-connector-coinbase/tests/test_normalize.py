"""Normalisation of real Coinbase messages: exact fields, taker side inversion, errors by field."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from coattail_connector_coinbase import CoinbaseConnector, CoinbaseSimulator, normalize_match, normalize_rest_trade
from coattail_connector_coinbase.normalize import InvalidTradeError, check_trade_time

ByTrade = Callable[[str, int], dict[str, Any]]


@pytest.fixture
def by_trade(recorded_matches: list[dict[str, Any]]) -> Callable[[str, int], dict[str, Any]]:
    """The recorded message of one trade."""

    def find(product_id: str, trade_id: int) -> dict[str, Any]:
        (message,) = [m for m in recorded_matches if m["product_id"] == product_id and m["trade_id"] == trade_id]
        return message

    return find


def test_last_match_band_gbp_exact(by_trade: ByTrade) -> None:
    raw = by_trade("BAND-GBP", 881613)
    assert raw["type"] == "last_match"
    assert raw["side"] == "sell"
    (event,) = CoinbaseConnector().normalize(raw)
    assert event.event_id == "coinbase:BAND-GBP:881613"
    assert event.exchange == "coinbase"
    assert event.symbol == "BAND-GBP"
    assert event.side == "buy"  # the maker sold, so the taker bought
    assert event.price == Decimal("14.7775")
    assert event.quantity == Decimal("0.04")
    assert event.quote_volume == Decimal("0.591100")
    assert event.timestamp == datetime(2021, 4, 17, 16, 43, 30, 244075, tzinfo=UTC)
    assert event.ingestion_timestamp == event.timestamp
    assert event.trade_id == "881613"
    assert event.taker_order_id == "1da6ce16-c8da-4732-9f71-6049f4c6aaf8"


def test_match_skl_btc_maker_bought_so_taker_sold(by_trade: ByTrade) -> None:
    raw = by_trade("SKL-BTC", 280236)
    assert raw["type"] == "match"
    assert raw["side"] == "buy"
    event = normalize_match(raw)
    assert event.event_id == "coinbase:SKL-BTC:280236"
    assert event.side == "sell"
    assert event.price == Decimal("0.00001305")
    assert event.quantity == Decimal("1006")
    assert event.quote_volume == Decimal("0.01312830")
    assert event.timestamp == datetime(2021, 4, 17, 16, 43, 47, 750922, tzinfo=UTC)
    assert event.trade_id == "280236"
    assert event.taker_order_id == "4d301c11-c69a-4830-b912-176af07e5047"


def test_match_skl_usd_exact_with_ingestion_time(by_trade: ByTrade) -> None:
    raw = by_trade("SKL-USD", 1568300)
    received = datetime(2021, 4, 17, 17, 0, tzinfo=UTC)
    event = normalize_match(raw, exchange="coinbase-sandbox", ingestion_timestamp=received)
    assert event.event_id == "coinbase-sandbox:SKL-USD:1568300"
    assert event.exchange == "coinbase-sandbox"
    assert event.ingestion_timestamp == received
    expected_side = {"sell": "buy", "buy": "sell"}[raw["side"]]
    assert event.side == expected_side
    assert event.timestamp.microsecond == int(raw["time"][20:26])


def test_every_recorded_match_normalizes_exactly(recorded_matches: list[dict[str, Any]]) -> None:
    messages = recorded_matches
    events = [normalize_match(m) for m in messages]
    assert len(events) == 107
    assert sum(m["type"] == "last_match" for m in messages) == 10
    assert len({e.event_id for e in events}) == 107
    for message, event in zip(messages, events, strict=True):
        assert event.quote_volume == Decimal(message["price"]) * Decimal(message["size"])
        assert event.side != message["side"]
        assert event.model_dump_json() == normalize_match(message).model_dump_json()


def test_microseconds_and_offsets_parsed_to_utc(by_trade: ByTrade) -> None:
    raw = {**by_trade("SKL-GBP", 82007), "time": "2021-04-17T18:43:29.5+02:00"}
    assert normalize_match(raw).timestamp == datetime(2021, 4, 17, 16, 43, 29, 500000, tzinfo=UTC)


def test_quote_volume_exact_beyond_default_decimal_context(by_trade: ByTrade) -> None:
    raw = {**by_trade("SKL-GBP", 82007), "price": "12345.123456789012", "size": "0.12345678901234567891"}
    assert normalize_match(raw).quote_volume == Decimal("1524.08930193616060230429440176813692")


def test_quote_volume_over_38_digits_is_rejected_by_name(by_trade: ByTrade) -> None:
    raw = {**by_trade("SKL-GBP", 82007), "price": "1234567890.1234567891", "size": "0.12345678901234567891"}
    with pytest.raises(ValueError, match=r"price x size: .*38 digits"):
        normalize_match(raw)


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("2021-04-17T16:43:30.244075Z", datetime(2021, 4, 17, 16, 43, 30, 244075, tzinfo=UTC)),
        ("2021-04-17T16:43:30Z", datetime(2021, 4, 17, 16, 43, 30, tzinfo=UTC)),
        ("2021-04-17T16:43:30+00:00", datetime(2021, 4, 17, 16, 43, 30, tzinfo=UTC)),
        ("2021-04-17T16:43:30.244075+00:00", datetime(2021, 4, 17, 16, 43, 30, 244075, tzinfo=UTC)),
        ("2021-04-17T16:43:30.244075-00:00", datetime(2021, 4, 17, 16, 43, 30, 244075, tzinfo=UTC)),
        ("2021-04-17T16:43:30.2Z", datetime(2021, 4, 17, 16, 43, 30, 200000, tzinfo=UTC)),
        ("2021-04-17T16:43:30.244075999Z", datetime(2021, 4, 17, 16, 43, 30, 244075, tzinfo=UTC)),
        ("2021-04-17T12:13:30.244075-04:30", datetime(2021, 4, 17, 16, 43, 30, 244075, tzinfo=UTC)),
        ("2020-02-29T23:59:59.999999Z", datetime(2020, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2021-01-01T00:30:00.000000+01:00", datetime(2020, 12, 31, 23, 30, tzinfo=UTC)),
    ],
)
def test_time_forms_parse_to_the_same_utc_instant(time: str, expected: datetime, by_trade: ByTrade) -> None:
    event = normalize_match({**by_trade("BAND-GBP", 881613), "time": time})
    assert event.timestamp == expected
    assert event.timestamp.tzinfo is UTC
    assert event.ingestion_timestamp is event.timestamp


NOT_A_DATE = "time is not a valid date/time: {time!r} ({reason}"
NOT_ISO = "time must be ISO 8601 with a zone like 2021-04-17T16:43:30.244075Z, got {time!r}"


@pytest.mark.parametrize(
    ("time", "error"),
    [
        ("2021-02-30T16:43:30.123456Z", NOT_A_DATE.replace("{reason}", "day is out of range for month")),
        ("2021-02-29T16:43:30.123456Z", NOT_A_DATE.replace("{reason}", "day is out of range for month")),
        ("2021-04-17T24:00:00.000000Z", NOT_A_DATE.replace("{reason}", "hour must be in 0..23")),
        ("2021-04-17T16:43:30.244075", NOT_ISO),
        ("2021-04-17 16:43:30.244075Z", NOT_ISO),
        ("2021-04-17T16:43:30,244075Z", NOT_ISO),
        ("2021-W15-6T16:43:30.244075Z", NOT_ISO),
        ("20210417T164330.244075Z", NOT_ISO),
        ("2021-04-17T16:43:30.1234567890Z", NOT_ISO),
        ("2021-04-17T16:43:30.244075z", NOT_ISO),
        ("2021-04-17T16:43:30.244075Z\n", NOT_ISO),
        (1618677810, "time must be an ISO 8601 string, got {time!r}"),
        (None, "time must be an ISO 8601 string, got {time!r}"),
    ],
)
def test_invalid_time_is_rejected_with_the_reason(time: object, error: str, by_trade: ByTrade) -> None:
    with pytest.raises(ValueError, match=re.escape(error.format(time=time))):
        normalize_match({**by_trade("BAND-GBP", 881613), "time": time})


def test_unusual_forms_of_every_recorded_match_give_the_same_event(recorded_matches: list[dict[str, Any]]) -> None:
    """Messages off the usual form (offset time, string trade id, read-only mapping) give the same events."""
    for message in recorded_matches:
        event = normalize_match(message)
        variants: list[Mapping[str, Any]] = [
            {**message, "time": message["time"].replace("Z", "+00:00")},
            {**message, "trade_id": str(message["trade_id"])},
            MappingProxyType(message),
        ]
        for variant in variants:
            other = normalize_match(variant)
            assert repr(other) == repr(event)
            assert other.model_dump_json() == event.model_dump_json()
            assert other.model_fields_set == event.model_fields_set
            assert other.timestamp.tzinfo is event.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": "abc"}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": 14.7}, "price"),
        ({"size": "0"}, "size"),
        ({"size": "NaN"}, "size"),
        ({"side": "up"}, "side"),
        ({"time": "2021-04-17 16:43:30"}, "time"),
        ({"time": "2021-02-30T16:43:30.1Z"}, "time"),
        ({"trade_id": None}, "trade_id"),
        ({"trade_id": True}, "trade_id"),
        ({"sequence": "x"}, "sequence"),
        ({"taker_order_id": ""}, "taker_order_id"),
        ({"product_id": "btc-usd"}, "product_id"),
        ({"product_id": None}, "product_id"),
        ({"type": ["match"]}, "type"),
        ({"side": ["sell"]}, "side"),
        ({"trade_id": "\u00b2"}, "trade_id"),
        ({"price": "1E+600000", "size": "1E+600000"}, "price must be a plain decimal string"),
        ({"price": "1234567890123456789012345678901234567890"}, "price: Decimal input should have no more than 38"),
    ],
)
def test_invalid_match_names_the_field(
    change: dict[str, Any], field: str, by_trade: Callable[[str, int], dict[str, Any]]
) -> None:
    raw = {**by_trade("BAND-GBP", 881614), **change}
    with pytest.raises(ValueError, match=field):
        normalize_match(raw)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price": "+1.5"}, "number_format"),
        ({"price": " 1.5"}, "number_format"),
        ({"price": "1.5 "}, "number_format"),
        ({"size": "1_000"}, "number_format"),
        ({"size": "\u0661\u0662"}, "number_format"),  # Arabic-Indic digits
        ({"price": "1e37"}, "number_format"),
        ({"price": "1E+999999999"}, "number_format"),
        ({"price": "NaN"}, "number_format"),
        ({"size": "Infinity"}, "number_format"),
        ({"price": "-0.5"}, "number_format"),
        ({"price": ".5"}, "number_format"),
        ({"price": "5."}, "number_format"),
        ({"price": 14.7}, "number_format"),
        ({"price": "0.000"}, "field"),
        ({"trade_id": "\u0661\u0662"}, "field"),
        ({"time": "9999-12-31T23:00:00-05:00"}, "time_range"),
        ({"time": "2009-12-31T23:59:59.999999Z"}, "time_range"),
        ({"time": "0001-01-01T00:00:00.000000Z"}, "time_range"),
        ({"time": "yesterday"}, "time_format"),
        ({"taker_order_id": "ab\ud800cd"}, "encoding"),
        ({"taker_order_id": "\udfff"}, "encoding"),
    ],
)
def test_numbers_times_and_text_outside_the_documented_form_are_rejected_by_reason(
    change: dict[str, Any], reason: str, by_trade: ByTrade
) -> None:
    with pytest.raises(InvalidTradeError) as raised:
        normalize_match({**by_trade("BAND-GBP", 881614), **change})
    assert raised.value.reason == reason


def test_documented_forms_are_still_taken(by_trade: ByTrade) -> None:
    raw = {**by_trade("BAND-GBP", 881614), "price": "67000", "size": "0.00000001", "time": "2010-01-01T00:00:00Z"}
    event = normalize_match(raw)
    assert (event.price, event.quantity) == (Decimal("67000"), Decimal("0.00000001"))
    assert event.timestamp == datetime(2010, 1, 1, tzinfo=UTC)
    unicode_order = normalize_match({**raw, "taker_order_id": "\u00e9t\u00e9"})
    assert unicode_order.taker_order_id == "\u00e9t\u00e9"


def test_trade_time_window_around_receive_time() -> None:
    received = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    ahead, behind = timedelta(seconds=60), timedelta(hours=24)
    check_trade_time(received + ahead, received, ahead=ahead, behind=behind)
    check_trade_time(received - behind, received, ahead=ahead, behind=behind)
    for absurd in (received + ahead + timedelta(microseconds=1), received - behind - timedelta(microseconds=1)):
        with pytest.raises(InvalidTradeError) as raised:
            check_trade_time(absurd, received, ahead=ahead, behind=behind)
        assert raised.value.reason == "time_window"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "subscriptions", "channels": []},
        {"type": "heartbeat", "last_trade_id": 1, "product_id": "BTC-USD", "sequence": 2, "time": "x"},
        {"type": "l2update", "product_id": "BTC-USD", "changes": []},
        {"type": "ticker", "product_id": "BTC-USD", "trade_id": 5, "price": "1"},
        {"type": "snapshot", "product_id": "BTC-USD", "bids": [], "asks": []},
        {"type": ["match"], "product_id": "BTC-USD"},
        {"product_id": "BTC-USD"},
    ],
)
def test_non_trade_messages_give_nothing(message: dict[str, Any]) -> None:
    assert CoinbaseConnector().normalize(message) == []


def test_rest_trade_has_no_taker_order_id(by_trade: ByTrade) -> None:
    item = {
        "time": "2021-04-17T16:43:30.244075Z",
        "trade_id": 881613,
        "price": "14.7775",
        "size": "0.04",
        "side": "sell",
    }
    event = normalize_rest_trade("BAND-GBP", item)
    assert event == normalize_match(by_trade("BAND-GBP", 881613)).model_copy(update={"taker_order_id": None})


def test_entry_point_and_defaults() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="coattail.connectors") if e.name == "coinbase"]
    connector_class = entry.load()
    assert connector_class is CoinbaseConnector
    assert connector_class.simulator_class is CoinbaseSimulator
    connector = connector_class()
    assert connector.settings.url == "wss://ws-feed.exchange.coinbase.com"
    assert connector.settings.rest_url == "https://api.exchange.coinbase.com"
    assert connector.health_check() is False  # nothing read yet
    assert connector.stats.as_dict()["malformed"] == 0
