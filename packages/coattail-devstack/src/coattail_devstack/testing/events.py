"""Terse construction of valid ``TradeEvent`` objects for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from coattail_framework.events import TakerSide, TradeEvent


def trade(
    at: datetime | str,
    price: str | float,
    quantity: str | float,
    *,
    side: TakerSide = "buy",
    exchange: str = "binance",
    symbol: str = "BTCUSDT",
    trade_id: str | int | None = None,
    taker_order_id: str | None = None,
    event_id: str | None = None,
    ingestion_delay: timedelta = timedelta(milliseconds=100),
) -> TradeEvent:
    """A trade at ``at`` (UTC; ISO 8601 string or aware datetime); quote volume = price x quantity."""
    when = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    price_d, quantity_d = Decimal(str(price)), Decimal(str(quantity))
    identifier = None if trade_id is None else str(trade_id)
    return TradeEvent(
        event_id=event_id or f"{exchange}:{symbol}:{identifier or when.timestamp()}",
        exchange=exchange,
        symbol=symbol,
        price=price_d,
        quantity=quantity_d,
        quote_volume=price_d * quantity_d,
        side=side,
        timestamp=when,
        ingestion_timestamp=when + ingestion_delay,
        trade_id=identifier,
        taker_order_id=taker_order_id,
    )
