"""Binance's ``GET /api/v3/aggTrades`` within the request-weight limit, for the history loader.

- Each request weighs 4; Binance allows 6,000 weight per minute per IP (minutes of the wall
  clock) and reports what is used in ``X-MBX-USED-WEIGHT-1M``. The client keeps that figure
  (its own count when the header is missing) and, when the next request would go over
  ``weight_per_minute``, waits for the next minute instead of sending it.
- HTTP 429: waits ``Retry-After`` seconds and sends the same request again.
- HTTP 418 (IP banned, 2 minutes to 3 days): raises ``BinanceBanError`` with the ``Retry-After``.
- 5xx and connection errors are retried ``max_retries`` times with exponential backoff; any
  other 4xx raises ``HistoryFetchError`` with Binance's message (bad symbol, bad parameter).

Runs on the loader's event loop; ``clock`` (seconds since the epoch) and ``sleep`` are
injectable so tests can move time forward.

Example::

    async with aiohttp.ClientSession() as session:
        client = AggTradesClient(session, "https://api.binance.com")
        page = await client.page("BTCUSDT", from_id=3735683259)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from coattail_framework.errors import CoattailError

LOG = logging.getLogger(__name__)

AGG_TRADES_PATH = "/api/v3/aggTrades"
AGG_TRADES_WEIGHT = 4
"""Request weight of ``aggTrades`` (Binance spot API documentation)."""
MAX_LIMIT = 1000
"""The most records one ``aggTrades`` request returns."""
MAX_TIME_WINDOW_MS = 3_599_999
"""``endTime - startTime`` must stay below one hour when both are sent."""
DEFAULT_RETRY_AFTER_S = 60.0


class HistoryFetchError(CoattailError):
    """Binance refused a request, or kept failing after the retries."""


class BinanceBanError(HistoryFetchError):
    """HTTP 418: this IP is banned for ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class RequestCounters:
    """What the client did so far (for progress and the final summary)."""

    requests: int = 0
    weight_waits: int = 0
    weight_wait_s: float = 0.0
    rate_limited: int = 0
    """HTTP 429 answers received (each waited out)."""
    retries: int = 0
    """Requests repeated after a 5xx answer or a connection error."""
    used_weight: int = 0
    """The last ``X-MBX-USED-WEIGHT-1M`` (or own count) in the current minute."""


class AggTradesClient:
    """Sends ``aggTrades`` requests one at a time, staying under the weight limit."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        weight_per_minute: int = 6000,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if weight_per_minute < AGG_TRADES_WEIGHT:
            raise ValueError(f"weight_per_minute must be >= {AGG_TRADES_WEIGHT} (one request), got {weight_per_minute}")
        self._session = session
        self._url = base_url.rstrip("/") + AGG_TRADES_PATH
        self._weight_per_minute = weight_per_minute
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_retries = max_retries
        self._clock = clock
        self._sleep = sleep
        self._minute = -1
        self.counters = RequestCounters()

    async def page(self, symbol: str, *, from_id: int, limit: int = MAX_LIMIT) -> list[Any]:
        """Up to ``limit`` aggregate trade records with id >= ``from_id``, in id order, as decoded."""
        return await self._get({"symbol": symbol, "fromId": str(from_id), "limit": str(limit)})

    async def first_at_or_after(self, symbol: str, start_ms: int, end_ms: int) -> Any | None:
        """The first aggregate trade with ``start_ms <= T < end_ms`` (ms since the epoch, UTC), or None.

        Binance answers a ``startTime``/``endTime`` query only for windows under one hour, so
        an empty stretch is searched one hour at a time.
        """
        window_start = start_ms
        while window_start < end_ms:
            window_end = min(window_start + MAX_TIME_WINDOW_MS, end_ms - 1)
            params = {"symbol": symbol, "startTime": str(window_start), "endTime": str(window_end), "limit": "1"}
            found = await self._get(params)
            if found:
                return found[0]
            window_start = window_end + 1
        return None

    async def _get(self, params: Mapping[str, str]) -> list[Any]:
        attempt = 0
        while True:
            await self._stay_under_weight()
            self.counters.requests += 1
            try:
                async with self._session.get(self._url, params=params, timeout=self._timeout) as response:
                    self._note_weight(response.headers)
                    if response.status == 200:
                        return self._records(await response.json(content_type=None), params)
                    text = (await response.text())[:300]
                    retry_after = _retry_after(response.headers)
                    if response.status == 418:
                        raise BinanceBanError(
                            f"GET {self._url}: HTTP 418, Binance banned this IP for {retry_after:.0f} s "
                            f"(Retry-After) after too many requests: {text}",
                            retry_after,
                        )
                    if response.status == 429:
                        self.counters.rate_limited += 1
                        LOG.warning("GET %s: HTTP 429, waiting %.0f s (Retry-After): %s", self._url, retry_after, text)
                        await self._sleep(retry_after)
                        self._minute = -1
                        continue
                    if response.status < 500:
                        raise HistoryFetchError(f"GET {self._url} {dict(params)}: HTTP {response.status}: {text}")
                    problem = f"HTTP {response.status}: {text}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                problem = f"{type(error).__name__}: {error}"
            if attempt >= self._max_retries:
                raise HistoryFetchError(
                    f"GET {self._url} {dict(params)}: gave up after {attempt + 1} attempts: {problem}"
                )
            delay = min(0.5 * 2.0**attempt, 30.0)
            LOG.warning("GET %s failed (%s), retrying in %.1f s", self._url, problem, delay)
            attempt += 1
            self.counters.retries += 1
            await self._sleep(delay)

    def _records(self, body: object, params: Mapping[str, str]) -> list[Any]:
        if not isinstance(body, list):
            raise HistoryFetchError(f"GET {self._url} {dict(params)}: expected a JSON list, got {str(body)[:200]}")
        return body

    def _note_weight(self, headers: Mapping[str, str]) -> None:
        minute = int(self._clock() // 60)
        if minute != self._minute:
            self._minute, self.counters.used_weight = minute, 0
        used = headers.get("X-MBX-USED-WEIGHT-1M", "")
        self.counters.used_weight = int(used) if used.isdigit() else self.counters.used_weight + AGG_TRADES_WEIGHT

    async def _stay_under_weight(self) -> None:
        now = self._clock()
        if int(now // 60) != self._minute or self.counters.used_weight + AGG_TRADES_WEIGHT <= self._weight_per_minute:
            return
        wait = 60.0 - now % 60.0
        LOG.info(
            "request weight %d of %d per minute used; waiting %.1f s for the next minute",
            self.counters.used_weight,
            self._weight_per_minute,
            wait,
        )
        self.counters.weight_waits += 1
        self.counters.weight_wait_s += wait
        await self._sleep(wait)


def _retry_after(headers: Mapping[str, str]) -> float:
    value = headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
