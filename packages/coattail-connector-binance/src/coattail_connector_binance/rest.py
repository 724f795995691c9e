"""Binance's public REST GETs: the one home of request weight, 429/418 and retries.

Used by the live gap backfill (``backfill.TradeBackfill``, on the producer's event loop) and
by the trade history (``history.BinanceTradeHistory``, on a batch job's event loop).

- Weight: each endpoint has a request weight (``ENDPOINT_WEIGHT``); Binance allows
  ``rest_weight_limit_per_minute`` (6,000) per minute of the wall clock per IP and reports
  what is used in ``X-MBX-USED-WEIGHT-1M``. The client keeps that figure (its own count when
  the header is missing) and, when the next request would go over the limit, waits for the
  next minute instead of sending it.
- HTTP 429 and 418 (banned): the ``Retry-After`` is waited out when it is at most
  ``rest_max_retry_after_s``, then the request is sent again; a longer one raises
  ``HistoryFetchError`` (429) or ``BinanceBanError`` (418) at once.
- 5xx, connection errors, timeouts and a 200 whose body is not a JSON list (HTML, truncated)
  are retried with ``coattail_framework.resilience.retry_async``; a 429 counts as an attempt
  too. ``rest_max_retries + 1`` attempts in all, then ``RetryExhaustedError`` names the URL.
  Any other 4xx raises ``HistoryFetchError`` with Binance's message (bad symbol, parameter).

``clock`` (seconds since the epoch) and ``sleep`` are injectable so tests move time forward.

Example::

    rest = BinanceRest(session, BinanceSettings(rest_url="https://api.binance.com"))
    records = await rest.get("aggTrades", {"symbol": "BTCUSDT", "fromId": "3735683259", "limit": "1000"})
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from coattail_connector_binance.settings import BinanceSettings
from coattail_framework.history import HistoryBannedError, HistoryFetchError
from coattail_framework.resilience import Backoff, retry_async

LOG = logging.getLogger(__name__)

ENDPOINT_WEIGHT = {"historicalTrades": 25, "aggTrades": 4}
"""Request weight of each endpoint (Binance spot API documentation)."""
DEFAULT_RETRY_AFTER_S = 60.0
"""Assumed when a 429/418 has no usable ``Retry-After``."""


class BinanceBanError(HistoryBannedError):
    """HTTP 418: this IP is banned for ``retry_after_s`` seconds (longer than ``rest_max_retry_after_s``)."""


class _TransientError(Exception):
    """A failed attempt worth repeating: 5xx, 429 or a 200 that is not a JSON list."""


class _RateLimitedError(_TransientError):
    """HTTP 429/418 with a ``Retry-After`` short enough to wait out."""


@dataclass
class RequestCounters:
    """What the client did so far (for progress, summaries and tests)."""

    requests: int = 0
    weight_waits: int = 0
    weight_wait_s: float = 0.0
    rate_limited: int = 0
    """HTTP 429/418 answers received."""
    retries: int = 0
    """Requests repeated after a 5xx, an unusable 200 or a connection error (429s not counted)."""
    used_weight: int = 0
    """The last ``X-MBX-USED-WEIGHT-1M`` (or own count) in the current minute."""


def _json_list(text: str) -> list[Any] | None:
    """``text`` decoded when it is a JSON list, else None (HTML, truncated or otherwise not JSON)."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, list) else None


def _seconds(header: str | None) -> float:
    """A ``Retry-After`` header in seconds; the default when missing or not a finite number >= 0."""
    try:
        seconds = float(header) if header is not None else DEFAULT_RETRY_AFTER_S
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
    return seconds if 0 <= seconds < float("inf") else DEFAULT_RETRY_AFTER_S


def _retryable(error: BaseException) -> bool:
    return isinstance(error, (_TransientError, aiohttp.ClientError, asyncio.TimeoutError))


class BinanceRest:
    """Sends Binance REST GETs one at a time, staying under the weight limit (see the module docstring).

    ``session`` None: the client opens its own on first use; ``aclose()`` closes it.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        settings: BinanceSettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: Backoff | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._backoff = backoff or Backoff(initial=0.5, cap=30.0)
        self._timeout = aiohttp.ClientTimeout(total=settings.rest_timeout_s)
        self._minute = -1
        self._retry_after = 0.0
        self.counters = RequestCounters()

    async def get(self, endpoint: str, params: Mapping[str, str]) -> list[Any]:
        """The decoded JSON list ``GET {rest_url}{rest_path_prefix}/{endpoint}?params`` answers."""
        url = f"{self._settings.rest_url}{self._settings.rest_path_prefix}/{endpoint}"
        weight = ENDPOINT_WEIGHT[endpoint]
        return await retry_async(
            lambda: self._attempt(url, weight, params),
            what=f"GET {url} {dict(params)}",
            retryable=_retryable,
            backoff=self._backoff,
            max_attempts=self._settings.rest_max_retries + 1,
            on_retry=self._on_retry,
            sleep=self._wait,
        )

    async def aclose(self) -> None:
        """Close the session the client opened itself (a caller's session stays open)."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _attempt(self, url: str, weight: int, params: Mapping[str, str]) -> list[Any]:
        await self._stay_under_weight(weight)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self.counters.requests += 1
        async with self._session.get(url, params=params, timeout=self._timeout) as response:
            self._note_weight(response.headers, weight)
            text = await response.text(errors="replace")
            if response.status == 200:
                body = _json_list(text)
                if body is None:
                    raise _TransientError(f"HTTP 200 but not a JSON list: {text[:200]}")
                return body
            if response.status in (418, 429):
                return self._rate_limited(url, response.status, _seconds(response.headers.get("Retry-After")), text)
            if response.status < 500:
                raise HistoryFetchError(f"GET {url} {dict(params)}: HTTP {response.status}: {text[:300]}")
            raise _TransientError(f"HTTP {response.status}: {text[:200]}")

    def _rate_limited(self, url: str, status: int, retry_after: float, text: str) -> list[Any]:
        self.counters.rate_limited += 1
        self._minute = -1
        if retry_after > self._settings.rest_max_retry_after_s:
            if status == 418:
                raise BinanceBanError(
                    f"GET {url}: HTTP 418, Binance banned this IP for {retry_after:.0f} s (Retry-After) "
                    f"after too many requests: {text[:300]}",
                    retry_after,
                )
            raise HistoryFetchError(
                f"GET {url}: HTTP 429 with Retry-After {retry_after:.0f} s, longer than "
                f"rest_max_retry_after_s={self._settings.rest_max_retry_after_s:g}: {text[:200]}"
            )
        self._retry_after = retry_after
        raise _RateLimitedError(f"HTTP {status}, Retry-After {retry_after:.0f} s: {text[:200]}")

    def _on_retry(self, attempts: int, error: BaseException, delay: float) -> None:
        if isinstance(error, _RateLimitedError):
            LOG.warning("Binance REST: %s; waiting %.1f s", error, max(delay, self._retry_after))
            return
        self.counters.retries += 1
        LOG.warning(
            "Binance REST attempt %d failed (%s: %s), retrying in %.1f s", attempts, type(error).__name__, error, delay
        )

    async def _wait(self, delay: float) -> None:
        """The policy's delay, or the server's ``Retry-After`` when that is longer."""
        wait, self._retry_after = max(delay, self._retry_after), 0.0
        await self._sleep(wait)

    def _note_weight(self, headers: Mapping[str, str], weight: int) -> None:
        minute = int(self._clock() // 60)
        if minute != self._minute:
            self._minute, self.counters.used_weight = minute, 0
        used = headers.get("X-MBX-USED-WEIGHT-1M", "")
        self.counters.used_weight = int(used) if used.isdigit() else self.counters.used_weight + weight

    async def _stay_under_weight(self, weight: int) -> None:
        now = self._clock()
        limit = self._settings.rest_weight_limit_per_minute
        if int(now // 60) != self._minute or self.counters.used_weight + weight <= limit:
            return
        wait = 60.0 - now % 60.0
        LOG.info(
            "request weight %d of %d per minute used; waiting %.1f s for the next minute",
            self.counters.used_weight,
            limit,
            wait,
        )
        self.counters.weight_waits += 1
        self.counters.weight_wait_s += wait
        await self._sleep(wait)
