"""Binance trade messages to ``TradeEvent``: pure functions, no I/O, no clock.

Accepts ``<symbol>@trade`` and ``<symbol>@aggTrade`` payloads, bare (``/ws/...``) or wrapped
in ``{"stream": ..., "data": ...}`` (``/stream?streams=...``), from spot and USD-M futures
(whose payloads add ``"X": "MARKET"``). Runs in the producer process.

- ``side`` is the taker's: ``m`` (buyer is maker) true means the taker SOLD.
- ``timestamp`` is the trade time ``T`` (ms since the epoch) as UTC, milliseconds kept.
- ``ingestion_timestamp`` is ``received_at`` when the caller passes the local receive time
  (the connector does); otherwise the exchange's event time ``E`` (falling back to ``T``),
  so the same message always gives the same event.
- ``trade_id`` is ``t`` (``a``, the aggregate id, for aggTrade); ``event_id`` is
  ``{exchange}:{SYMBOL}:{id}``, e.g. ``binance:BTCUSDT:3735683259``.
- ``quote_volume`` is ``price * quantity`` in exact decimal arithmetic.
- ``p`` and ``q`` must be plain positive decimal strings as Binance documents them
  (``"67000.12"``): no sign, spaces, underscores, exponents, non-ASCII digits, NaN or
  Infinity. ``t``/``a``/``T`` are JSON integers below ``MAX_ID``/``MAX_TIME_MS``.
- A futures trade whose ``X`` (execution type) is not ``MARKET`` (``INSURANCE_FUND``,
  ``ADL``, ``NA``) is not a market trade: ``normalize_message`` returns no event for it.
- Invalid fields raise ``InvalidTradeError`` (a ``ValueError``) whose ``reason`` is short and
  machine-readable (``number_format``, ``field``, ``time_range``).

Example::

    >>> raw = {"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 3735683259,
    ...        "p": "61837.63000000", "q": "0.02000000", "T": 1723161255342, "m": True, "M": True}
    >>> event, = normalize_message(raw)
    >>> event.side, event.quote_volume, event.event_id
    ('sell', Decimal('1236.7526000000000000'), 'binance:BTCUSDT:3735683259')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import Any, Literal

from coattail_framework.events import TradeEvent

MessageKind = Literal["trade", "aggTrade", "market_data", "ack", "error", "unknown"]
"""What a decoded Binance websocket message is.

``market_data`` is any other stream event (depthUpdate, bookTicker, kline, ...) or a REST
depth snapshot; ``ack`` and ``error`` answer a SUBSCRIBE/UNSUBSCRIBE request; ``unknown`` is
none of these and is kept for inspection by the connector.
"""

TRADE_EVENTS: dict[str, str] = {"trade": "t", "aggTrade": "a"}
"""Trade event types and the field holding each one's id."""

MAX_TIME_MS = 253402300800000
"""First millisecond after year 9999: trade times must be below it (``datetime`` ends there)."""
MAX_ID = 2**63 - 1
"""Trade ids are Java longs at Binance."""
MAX_DECIMAL_CHARS = 40
"""Longest price or quantity string accepted (Binance sends at most 8 decimals after ~10 digits)."""
_DECIMAL = re.compile(r"[0-9]{1,32}(?:\.[0-9]{1,32})?")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLOAT_EXACT_MS = 2**32 * 1000
_from_timestamp = datetime.fromtimestamp
_EXACT = Context(prec=80)
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{1,31}$")
_BOOK_TICKER_KEYS = frozenset({"u", "s", "b", "B", "a", "A"})
_VALID_SYMBOLS: set[str] = set()  # symbols ``_SYMBOL`` accepted, so a trade skips the regex
_MAX_VALID_SYMBOLS = 65_536


class InvalidTradeError(ValueError):
    """A message that claims to be a trade but has a missing or invalid field.

    ``reason`` is short and machine-readable (quarantine counts by it); the message names
    the field and the value.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def unwrap(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payload of a combined-stream message (``data``), or the message itself."""
    data = raw.get("data")
    if "stream" in raw and (type(data) is dict or isinstance(data, Mapping)):
        return data
    return raw


def message_kind(raw: object) -> MessageKind:
    """Classify one decoded websocket message without validating it."""
    if not isinstance(raw, Mapping):
        return "unknown"
    message: Mapping[str, Any] = raw
    if "stream" in message:
        data = message.get("data")
        if not isinstance(data, Mapping) or not isinstance(message.get("stream"), str):
            return "unknown"
        message = data
    event_type = message.get("e")
    if isinstance(event_type, str):
        return "trade" if event_type == "trade" else "aggTrade" if event_type == "aggTrade" else "market_data"
    if "id" in message and ("result" in message or "error" in message):
        return "error" if "error" in message else "ack"
    if message.keys() >= _BOOK_TICKER_KEYS or "lastUpdateId" in message:
        return "market_data"
    return "unknown"


def normalize_message(
    raw: Mapping[str, Any], *, exchange: str = "binance", received_at: datetime | None = None
) -> list[TradeEvent]:
    """The market trades in one decoded message: one for trade/aggTrade, none for anything else.

    Raises ``InvalidTradeError`` naming the field when a message claims to be a trade (``e`` is
    ``trade`` or ``aggTrade``) but a field is missing or invalid. A futures trade with
    ``X`` other than ``MARKET`` gives no event.
    """
    payload = unwrap(raw)
    event_type = payload.get("e")
    if not isinstance(event_type, str) or event_type not in TRADE_EVENTS:
        return []
    event = trade_event(payload, exchange=exchange, received_at=received_at)
    return [event] if is_market_trade(payload) else []


def is_market_trade(payload: Mapping[str, Any]) -> bool:
    """False for a futures trade whose ``X`` is not ``MARKET``; spot trades carry no ``X``.

    Raises ``InvalidTradeError`` when ``X`` is present but not a string.
    """
    execution = payload.get("X", "MARKET")
    if type(execution) is not str:
        raise InvalidTradeError("field", f"binance {payload.get('e')} field 'X' must be a string, got {execution!r}")
    return execution == "MARKET"


def trade_event(
    payload: Mapping[str, Any], *, exchange: str = "binance", received_at: datetime | None = None
) -> TradeEvent:
    """The ``TradeEvent`` of one trade or aggTrade payload (unwrapped), whatever its ``X``.

    Raises ``InvalidTradeError`` naming the field that is missing or invalid.
    """
    event_type = str(payload.get("e"))
    id_field = TRADE_EVENTS.get(event_type)
    if id_field is None:
        raise InvalidTradeError("field", f"binance message field 'e' must be trade or aggTrade, got {event_type!r}")
    symbol = payload.get("s")
    if type(symbol) is not str or symbol not in _VALID_SYMBOLS:
        symbol = _symbol(payload)
    trade_id = payload.get(id_field)
    if type(trade_id) is not int or not 0 <= trade_id <= MAX_ID:
        trade_id = _integer(payload, id_field, event_type, MAX_ID)
    price = _positive_decimal(payload, "p", "price", event_type)
    quantity = _positive_decimal(payload, "q", "quantity", event_type)
    trade_ms = payload.get("T")
    if type(trade_ms) is not int or not 0 <= trade_ms < MAX_TIME_MS:
        trade_ms = _integer(payload, "T", event_type, MAX_TIME_MS - 1)
    buyer_is_maker = payload.get("m")
    if buyer_is_maker is not True and buyer_is_maker is not False:
        raise InvalidTradeError(
            "field", f"binance {event_type} field 'm' (buyer is maker) must be true or false, got {buyer_is_maker!r}"
        )
    if received_at is None:
        event_ms = payload.get("E", trade_ms)
        valid_event_ms = _is_int(event_ms) and 0 <= event_ms < MAX_TIME_MS
        received_at = _utc_from_ms(event_ms if valid_event_ms else trade_ms)
    return TradeEvent.from_fields(
        event_id=f"{exchange}:{symbol}:{trade_id}",
        exchange=exchange,
        symbol=symbol,
        price=price,
        quantity=quantity,
        quote_volume=_EXACT.multiply(price, quantity),
        side="sell" if buyer_is_maker else "buy",
        timestamp=_utc_from_ms(trade_ms),
        ingestion_timestamp=received_at,
        trade_id=str(trade_id),
        taker_order_id=None,
    )


def check_trade_time(event: TradeEvent, received_at: datetime, *, ahead: timedelta, behind: timedelta) -> None:
    """Raise ``InvalidTradeError`` (``time_window``) unless the trade time is in ``received_at - behind .. + ahead``.

    >>> at = datetime(2024, 8, 9, tzinfo=timezone.utc)
    >>> event, = normalize_message({"e": "trade", "s": "BTCUSDT", "t": 1, "p": "1.5", "q": "2",
    ...                             "T": 1723161600000, "m": False}, received_at=at)
    >>> check_trade_time(event, at, ahead=timedelta(seconds=60), behind=timedelta(hours=24))
    >>> early = at - timedelta(minutes=5)
    >>> check_trade_time(event, early, ahead=timedelta(seconds=60), behind=timedelta(hours=24))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    coattail_connector_binance.normalize.InvalidTradeError: binance trade BTCUSDT 1: trade time ... is 300.0 s ahead ...
    """
    offset = (event.timestamp - received_at).total_seconds()
    if -behind.total_seconds() <= offset <= ahead.total_seconds():
        return
    direction, limit = ("ahead of", ahead) if offset > 0 else ("behind", behind)
    raise InvalidTradeError(
        "time_window",
        f"binance trade {event.symbol} {event.trade_id}: trade time {event.timestamp.isoformat()} is "
        f"{abs(offset):.1f} s {direction} its receive time (at most {limit.total_seconds():.0f} s)",
    )


def trade_id_of(payload: Mapping[str, Any]) -> int:
    """The id a trade payload is sequenced by (``t``, or ``a`` for aggTrade); assumes a valid trade."""
    value: int = payload[TRADE_EVENTS[payload["e"]]]
    return value


def _utc_from_ms(ms: int) -> datetime:
    """``ms`` milliseconds since the epoch as an aware UTC datetime, exact to the millisecond.

    From 0 to 2**32 s (year 2106) the double ``ms / 1000`` is within 0.48 us of the true
    instant, so ``fromtimestamp``'s rounding to the microsecond is exact; other times use
    integer arithmetic (and raise ``OverflowError`` past year 9999).
    """
    if 0 <= ms < _FLOAT_EXACT_MS:
        return _from_timestamp(ms / 1000, UTC)
    return _EPOCH + timedelta(0, 0, 0, ms)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _symbol(payload: Mapping[str, Any]) -> str:
    symbol = payload.get("s")
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise InvalidTradeError(
            "field",
            f"binance {payload.get('e')} field 's' (symbol) must be an upper-case symbol "
            f"such as BTCUSDT, got {symbol!r}",
        )
    if type(symbol) is str and len(_VALID_SYMBOLS) < _MAX_VALID_SYMBOLS:
        _VALID_SYMBOLS.add(symbol)
    return symbol


def _integer(payload: Mapping[str, Any], field: str, event_type: str, maximum: int) -> int:
    value = payload.get(field)
    where = f"binance {event_type} field {field!r}"
    if type(value) is not int:
        raise InvalidTradeError("field", f"{where} must be an integer, got {_short(value)}")
    if not 0 <= value <= maximum:
        raise InvalidTradeError("number_range", f"{where} must be in 0..{maximum}, got {_short(value)}")
    return value


def _positive_decimal(payload: Mapping[str, Any], field: str, meaning: str, event_type: str) -> Decimal:
    value = payload.get(field)
    if type(value) is not str:
        raise InvalidTradeError(
            "field", f"binance {event_type} field {field!r} ({meaning}) must be a decimal string, got {_short(value)}"
        )
    if len(value) > MAX_DECIMAL_CHARS or not _DECIMAL.fullmatch(value):
        raise InvalidTradeError(
            "number_format",
            f"binance {event_type} field {field!r} ({meaning}) must be a plain decimal such as "
            f'"67000.12", got {_short(value)}',
        )
    number = Decimal(value)
    if number <= 0:
        raise InvalidTradeError(
            "number_range", f"binance {event_type} field {field!r} ({meaning}) must be positive, got {value!r}"
        )
    return number


def _short(value: object) -> str:
    """``repr(value)`` cut to 80 characters (an error message must not quote a whole frame)."""
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."
