"""The normalized trade every connector emits and every detector reads.

A ``TradeEvent`` is one fill on one exchange, already normalized: prices and sizes are
exact decimals, ``side`` is the TAKER's side, and every time is timezone-aware UTC.
Connectors build it in the producer process; the stream job parses its JSON form into
the Spark schema ``coattail_framework.schemas.UNIFIED_TRADE_EVENT``.

Example::

    >>> from datetime import datetime, timezone
    >>> from decimal import Decimal
    >>> event = TradeEvent(
    ...     event_id="binance:BTCUSDT:1", exchange="binance", symbol="BTCUSDT",
    ...     price=Decimal("61000.5"), quantity=Decimal("0.002"),
    ...     quote_volume=Decimal("122.001"), side="buy",
    ...     timestamp=datetime(2024, 8, 8, 23, 54, tzinfo=timezone.utc),
    ...     ingestion_timestamp=datetime(2024, 8, 8, 23, 54, 1, tzinfo=timezone.utc),
    ... )
    >>> TradeEvent.model_validate_json(event.to_json()) == event
    True
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

TakerSide = Literal["buy", "sell"]

# Decimals travel as JSON numbers (Spark parses them as doubles); the Python side stays exact.
_JsonNumber = PlainSerializer(float, return_type=float, when_used="json")
PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=38), _JsonNumber]

ExchangeId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,31}$")]
"""A venue id as configured: lower case, e.g. ``binance``, ``binance-usdm``, ``coinbase``."""

ExchangeSymbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9._/-]{1,31}$")]
"""A symbol in the exchange's own spelling, upper case: ``BTCUSDT``, ``BTC-USD``."""


class TradeEvent(BaseModel):
    """One normalized fill.

    ``side`` is the taker's side: "buy" means the aggressor bought. ``timestamp`` is the
    exchange's trade time and ``ingestion_timestamp`` the time the producer received the
    message, both timezone-aware and converted to UTC. ``quote_volume`` is
    ``price * quantity`` in the quote currency. ``trade_id`` is the exchange's trade id
    (Binance aggregate id for aggTrade) and ``taker_order_id`` the taker's order id where
    the exchange publishes it (Coinbase); fills of one taker order share it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    exchange: ExchangeId
    symbol: ExchangeSymbol
    price: PositiveDecimal
    quantity: PositiveDecimal
    quote_volume: PositiveDecimal
    side: TakerSide
    timestamp: datetime
    ingestion_timestamp: datetime
    trade_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    taker_order_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None

    @field_validator("timestamp", "ingestion_timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is UTC:
            return value  # what astimezone(timezone.utc) returns for it: the same object
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (UTC), got a naive datetime")
        return value.astimezone(UTC)

    @classmethod
    def from_fields(
        cls,
        *,
        event_id: str,
        exchange: str,
        symbol: str,
        price: Decimal,
        quantity: Decimal,
        quote_volume: Decimal,
        side: TakerSide,
        timestamp: datetime,
        ingestion_timestamp: datetime,
        trade_id: str | None,
        taker_order_id: str | None,
    ) -> TradeEvent:
        """``TradeEvent(...)`` with all eleven fields given: the same event or the same ``ValidationError``.

        The connectors' hot path (producer process). Values that plainly satisfy every
        constraint -- exact ``str``/``Decimal``/``datetime`` types, ``Decimal`` values whose
        plain string has at most 37 characters (so at most 37 digits: well inside
        ``max_digits=38``), times whose tzinfo is ``timezone.utc``, exchange and symbol ids
        already seen valid -- are stored without running the validator, which would return
        them unchanged; anything else goes through ``TradeEvent(...)`` and its validation.
        """
        if (
            type(event_id) is str
            and 0 < len(event_id) <= 256
            and type(exchange) is str
            and (exchange in _VALID_EXCHANGES or _remember_valid(exchange, _EXCHANGE_ID, _VALID_EXCHANGES))
            and type(symbol) is str
            and (symbol in _VALID_SYMBOLS or _remember_valid(symbol, _EXCHANGE_SYMBOL, _VALID_SYMBOLS))
            and type(price) is Decimal
            and price.is_finite()
            and price > 0
            and type(quantity) is Decimal
            and quantity.is_finite()
            and quantity > 0
            and type(quote_volume) is Decimal
            and quote_volume.is_finite()
            and quote_volume > 0
            # A finite Decimal whose str has no exponent is written out digit by digit: at most
            # 37 characters is at most 37 digits, one below max_digits (whose normalize() can add one).
            and len(price_text := str(price)) <= 37
            and len(quantity_text := str(quantity)) <= 37
            and len(volume_text := str(quote_volume)) <= 37
            and "E" not in price_text + quantity_text + volume_text
            and type(side) is str
            and (side == "buy" or side == "sell")
            and type(timestamp) is datetime
            and timestamp.tzinfo is _UTC
            and type(ingestion_timestamp) is datetime
            and ingestion_timestamp.tzinfo is _UTC
            and (trade_id is None or (type(trade_id) is str and 0 < len(trade_id) <= 128))
            and (taker_order_id is None or (type(taker_order_id) is str and 0 < len(taker_order_id) <= 128))
        ):
            event = _new_object(cls)
            _set_attribute(
                event,
                "__dict__",
                {
                    "event_id": event_id,
                    "exchange": exchange,
                    "symbol": symbol,
                    "price": price,
                    "quantity": quantity,
                    "quote_volume": quote_volume,
                    "side": side,
                    "timestamp": timestamp,
                    "ingestion_timestamp": ingestion_timestamp,
                    "trade_id": trade_id,
                    "taker_order_id": taker_order_id,
                },
            )
            _set_fields_set(event, set(_FIELD_NAMES))
            _set_extra(event, None)
            _set_private(event, None)
            return event
        return cls(
            event_id=event_id,
            exchange=exchange,
            symbol=symbol,
            price=price,
            quantity=quantity,
            quote_volume=quote_volume,
            side=side,
            timestamp=timestamp,
            ingestion_timestamp=ingestion_timestamp,
            trade_id=trade_id,
            taker_order_id=taker_order_id,
        )

    def to_json(self) -> str:
        """The wire form published to Kinesis (UTF-8 JSON, ISO 8601 UTC times)."""
        return self.model_dump_json()

    @property
    def partition_key(self) -> str:
        """The Kinesis partition key: the symbol, so each symbol's trades stay in order."""
        return self.symbol


# ``TradeEvent.from_fields`` support. It stores an instance the way ``model_construct`` does,
# which is only right while the model has no private attributes and forbids extras.
if TradeEvent.__private_attributes__ or TradeEvent.model_config.get("extra") != "forbid":
    raise TypeError("TradeEvent.from_fields assumes no private attributes and extra='forbid': update it")
_new_object = object.__new__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__  # BaseModel's slots
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_UTC = UTC
_set_attribute = object.__setattr__
_FIELD_NAMES = frozenset(TradeEvent.model_fields)
_EXCHANGE_ID: TypeAdapter[str] = TypeAdapter(ExchangeId)
_EXCHANGE_SYMBOL: TypeAdapter[str] = TypeAdapter(ExchangeSymbol)
_VALID_EXCHANGES: set[str] = set()
_VALID_SYMBOLS: set[str] = set()
_MAX_REMEMBERED = 65_536  # distinct ids kept per kind; past that, new ones are validated every time


def _remember_valid(value: str, adapter: TypeAdapter[str], known: set[str]) -> bool:
    """Whether the id's constraints accept ``value``; remembers it if so."""
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError:
        return False
    if len(known) < _MAX_REMEMBERED:
        known.add(value)
    return True
