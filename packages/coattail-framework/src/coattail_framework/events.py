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

from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
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
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (UTC), got a naive datetime")
        return value.astimezone(timezone.utc)

    def to_json(self) -> str:
        """The wire form published to Kinesis (UTF-8 JSON, ISO 8601 UTC times)."""
        return self.model_dump_json()

    @property
    def partition_key(self) -> str:
        """The Kinesis partition key: the symbol, so each symbol's trades stay in order."""
        return self.symbol
