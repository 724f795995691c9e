"""Fill trade-id gaps from Binance's public REST trades endpoints.

``GET {prefix}/historicalTrades?symbol=&fromId=&limit=`` (weight 25) for the ``trade``
stream, ``GET {prefix}/aggTrades?symbol=&fromId=&limit=`` (weight 4) for ``aggTrade``.
Records come back as websocket-shaped payloads so one ``normalize`` serves both paths.
Honours ``Retry-After`` on 429/418, watches ``X-MBX-USED-WEIGHT-1M`` and waits for the next
minute before going over the weight limit. A 5xx, a network error or a 200 whose body is not
a JSON list (HTML, truncated JSON) is retried ``rest_max_retries`` times, then reported as
``BackfillError``; nothing else escapes. Runs on the producer's event loop.

Example::

    async with aiohttp.ClientSession() as session:
        backfill = TradeBackfill(session, settings)
        payloads = await backfill.fetch("BTCUSDT", from_id=3735683300, to_id=3735683310)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from coattail_connector_binance.settings import BinanceSettings
from coattail_framework.errors import CoattailError

LOG = logging.getLogger(__name__)

ENDPOINT_WEIGHT = {"historicalTrades": 25, "aggTrades": 4}
"""Request weight of each endpoint (Binance spot API documentation)."""


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


def _json_list(text: str) -> list[Any] | None:
    """``text`` decoded when it is a JSON list, else None (HTML, truncated or otherwise not JSON)."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, list) else None


def _seconds(header: str | None, *, default: float) -> float:
    """A ``Retry-After`` header in seconds; ``default`` when missing or not a finite number >= 0."""
    try:
        seconds = float(header) if header is not None else default
    except ValueError:
        return default
    return seconds if 0 <= seconds < float("inf") else default


class TradeBackfill:
    """Pages through the REST trades endpoint of one venue."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: BinanceSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._settings = settings
        self._sleep = sleep
        self._endpoint = "historicalTrades" if settings.stream == "trade" else "aggTrades"
        self._id_key = "id" if settings.stream == "trade" else "a"
        self.used_weight = 0
        """The last ``X-MBX-USED-WEIGHT-1M`` the server reported."""
        self._weight_minute = -1

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
        url = f"{self._settings.rest_url}{self._settings.rest_path_prefix}/{self._endpoint}"
        weight = ENDPOINT_WEIGHT[self._endpoint]
        timeout = aiohttp.ClientTimeout(total=self._settings.rest_timeout_s)
        last_error = ""
        for attempt in range(self._settings.rest_max_retries + 1):
            await self._stay_under_weight(weight)
            try:
                async with self._session.get(url, params=params, timeout=timeout) as response:
                    self._note_weight(response.headers)
                    text = await response.text(errors="replace")
                    if response.status == 200:
                        body = _json_list(text)
                        if body is not None:
                            return body
                        LOG.warning("GET %s: HTTP 200 but not a JSON list, retrying: %.200s", url, text)
                        last_error = f"HTTP 200 but not a JSON list: {text[:200]}"
                        await self._sleep(min(2.0**attempt * 0.5, 30.0))
                        continue
                    if response.status in (418, 429):
                        retry_after = _seconds(response.headers.get("Retry-After"), default=60.0)
                        if retry_after > self._settings.rest_max_retry_after_s:
                            raise BackfillError(
                                f"GET {url}: HTTP {response.status} with Retry-After {retry_after:.0f} s, longer than "
                                f"rest_max_retry_after_s={self._settings.rest_max_retry_after_s}: {text[:200]}"
                            )
                        log = LOG.error if response.status == 418 else LOG.warning
                        log("GET %s: HTTP %d, waiting %.1f s: %s", url, response.status, retry_after, text[:200])
                        await self._sleep(retry_after)
                        continue
                    if response.status < 500:
                        raise BackfillError(f"GET {url} {params}: HTTP {response.status}: {text[:200]}")
                    LOG.warning("GET %s: HTTP %d, retrying: %s", url, response.status, text[:200])
                    last_error = f"HTTP {response.status}: {text[:200]}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                LOG.warning("GET %s failed (%s), retrying", url, error)
                last_error = f"{type(error).__name__}: {error}"
            await self._sleep(min(2.0**attempt * 0.5, 30.0))
        raise BackfillError(
            f"GET {url} {params}: gave up after {self._settings.rest_max_retries + 1} attempts; last: {last_error}"
        )

    def _note_weight(self, headers: Mapping[str, str]) -> None:
        used = headers.get("X-MBX-USED-WEIGHT-1M")
        if used is not None and used.isdigit():
            self.used_weight = int(used)
            self._weight_minute = int(time.time() // 60)

    async def _stay_under_weight(self, weight: int) -> None:
        now = time.time()
        if int(now // 60) != self._weight_minute:
            self.used_weight = 0
            return
        if self.used_weight + weight > self._settings.rest_weight_limit_per_minute:
            wait = 60.0 - now % 60.0
            LOG.warning("REST weight %d/min nearly used, waiting %.1f s for the next minute", self.used_weight, wait)
            await self._sleep(wait)
            self.used_weight = 0
