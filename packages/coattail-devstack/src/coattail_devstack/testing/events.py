"""Terse construction of valid ``TradeEvent`` objects for tests.

Example (a stream test's trades, seconds after one instant)::

    clock = TradeClock(datetime(2024, 8, 8, 23, 58, tzinfo=UTC))
    batch = [clock.fill(0, 1, 60_000, 2), clock.fill(3, 2, 60_040, 0.5, "sell")]
    assert row.order_time == clock.naive(0)   # Spark collects timestamps as naive UTC
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class TradeClock:
    """Times and trades ``seconds`` after ``start`` (an aware UTC instant): the vocabulary of stream tests."""

    start: datetime

    def at(self, seconds: float) -> datetime:
        """The instant ``seconds`` after ``start`` (aware, UTC)."""
        return self.start + timedelta(seconds=seconds)

    def naive(self, seconds: float) -> datetime:
        """``at(seconds)`` as Spark's ``collect`` returns a timestamp in a UTC session (naive)."""
        return self.at(seconds).replace(tzinfo=None)

    def fill(
        self,
        seconds: float,
        trade_id: int,
        price: float,
        quantity: float,
        side: TakerSide = "buy",
        *,
        exchange: str = "binance",
        symbol: str = "BTCUSDT",
        taker_order_id: str | None = None,
    ) -> TradeEvent:
        """A trade ``seconds`` after ``start`` with its trade id (quote volume = price x quantity)."""
        return trade(
            self.at(seconds),
            price,
            quantity,
            side=side,
            exchange=exchange,
            symbol=symbol,
            trade_id=trade_id,
            taker_order_id=taker_order_id,
        )
