"""Coinbase trade history: ``GET /products/{id}/trades`` paged by trade id, as ``TradeEvent``\\ s.

The connector's ``trade_history()`` returns one (the framework's optional ``TradeHistory``
capability); ``coattail-stream-job load-history`` drives it. Requests go through
``rest.TradesClient``, the client the live gap backfill uses (retries from
``coattail_framework.resilience``). Coinbase has no time query: ``first_at_or_after`` pages
back from the newest trade with the ``after`` cursor and stops at the first page holding a
trade older than ``start`` (so it reads every trade newer than ``start``: cheap for recent
ranges, long for old ones). ``page`` reads forward with the ``before`` cursor and returns
the page oldest first. Records are normalized by the connector's ``normalize_rest_trade``
(the live backfill's normalization; ``side`` is the maker's, as on the websocket). Trade
ids are Coinbase's ``trade_id`` per product; times aware UTC. Runs on the caller's event loop.

Example::

    async with CoinbaseTradeHistory(CoinbaseSettings()) as history:
        async for event in history.trades("BTC-USD", start, end):
            print(event.event_id)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp

from coattail_connector_coinbase.normalize import normalize_rest_trade, parse_time
from coattail_connector_coinbase.rest import TradesClient
from coattail_connector_coinbase.settings import CoinbaseSettings
from coattail_framework.events import TradeEvent
from coattail_framework.history import TradeHistory
from coattail_framework.resilience import Backoff

MAX_PAGE = 1000
"""The most trades one request returns."""


class CoinbaseTradeHistory(TradeHistory):
    """Coinbase Exchange's public trades of the past (see the module docstring)."""

    def __init__(
        self,
        settings: CoinbaseSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.venue = settings.exchange
        self.max_page = settings.rest_page_size
        self._settings = settings
        self._session = session
        self._owns_session = session is None
        self._backoff = backoff
        self._sleep = sleep
        self._client: TradesClient | None = None

    @property
    def requests(self) -> int:
        """Page requests sent so far, repeated ones included."""
        return 0 if self._client is None else self._client.requests

    async def first_at_or_after(self, symbol: str, start: datetime, end: datetime) -> Any | None:
        """See ``TradeHistory``; pages back from the newest trade until one is older than ``start``."""
        client = self._trades_client()
        first: Any | None = None
        first_id: int | None = None
        cursor: int | None = None
        while True:
            page = await client.page(symbol, after=cursor, limit=self.max_page)
            reached_start = False
            for item in page.items:
                trade_id, trade_time = self.record_id(item), self.record_time(item)
                if trade_id is None or trade_time is None:
                    continue
                if trade_time < start:
                    reached_start = True
                elif first_id is None or trade_id < first_id:
                    first, first_id = item, trade_id
            older = page.older_cursor
            if reached_start or not page.items or older is None or (cursor is not None and older >= cursor):
                break
            cursor = older
        first_time = None if first is None else self.record_time(first)
        return first if first_time is not None and first_time < end else None

    async def page(self, symbol: str, *, from_id: int, limit: int = MAX_PAGE) -> list[Any]:
        """Up to ``limit`` trades with ``trade_id >= from_id``, oldest first (``before=from_id - 1``)."""
        page = await self._trades_client().page(symbol, before=from_id - 1, limit=limit)
        return list(reversed(page.items))

    def record_id(self, record: object) -> int | None:
        """``trade_id``, or None when it is not a non-negative integer."""
        value = record.get("trade_id") if isinstance(record, Mapping) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    def record_time(self, record: object) -> datetime | None:
        """``time`` as aware UTC, or None when it is not a valid trade time."""
        if not isinstance(record, Mapping):
            return None
        try:
            return parse_time(record.get("time"))
        except ValueError:
            return None

    def normalize(self, record: Any, symbol: str, received_at: datetime) -> TradeEvent:
        """The ``TradeEvent`` of one REST trade; ``ValueError`` (``InvalidTradeError``) names the field."""
        if not isinstance(record, Mapping):
            raise ValueError(f"a REST trade must be a JSON object, got {str(record)[:100]}")
        return normalize_rest_trade(symbol, record, exchange=self.venue, ingestion_timestamp=received_at)

    async def aclose(self) -> None:
        """Close the HTTP session the history opened (a caller's session stays open)."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = self._client = None

    def _trades_client(self) -> TradesClient:
        if self._client is None:
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._settings.rest_timeout))
            self._client = TradesClient(
                self._session,
                self._settings.rest_url,
                page_size=self._settings.rest_page_size,
                retries=self._settings.rest_retries,
                backoff=self._backoff,
                sleep=self._sleep,
            )
        return self._client
