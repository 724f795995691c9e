"""Pure normalisation of Coinbase Exchange trades into ``TradeEvent``.

Runs in the producer process (and in replays/benchmarks). Coinbase's ``side`` is the
MAKER's side, so the taker side is its opposite: ``"sell"`` means the taker bought.
``time`` is ISO 8601 with microseconds; it becomes a timezone-aware UTC datetime, and a
time before ``EARLIEST_TRADE_TIME`` (2010) is rejected. ``price`` and ``size`` are taken only
in Coinbase's documented form, a plain decimal string (``"67000.12"``): no sign, blank,
underscore, exponent, non-ASCII digit, NaN or Infinity. Text fields must be encodable as
UTF-8 (a lone surrogate is not). ``check_trade_time`` holds a trade time to a window around
its receive time (the connector applies it).
``event_id`` is ``{exchange}:{product_id}:{trade_id}`` so a trade replayed or backfilled
twice gets the same id. ``quote_volume`` is ``price * size`` computed exactly.

The functions are pure: the ingestion time comes from the optional
``ingestion_timestamp`` argument and defaults to the trade's own time, so the same
message always gives the same event. ``normalize_match`` builds a message in the usual
form (the producer's hot loop) directly and checks any other field by field; both paths
give the same event, and an invalid message always gets the checked path's error: an
``InvalidTradeError`` (a ``ValueError``) naming the field, with a short ``reason`` to count it by.

Example::

    >>> raw = {"type": "match", "trade_id": 1, "sequence": 7, "maker_order_id": "m",
    ...        "taker_order_id": "t", "side": "sell", "size": "0.5", "price": "100.10",
    ...        "product_id": "BTC-USD", "time": "2021-04-17T16:43:30.244075Z"}
    >>> event = normalize_match(raw)
    >>> (event.event_id, event.side, str(event.quote_volume), event.timestamp.microsecond)
    ('coinbase:BTC-USD:1', 'buy', '50.050', 244075)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from coattail_framework.events import TakerSide, TradeEvent

TRADE_TYPES = frozenset({"match", "last_match"})
"""Messages that carry one trade each (``last_match`` is sent once per product on subscribe)."""

NON_TRADE_TYPES = frozenset(
    {
        "subscriptions",
        "heartbeat",
        "error",
        "status",
        "ticker",
        "snapshot",
        "l2update",
        "received",
        "open",
        "done",
        "change",
        "activate",
    }
)
"""Known Coinbase feed messages that carry no trade of their own."""

# Exact for every product of two valid (at most 38-digit) values; longer ones are rejected
# by TradeEvent's digit limit, which names the field.
_EXACT = Context(prec=100, traps=[InvalidOperation])
_ZERO = Decimal(0)
# Looked up once: an attribute of a pydantic model class costs ~90 ns to find per message.
_exact_product = _EXACT.multiply
_trade_event = TradeEvent.from_fields
# The usual Coinbase form, 2021-04-17T16:43:30.244075Z: exactly six fraction digits, a Z,
# ASCII digits and hour 00-23. ``datetime.fromisoformat`` parses it to the value the general
# ``_TIME`` path gives.
_is_usual_time = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-9]{2}:[0-9]{2}\.[0-9]{6}Z").fullmatch
_from_usual_time = datetime.fromisoformat


_is_plain_decimal = re.compile(r"[0-9]{1,40}(?:\.[0-9]{1,40})?").fullmatch
EARLIEST_TRADE_TIME = datetime(2010, 1, 1, tzinfo=UTC)
"""Trade times before this are rejected (no crypto exchange traded earlier)."""
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z")
# TradeEvent fields back to the Coinbase field a validation error is about.
_RAW_FIELD = {
    "symbol": "product_id",
    "quantity": "size",
    "quote_volume": "price x size",
    "timestamp": "time",
    "ingestion_timestamp": "ingestion_timestamp",
    "exchange": "exchange",
}


class InvalidTradeError(ValueError):
    """A message that claims to be a trade but cannot be one; the text names the field.

    ``reason`` is the short category a rejected frame is counted and quarantined by:
    ``field``, ``number_format``, ``time_format``, ``time_range``, ``time_window`` or ``encoding``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_trade_time(
    timestamp: datetime,
    received_at: datetime,
    *,
    ahead: timedelta,
    behind: timedelta,
) -> None:
    """Raise ``InvalidTradeError("time_window")`` unless ``timestamp`` is within ``-behind..+ahead`` of ``received_at``.

    In a replay ``received_at`` is the recording's clock (the simulator's ``recorded_clock()``).
    """
    if received_at - timestamp > behind or timestamp - received_at > ahead:
        raise InvalidTradeError(
            "time_window",
            f"time {timestamp.isoformat()} is more than {ahead} ahead of or {behind} behind "
            f"the receive time {received_at.isoformat()}",
        )


def normalize_match(
    raw: Mapping[str, Any], *, exchange: str = "coinbase", ingestion_timestamp: datetime | None = None
) -> TradeEvent:
    """One websocket ``match`` / ``last_match`` message as a ``TradeEvent``.

    Raises ``InvalidTradeError`` (a ``ValueError``) naming the field when the message cannot be a valid trade.
    """
    # The producer's hot loop. A message in the usual form -- every field present with its
    # usual JSON type, the usual time form -- is built right here; anything else, valid or
    # not, takes the checked path, which gives the same event or the error naming the field.
    try:
        kind, sequence, taker_order_id = raw["type"], raw["sequence"], raw["taker_order_id"]
        product_id, trade_id, maker_side = raw["product_id"], raw["trade_id"], raw["side"]
        price_text, size_text, time_text = raw["price"], raw["size"], raw["time"]
    except KeyError:
        return _checked_match(raw, exchange, ingestion_timestamp)
    if (
        (kind == "match" or kind == "last_match")
        and type(sequence) is int
        and sequence >= 0
        and type(taker_order_id) is str
        and taker_order_id
        and taker_order_id.isascii()
        and type(product_id) is str
        and type(trade_id) is int
        and trade_id > 0
        and (maker_side == "sell" or maker_side == "buy")
        and type(price_text) is str
        and type(size_text) is str
        and _is_plain_decimal(price_text) is not None
        and _is_plain_decimal(size_text) is not None
        and type(time_text) is str
        and _is_usual_time(time_text) is not None
    ):
        try:
            price = Decimal(price_text)
            size = Decimal(size_text)
            timestamp = _from_usual_time(time_text)
        except (InvalidOperation, ValueError):
            return _checked_match(raw, exchange, ingestion_timestamp)
        if price > _ZERO and size > _ZERO and timestamp >= EARLIEST_TRADE_TIME:
            trade_text = str(trade_id)
            try:
                return _trade_event(
                    event_id=f"{exchange}:{product_id}:{trade_text}",
                    exchange=exchange,
                    symbol=product_id,
                    price=price,
                    quantity=size,
                    quote_volume=_exact_product(price, size),
                    side="buy" if maker_side == "sell" else "sell",
                    timestamp=timestamp,
                    ingestion_timestamp=ingestion_timestamp or timestamp,
                    trade_id=trade_text,
                    taker_order_id=taker_order_id,
                )
            except ValidationError:
                pass  # the checked path names the field
    return _checked_match(raw, exchange, ingestion_timestamp)


def parse_time(value: object, field: str = "time") -> datetime:
    """An ISO 8601 time with a zone (``2021-04-17T16:43:30.244075Z``) as an aware UTC datetime.

    Keeps microseconds; digits beyond the sixth are truncated. Raises ``InvalidTradeError``
    (``time_format``; ``time_range`` before ``EARLIEST_TRADE_TIME`` or past year 9999 in UTC).
    """
    parsed = _parse_time(value, field)
    if parsed < EARLIEST_TRADE_TIME:
        raise InvalidTradeError("time_range", f"{field} is before {EARLIEST_TRADE_TIME.year}: {value!r}")
    return parsed


def _parse_time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidTradeError("time_format", f"{field} must be an ISO 8601 string, got {value!r}")
    if _is_usual_time(value) is not None:
        try:
            return _from_usual_time(value)
        except ValueError:
            pass  # not a calendar date (e.g. February 30): the general path explains it
    match = _TIME.match(value)
    if match is None:
        raise InvalidTradeError(
            "time_format", f"{field} must be ISO 8601 with a zone like 2021-04-17T16:43:30.244075Z, got {value!r}"
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz)
    except ValueError as error:
        raise InvalidTradeError("time_format", f"{field} is not a valid date/time: {value!r} ({error})") from None
    try:
        return parsed if tz is UTC else parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidTradeError("time_range", f"{field} is past year 9999 in UTC: {value!r}") from None


def _decimal(value: object, field: str) -> Decimal:
    if not isinstance(value, str) or _is_plain_decimal(value) is None:
        raise InvalidTradeError("number_format", f"{field} must be a plain decimal string like 67000.12, got {value!r}")
    number = Decimal(value)
    if number <= 0:
        raise InvalidTradeError("field", f"{field} must be a number > 0, got {value!r}")
    return number


def _trade_id(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 40 and int(value) > 0:
        return int(value)
    raise InvalidTradeError("field", f"trade_id must be a positive integer, got {value!r}")


def _text(value: str, field: str) -> str:
    """``value`` if it can be written as UTF-8 (a lone surrogate cannot)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidTradeError("encoding", f"{field} is not valid UTF-8 text: {value!r}") from None
    return value


def _checked_match(raw: Mapping[str, Any], exchange: str, ingestion_timestamp: datetime | None) -> TradeEvent:
    """``normalize_match`` for any message: every field checked in turn, the first bad one named."""
    kind = raw.get("type")
    if kind != "match" and kind != "last_match":
        raise InvalidTradeError("field", f"type must be 'match' or 'last_match', got {kind!r}")
    sequence = raw.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        raise InvalidTradeError("field", f"sequence must be a non-negative integer, got {sequence!r}")
    taker_order_id = raw.get("taker_order_id")
    if not isinstance(taker_order_id, str) or not taker_order_id:
        raise InvalidTradeError("field", f"taker_order_id must be a non-empty string, got {taker_order_id!r}")
    _text(taker_order_id, "taker_order_id")
    return _checked_trade(raw.get("product_id"), raw, exchange, ingestion_timestamp, taker_order_id)


def _checked_trade(
    product_id: object,
    raw: Mapping[str, Any],
    exchange: str,
    ingestion_timestamp: datetime | None,
    taker_order_id: str | None,
) -> TradeEvent:
    if not isinstance(product_id, str):
        raise InvalidTradeError("field", f"product_id must be a string like BTC-USD, got {product_id!r}")
    trade_id = _trade_id(raw.get("trade_id"))
    maker_side = raw.get("side")
    if maker_side == "sell":
        side: TakerSide = "buy"
    elif maker_side == "buy":
        side = "sell"
    else:
        raise InvalidTradeError("field", f"side must be 'buy' or 'sell' (the maker's side), got {maker_side!r}")
    price = _decimal(raw.get("price"), "price")
    size = _decimal(raw.get("size"), "size")
    timestamp = parse_time(raw.get("time"))
    try:
        return TradeEvent.from_fields(
            event_id=f"{exchange}:{product_id}:{trade_id}",
            exchange=exchange,
            symbol=product_id,
            price=price,
            quantity=size,
            quote_volume=_EXACT.multiply(price, size),
            side=side,
            timestamp=timestamp,
            ingestion_timestamp=ingestion_timestamp or timestamp,
            trade_id=str(trade_id),
            taker_order_id=taker_order_id,
        )
    except ValidationError as error:
        problem = error.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else "message"
        raise InvalidTradeError(
            "field", f"{_RAW_FIELD.get(field, field)}: {problem['msg']}, got {problem['input']!r}"
        ) from None


def normalize_rest_trade(
    product_id: str,
    raw: Mapping[str, Any],
    *,
    exchange: str = "coinbase",
    ingestion_timestamp: datetime | None = None,
) -> TradeEvent:
    """One item of ``GET /products/{product_id}/trades`` as a ``TradeEvent``.

    REST trades carry ``trade_id``, ``price``, ``size``, ``side`` (the maker's, as on the
    websocket) and ``time`` but no order ids, so ``taker_order_id`` is None.
    """
    return _checked_trade(product_id, raw, exchange, ingestion_timestamp, None)
