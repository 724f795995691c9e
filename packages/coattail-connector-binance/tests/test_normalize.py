"""normalize: exact output for real recorded messages, hand-checked, and its error paths."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coattail_connector_binance import BinanceConnector, message_kind, normalize_message
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import read_recording


def _line(path: Path, predicate: str) -> dict[str, Any]:
    for message in read_recording(path):
        if predicate in message.payload:
            decoded: dict[str, Any] = json.loads(message.payload)
            return decoded
    raise AssertionError(f"no line with {predicate!r} in {path}")


def test_spot_trade_taker_sold(ws_data: Path) -> None:
    # {"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000",
    #  "q":"0.02000000","T":1723161255342,"m":true,"M":true}: buyer was maker -> taker sold.
    raw = _line(ws_data / "spot_btcusdt_20240808.gz", '"t":3735683259')
    received = datetime(2024, 8, 8, 23, 54, 14, 87896, tzinfo=UTC)
    (event,) = BinanceConnector().normalize(raw, received_at=received)
    assert event == TradeEvent(
        event_id="binance:BTCUSDT:3735683259",
        exchange="binance",
        symbol="BTCUSDT",
        price=Decimal("61837.63"),
        quantity=Decimal("0.02"),
        quote_volume=Decimal("1236.7526"),
        side="sell",
        timestamp=datetime(2024, 8, 8, 23, 54, 15, 342000, tzinfo=UTC),
        ingestion_timestamp=received,
        trade_id="3735683259",
    )
    assert str(event.quote_volume) == "1236.7526000000000000"  # exact product of the decimal strings


def test_spot_trade_taker_bought(ws_data: Path) -> None:
    raw = _line(ws_data / "spot_btcusdt_20240808.gz", '"t":3735683305')
    (event,) = normalize_message(raw)
    assert event.side == "buy"
    assert (event.price, event.quantity, event.quote_volume) == (
        Decimal("61828.02"),
        Decimal("0.0081"),
        Decimal("500.806962"),
    )
    assert event.timestamp == datetime(2024, 8, 8, 23, 54, 15, 856000, tzinfo=UTC)
    # Without a receive time, ingestion_timestamp is the exchange's event time E (deterministic).
    assert event.ingestion_timestamp == datetime(2024, 8, 8, 23, 54, 15, 857000, tzinfo=UTC)
    assert event.event_id == "binance:BTCUSDT:3735683305"


def test_usdm_trade_uses_the_venue_id(ws_data: Path) -> None:
    # {"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,
    #  "p":"61800.30","q":"0.006","X":"MARKET","m":false}
    raw = _line(ws_data / "usdm_btcusdt_20240808.gz", '"t":5266583935')
    assert raw["data"]["X"] == "MARKET"
    (event,) = BinanceConnector({"exchange": "binance-usdm"}).normalize(raw)
    assert event.exchange == "binance-usdm"
    assert event.event_id == "binance-usdm:BTCUSDT:5266583935"
    assert (event.side, event.price, event.quantity, event.quote_volume) == (
        "buy",
        Decimal("61800.30"),
        Decimal("0.006"),
        Decimal("370.8018"),
    )
    assert event.timestamp == datetime(2024, 8, 8, 23, 54, 16, 322000, tzinfo=UTC)


def test_agg_trade(ws_data: Path) -> None:
    # {"e":"aggTrade","E":1618677373913,"s":"SWRVBUSD","a":749094,"p":"2.27600000",
    #  "q":"21.96300000","f":1135632,"l":1135632,"T":1618677373912,"m":false,"M":true}
    raw = _line(ws_data / "cryptofeed_aggtrade_2021.jsonl", '"a":749094')
    (event,) = normalize_message(raw)
    assert (event.event_id, event.trade_id, event.symbol, event.side) == (
        "binance:SWRVBUSD:749094",
        "749094",
        "SWRVBUSD",
        "buy",
    )
    assert (event.price, event.quantity, event.quote_volume) == (
        Decimal("2.276"),
        Decimal("21.963"),
        Decimal("49.987788"),
    )
    assert event.timestamp == datetime(2021, 4, 17, 16, 36, 13, 912000, tzinfo=UTC)


def test_bare_and_wrapped_give_the_same_event(ws_data: Path) -> None:
    wrapped = _line(ws_data / "spot_btcusdt_20240808.gz", '"t":3735683260')
    assert normalize_message(wrapped) == normalize_message(wrapped["data"])
    assert normalize_message(wrapped) == normalize_message(json.loads(json.dumps(wrapped)))


def test_every_recorded_aggtrade_normalizes(ws_data: Path) -> None:
    messages = [json.loads(m.payload) for m in read_recording(ws_data / "cryptofeed_aggtrade_2021.jsonl")]
    events = [event for raw in messages for event in normalize_message(raw)]
    assert len(events) == len(messages) == 54
    for raw, event in zip(messages, events, strict=True):
        data = raw["data"]
        assert event.quote_volume == Decimal(data["p"]) * Decimal(data["q"])
        assert event.side == ("sell" if data["m"] else "buy")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": 1, "s": "BTCUSDT"}}, "market_data"),
        (
            {"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}},
            "market_data",
        ),
        ({"lastUpdateId": 50093239218, "bids": [], "asks": []}, "market_data"),
        ({"result": None, "id": 1}, "ack"),
        ({"error": {"code": 2, "msg": "Invalid request"}, "id": 1}, "error"),
        ({"hello": "world"}, "unknown"),
        ([1, 2], "unknown"),
        ({"stream": "x", "data": [1]}, "unknown"),
    ],
)
def test_non_trade_messages_give_no_event(raw: Any, kind: str) -> None:
    assert message_kind(raw) == kind
    if isinstance(raw, dict):
        assert normalize_message(raw) == []


def _spot_trade(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 3735683259,
        "p": "61837.63000000", "q": "0.02000000", "T": 1723161255342, "m": True, "M": True,
    }  # fmt: skip
    raw.update(changes)
    return {key: value for key, value in raw.items() if value is not None}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"p": None}, "'p'"),
        ({"p": "abc"}, "'p'"),
        ({"p": "-1"}, "'p'"),
        ({"p": "NaN"}, "'p'"),
        ({"q": 0.5}, "'q'"),
        ({"q": "0"}, "'q'"),
        ({"t": "12"}, "'t'"),
        ({"t": True}, "'t'"),
        ({"T": None}, "'T'"),
        ({"m": "true"}, "'m'"),
        ({"s": "btcusdt"}, "'s'"),
    ],
)
def test_invalid_trade_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        normalize_message(_spot_trade(**changes))
    with pytest.raises(ValueError, match=field):
        normalize_message({"stream": "btcusdt@trade", "data": _spot_trade(**changes)})


def test_normalize_is_pure(spot_messages: list[dict[str, Any]]) -> None:
    sample = spot_messages[:500]
    first = [normalize_message(raw) for raw in sample]
    assert first == [normalize_message(raw) for raw in sample]
    assert len({event.event_id for events in first for event in events}) == 500
