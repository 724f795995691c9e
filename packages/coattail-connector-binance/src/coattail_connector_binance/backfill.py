"""Fill trade-id gaps from Binance's public REST trades endpoints.

``GET {prefix}/historicalTrades?symbol=&fromId=&limit=`` (weight 25) for the ``trade``
stream, ``GET {prefix}/aggTrades?symbol=&fromId=&limit=`` (weight 4) for ``aggTrade``.
Records come back as websocket-shaped payloads so one ``normalize`` serves both paths.
Requests go through ``rest.BinanceRest``, the one home of the weight limit, 429/418
``Retry-After`` handling and retries (``coattail_framework.resilience``), shared with the
trade history (``history.py``). Whatever stops a fetch (a refused request, a ban, retries
exhausted) is reported as ``BackfillError`` naming the request; nothing else escapes. Runs on
the producer's event loop.

Example::

    async with aiohttp.ClientSession() as session:
        backfill = TradeBackfill(session, settings)
        payloads = await backfill.fetch("BTCUSDT", from_id=3735683300, to_id=3735683310)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from coattail_connector_binance.rest import BinanceRest
from coattail_connector_binance.settings import BinanceSettings
from coattail_framework.errors import CoattailError
from coattail_framework.history import HistoryFetchError
from coattail_framework.resilience import Backoff, RetryExhaustedError


class BackfillError(CoattailError):
    """A gap could not be filled over REST (rejected request, ban, or retries exhausted)."""


def trade_record_payload(record: Mapping[str, Any], symbol: str) -> dict[str, Any]:
    """A ``historicalTrades`` record as a ``trade`` websocket payload."""
    return {
        "e": "trade",
        "E": record.get("time"),
        "s": symbol,
        "t": record.get("id"),
        "p": record.get("price"),
        "q": record.get("qty"),
        "T": record.get("time"),
        "m": record.get("isBuyerMaker"),
    }


def agg_trade_record_payload(record: Mapping[str, Any], symbol: str) -> dict[str, Any]:
    """An ``aggTrades`` record (``a,p,q,f,l,T,m,M``) as an ``aggTrade`` websocket payload."""
    return {"e": "aggTrade", "E": record.get("T"), "s": symbol, **record}


class TradeBackfill:
    """Pages through the REST trades endpoint of one venue."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: BinanceSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._rest = BinanceRest(session, settings, sleep=sleep, backoff=backoff)
        self._endpoint = "historicalTrades" if settings.stream == "trade" else "aggTrades"
        self._id_key = "id" if settings.stream == "trade" else "a"

    @property
    def used_weight(self) -> int:
        """The last ``X-MBX-USED-WEIGHT-1M`` the server reported (own count when it sent none)."""
        return self._rest.counters.used_weight

    async def fetch(self, symbol: str, from_id: int, to_id: int | None) -> list[dict[str, Any]]:
        """Payloads of trades ``from_id..to_id`` (inclusive; None = up to the latest), in id order.

        Stops after ``max_backfill_trades``; raises ``BackfillError`` when the server refuses.
        """
        payloads: list[dict[str, Any]] = []
        next_id = from_id
        limit = self._settings.rest_limit
        while len(payloads) < self._settings.max_backfill_trades and (to_id is None or next_id <= to_id):
            page = await self._get({"symbol": symbol, "fromId": str(next_id), "limit": str(limit)})
            last_id: int | None = None
            for record in page:
                if not isinstance(record, Mapping):
                    continue
                record_id = record.get(self._id_key)
                if isinstance(record_id, int) and record_id < next_id:
                    continue
                if isinstance(record_id, int) and to_id is not None and record_id > to_id:
                    return payloads
                payloads.append(
                    trade_record_payload(record, symbol)
                    if self._endpoint == "historicalTrades"
                    else agg_trade_record_payload(record, symbol)
                )
                if isinstance(record_id, int):
                    last_id = record_id
            if last_id is None or len(page) < limit:
                break
            next_id = last_id + 1
        return payloads

    async def _get(self, params: dict[str, str]) -> list[Any]:
        try:
            return await self._rest.get(self._endpoint, params)
        except (HistoryFetchError, RetryExhaustedError) as error:
            raise BackfillError(str(error)) from error
