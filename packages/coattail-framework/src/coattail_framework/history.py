"""A connector's optional trade history: one venue's past trades over REST, for batch loads.

A connector that can read past trades returns a ``TradeHistory`` from
``BaseConnector.trade_history()`` (``BaseConnector.offers_history()`` says whether it can,
without building anything). The history owns everything venue-specific: URLs, paging,
rate limits, 429/418 handling, retries (``coattail_framework.resilience``) and the
normalization of a REST record to the ``TradeEvent`` the live connector emits, so history
and live trades share one schema. Callers (``coattail-stream-job load-history``) only page
by trade id.

Times are aware UTC datetimes; ranges are half-open, ``start <= trade time < end``. Trade
ids are the venue's integer ids (Binance: the aggregate id ``a``; Coinbase: ``trade_id``),
increasing with trade time. Runs on the caller's asyncio event loop (the batch job's CLI
process), never in the producer. Use it as an async context manager: it may own an HTTP
session that ``aclose()`` releases.

Example::

    connector = registry.get_connector("coinbase")(settings={"exchange": "coinbase"})
    async with connector.trade_history() as history:
        async for event in history.trades("BTC-USD", start, end):
            print(event.event_id)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from coattail_framework.errors import CoattailError
from coattail_framework.events import TradeEvent


class HistoryFetchError(CoattailError):
    """The venue refused a history request (bad symbol, bad parameter, unusable answer); not retried."""


class HistoryBannedError(HistoryFetchError):
    """The venue banned this client (Binance: HTTP 418) for ``retry_after_s`` seconds; stop and resume later."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TradeHistory(ABC):
    """One venue's REST trade history, paged by trade id (see the module docstring).

    Errors: ``HistoryFetchError`` for a refused request, ``HistoryBannedError`` for a ban,
    ``coattail_framework.resilience.RetryExhaustedError`` (naming the URL) when retryable
    failures (5xx, connection errors, 429 beyond its bound) outlast the retry policy.
    """

    venue: str
    """The venue id stamped on every ``TradeEvent`` (``exchange``), e.g. ``"binance"``."""
    max_page: int
    """The most records one ``page`` request may ask for."""

    @abstractmethod
    async def first_at_or_after(self, symbol: str, start: datetime, end: datetime) -> Any | None:
        """The record of the first trade with ``start <= trade time < end``, or None when there is none."""

    @abstractmethod
    async def page(self, symbol: str, *, from_id: int, limit: int) -> list[Any]:
        """Up to ``limit`` (``<= max_page``) records with trade id ``>= from_id``, in increasing id order.

        Fewer than ``limit`` means the venue has nothing newer yet. Records are as decoded from
        the venue's JSON; read them with ``record_id``, ``record_time`` and ``normalize``.
        """

    @abstractmethod
    def record_id(self, record: object) -> int | None:
        """A record's trade id, or None when it has no valid one."""

    @abstractmethod
    def record_time(self, record: object) -> datetime | None:
        """A record's trade time (aware UTC), or None when it has no valid one."""

    @abstractmethod
    def normalize(self, record: Any, symbol: str, received_at: datetime) -> TradeEvent:
        """Pure: the ``TradeEvent`` of one record, ``received_at`` (aware UTC) as its ingestion time.

        Raises ``ValueError`` naming the field when the record cannot be a trade.
        """

    async def aclose(self) -> None:  # noqa: B027 - a history without resources has nothing to release
        """Release what the history holds (an HTTP session it opened)."""

    async def __aenter__(self) -> TradeHistory:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def trades(self, symbol: str, start: datetime, end: datetime) -> AsyncIterator[TradeEvent]:
        """Every trade of ``symbol`` with ``start <= trade time < end``, in trade-id order, normalized.

        No checkpoint: for resumable loads page with ``first_at_or_after`` and ``page`` (as
        ``load-history`` does). A record ``normalize`` refuses raises its ``ValueError``.
        """
        first = await self.first_at_or_after(symbol, start, end)
        first_id = None if first is None else self.record_id(first)
        if first_id is None:
            return
        next_id = first_id
        while True:
            page = await self.page(symbol, from_id=next_id, limit=self.max_page)
            received_at = datetime.now(UTC)
            for record in page:
                trade_id, trade_time = self.record_id(record), self.record_time(record)
                if trade_id is None or trade_id < next_id:
                    raise HistoryFetchError(
                        f"{self.venue} history of {symbol}: record without a valid trade id >= {next_id}: "
                        f"{str(record)[:200]}"
                    )
                if trade_time is not None and trade_time >= end:
                    return
                yield self.normalize(record, symbol, received_at)
                next_id = trade_id + 1
            if len(page) < self.max_page:
                return
