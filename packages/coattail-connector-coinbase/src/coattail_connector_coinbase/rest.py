"""Coinbase Exchange public REST trades: gap backfill for the connector, and the trade history.

``GET {rest_url}/products/{product_id}/trades`` returns trades newest first, at most 1000
a page. Pagination is by trade id cursor: ``after=X`` gives the page of trades older than
``X``, ``before=X`` the page newer than ``X``; the ``CB-AFTER`` header holds the cursor
for the next older page (the page's oldest trade id) and ``CB-BEFORE`` the newest one.
Runs on the caller's event loop (the producer's, or a batch job's for ``history.py``); no
authentication (public endpoint). A failed page request (connection, timeout, HTTP 429/5xx,
a 200 whose body is HTML, truncated or not a JSON array) is retried with
``coattail_framework.resilience.retry_async``, ``retries`` attempts in all, then
``RetryExhaustedError`` names the URL; another HTTP error raises ``HistoryFetchError`` at once.
``fetch_gap`` reports either as ``BackfillError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from coattail_connector_coinbase.tracking import Gap
from coattail_framework.history import HistoryFetchError
from coattail_framework.resilience import Backoff, RetryExhaustedError, retry_async

LOG = logging.getLogger(__name__)


class BackfillError(Exception):
    """The REST endpoint could not be read; the message says which request and why."""


class _TransientError(Exception):
    """A failed page request worth repeating: HTTP 429/5xx, or a 200 that is not a JSON array."""


def _retryable(error: BaseException) -> bool:
    return isinstance(error, (_TransientError, aiohttp.ClientError, asyncio.TimeoutError))


@dataclass
class BackfillResult:
    """Trades of one gap as the REST endpoint returned them, oldest first."""

    trades: list[Mapping[str, Any]] = field(default_factory=list)
    invalid: list[object] = field(default_factory=list)
    """Items without a usable ``trade_id`` (kept for inspection by the caller)."""
    requests: int = 0


@dataclass(frozen=True)
class TradesPage:
    """One answer of the trades endpoint: items newest first, and the cursor of the next older page."""

    items: list[Any]
    older_cursor: int | None
    """``CB-AFTER``: pass it as ``after`` for the page of older trades (None when absent)."""


class TradesClient:
    """Reads pages of ``/products/{product_id}/trades`` by trade-id cursor."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        page_size: int = 1000,
        retries: int = 3,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._page_size = page_size
        self._retries = retries
        self._backoff = backoff or Backoff(initial=0.5, cap=10.0)
        self._sleep = sleep
        self.requests = 0
        """Page requests sent so far, repeated ones included."""

    async def fetch_gap(self, gap: Gap, max_trades: int) -> BackfillResult:
        """Trades ``gap.first``..``gap.last``, at most the newest ``max_trades`` of them."""
        result = BackfillResult()
        lowest = max(gap.first, gap.last - max_trades + 1)
        found: dict[int, Mapping[str, Any]] = {}
        cursor = gap.last + 1
        while cursor > lowest:
            try:
                page = await self.page(gap.product_id, after=cursor, limit=min(self._page_size, cursor - lowest))
            except (HistoryFetchError, RetryExhaustedError) as error:
                raise BackfillError(str(error)) from error
            result.requests += 1
            for item in page.items:
                trade_id = item.get("trade_id") if isinstance(item, Mapping) else None
                if not isinstance(trade_id, int) or isinstance(trade_id, bool):
                    result.invalid.append(item)
                elif lowest <= trade_id <= gap.last and isinstance(item, Mapping):
                    found[trade_id] = item
            if not page.items or page.older_cursor is None or page.older_cursor >= cursor:
                break
            cursor = page.older_cursor
        result.trades = [found[trade_id] for trade_id in sorted(found)]
        return result

    async def page(
        self, product_id: str, *, after: int | None = None, before: int | None = None, limit: int
    ) -> TradesPage:
        """Up to ``limit`` trades older than ``after``, or newer than ``before``, or the newest (neither)."""
        url = f"{self._base_url}/products/{product_id}/trades"
        params = {"limit": str(limit)}
        if after is not None:
            params["after"] = str(after)
        if before is not None:
            params["before"] = str(before)
        return await retry_async(
            lambda: self._attempt(url, params),
            what=f"GET {url} {params}",
            retryable=_retryable,
            backoff=self._backoff,
            max_attempts=self._retries,
            on_retry=lambda attempts, error, delay: LOG.warning(
                "GET %s %s attempt %d failed (%s: %s), retrying in %.1f s",
                url,
                params,
                attempts,
                type(error).__name__,
                error,
                delay,
            ),
            sleep=self._sleep,
        )

    async def _attempt(self, url: str, params: Mapping[str, str]) -> TradesPage:
        self.requests += 1
        async with self._session.get(url, params=params) as response:
            text = await response.text(errors="replace")
            if response.status != 200:
                problem = f"HTTP {response.status}: {text[:200]}"
                if response.status == 429 or response.status >= 500:
                    raise _TransientError(problem)
                raise HistoryFetchError(f"GET {url} {dict(params)}: {problem}")
            try:
                body = json.loads(text)
            except (ValueError, RecursionError):
                body = None
            if not isinstance(body, list):
                raise _TransientError(f"expected a JSON array, got {text[:200]}")
            cursor = response.headers.get("CB-AFTER")
            return TradesPage(body, int(cursor) if cursor and cursor.isascii() and cursor.isdigit() else None)
