"""Binance trade history: ``GET {prefix}/aggTrades`` paged by aggregate id, as ``TradeEvent``\\ s.

The connector's ``trade_history()`` returns one (the framework's optional ``TradeHistory``
capability); ``coattail-stream-job load-history`` drives it. Requests go through
``rest.BinanceRest`` (weight 4 each, the weight limit, 429/418, retries), shared with the
live gap backfill. An ``aggTrades`` record (``a, p, q, f, l, T, m, M``) is the websocket
``aggTrade`` payload without ``e``/``E``/``s``; ``backfill.agg_trade_record_payload`` adds them
back and the connector's pure ``normalize_message`` turns it into the ``TradeEvent`` the live
producer emits. Trade ids are aggregate ids ``a`` whatever ``settings.stream`` says; ``T`` is
ms since the epoch (UTC). Runs on the caller's event loop.

Example::

    async with BinanceTradeHistory(BinanceSettings(exchange="binance")) as history:
        first = await history.first_at_or_after("BTCUSDT", start, end)
        page = await history.page("BTCUSDT", from_id=history.record_id(first), limit=1000)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from coattail_connector_binance.backfill import agg_trade_record_payload
from coattail_connector_binance.normalize import normalize_message
from coattail_connector_binance.rest import BinanceRest, RequestCounters
from coattail_connector_binance.settings import BinanceSettings
from coattail_framework.events import TradeEvent
from coattail_framework.history import TradeHistory
from coattail_framework.resilience import Backoff

MAX_LIMIT = 1000
"""The most records one ``aggTrades`` request returns."""
MAX_TIME_WINDOW_MS = 3_599_999
"""``endTime - startTime`` must stay below one hour when both are sent."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """An aware datetime as milliseconds since the epoch (UTC)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class BinanceTradeHistory(TradeHistory):
    """Binance's aggregate trades of the past (see the module docstring)."""

    max_page = MAX_LIMIT

    def __init__(
        self,
        settings: BinanceSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: Backoff | None = None,
    ) -> None:
        self.venue = settings.exchange
        self._rest = BinanceRest(session, settings, clock=clock, sleep=sleep, backoff=backoff)

    @property
    def counters(self) -> RequestCounters:
        """Requests, weight waits, 429s and retries so far."""
        return self._rest.counters

    async def first_at_or_after(self, symbol: str, start: datetime, end: datetime) -> Any | None:
        """See ``TradeHistory``. Binance answers ``startTime``/``endTime`` only for windows under an
        hour, so an empty stretch is searched one hour at a time."""
        window_start, end_ms = epoch_ms(start), epoch_ms(end)
        while window_start < end_ms:
            window_end = min(window_start + MAX_TIME_WINDOW_MS, end_ms - 1)
            params = {"symbol": symbol, "startTime": str(window_start), "endTime": str(window_end), "limit": "1"}
            found = await self._rest.get("aggTrades", params)
            if found:
                return found[0]
            window_start = window_end + 1
        return None

    async def page(self, symbol: str, *, from_id: int, limit: int = MAX_LIMIT) -> list[Any]:
        """Up to ``limit`` aggregate trade records with id >= ``from_id``, in id order, as decoded."""
        return await self._rest.get("aggTrades", {"symbol": symbol, "fromId": str(from_id), "limit": str(limit)})

    def record_id(self, record: object) -> int | None:
        """The aggregate id ``a``, or None when it has no valid one."""
        value = record.get("a") if isinstance(record, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    def record_time(self, record: object) -> datetime | None:
        """The trade time ``T`` (ms since the epoch) as aware UTC, or None when invalid."""
        value = record.get("T") if isinstance(record, dict) else None
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        try:
            return _EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            return None

    def normalize(self, record: Any, symbol: str, received_at: datetime) -> TradeEvent:
        """The ``TradeEvent`` of one aggTrade record; ``ValueError`` names the invalid field.

        >>> from datetime import datetime, timezone
        >>> record = {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781,
        ...           "T": 1498793709153, "m": True, "M": True}
        >>> history = BinanceTradeHistory(BinanceSettings())
        >>> event = history.normalize(record, "BNBBTC", datetime(2024, 1, 1, tzinfo=timezone.utc))
        >>> event.event_id, event.side, event.timestamp.isoformat()
        ('binance:BNBBTC:26129', 'sell', '2017-06-30T03:35:09.153000+00:00')
        """
        (event,) = normalize_message(
            agg_trade_record_payload(record, symbol), exchange=self.venue, received_at=received_at
        )
        return event

    async def aclose(self) -> None:
        """Close the HTTP session the history opened (a caller's session stays open)."""
        await self._rest.aclose()
