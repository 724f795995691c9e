"""Coinbase Exchange public REST trades, used to backfill trades the websocket missed.

``GET {rest_url}/products/{product_id}/trades`` returns trades newest first, at most 1000
a page. Pagination is by trade id cursor: ``after=X`` gives the page of trades older than
``X``, ``before=X`` the page newer than ``X``; the ``CB-AFTER`` header holds the cursor
for the next older page (the page's oldest trade id) and ``CB-BEFORE`` the newest one.
Runs on the producer's event loop; no authentication (public endpoint). Any failure of a
page request (connection, timeout, HTTP 429/5xx, a 200 whose body is HTML, truncated or not
a JSON array) is retried ``retries`` times in all, then raised as ``BackfillError``; other
HTTP errors are not retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from coattail_connector_coinbase.tracking import Gap


class BackfillError(Exception):
    """The REST endpoint could not be read; the message says which request and why."""


@dataclass
class BackfillResult:
    """Trades of one gap as the REST endpoint returned them, oldest first."""

    trades: list[Mapping[str, Any]] = field(default_factory=list)
    invalid: list[object] = field(default_factory=list)
    """Items without a usable ``trade_id`` (kept for inspection by the caller)."""
    requests: int = 0


class TradesClient:
    """Reads ranges of trade ids from ``/products/{product_id}/trades``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        page_size: int = 1000,
        retries: int = 3,
        retry_delay: float = 0.5,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._page_size = page_size
        self._retries = retries
        self._retry_delay = retry_delay

    async def fetch_gap(self, gap: Gap, max_trades: int) -> BackfillResult:
        """Trades ``gap.first``..``gap.last``, at most the newest ``max_trades`` of them."""
        result = BackfillResult()
        lowest = max(gap.first, gap.last - max_trades + 1)
        found: dict[int, Mapping[str, Any]] = {}
        cursor = gap.last + 1
        while cursor > lowest:
            page, older_cursor = await self._page(
                gap.product_id, after=cursor, limit=min(self._page_size, cursor - lowest)
            )
            result.requests += 1
            for item in page:
                trade_id = item.get("trade_id") if isinstance(item, Mapping) else None
                if not isinstance(trade_id, int) or isinstance(trade_id, bool):
                    result.invalid.append(item)
                elif lowest <= trade_id <= gap.last and isinstance(item, Mapping):
                    found[trade_id] = item
            if not page or older_cursor is None or older_cursor >= cursor:
                break
            cursor = older_cursor
        result.trades = [found[trade_id] for trade_id in sorted(found)]
        return result

    async def _page(self, product_id: str, *, after: int, limit: int) -> tuple[list[Any], int | None]:
        url = f"{self._base_url}/products/{product_id}/trades"
        params = {"after": str(after), "limit": str(limit)}
        problem = ""
        for attempt in range(self._retries):
            if attempt:
                await asyncio.sleep(self._retry_delay * 2 ** (attempt - 1))
            try:
                async with self._session.get(url, params=params) as response:
                    if response.status == 200:
                        body = await response.json(content_type=None)
                        if isinstance(body, list):
                            cursor = response.headers.get("CB-AFTER")
                            return body, int(cursor) if cursor and cursor.isascii() and cursor.isdigit() else None
                        problem = f"expected a JSON array, got {str(body)[:200]}"
                        continue
                    problem = f"HTTP {response.status}: {(await response.text(errors='replace'))[:200]}"
                    if response.status != 429 and response.status < 500:
                        break
            except Exception as error:  # noqa: BLE001 - any failed request is retried, then reported
                problem = f"{type(error).__name__}: {str(error)[:200]}"
        raise BackfillError(f"GET {url} {params} failed after {self._retries} attempt(s): {problem}")
