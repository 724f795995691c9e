"""The optional trade-history capability: how a connector says it has one, and ``TradeHistory.trades``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from coattail_framework.connector import BaseConnector
from coattail_framework.errors import PluginError
from coattail_framework.events import TradeEvent
from coattail_framework.history import HistoryFetchError, TradeHistory

T0 = datetime(2024, 8, 8, 23, 54, tzinfo=UTC)


class ListedHistory(TradeHistory):
    """Trades ``{"id", "second"}`` held in memory: one a second from ``T0``, ids from 100."""

    venue = "listed"
    max_page = 3

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.pages: list[int] = []
        self.closed = False

    async def first_at_or_after(self, symbol: str, start: datetime, end: datetime) -> Any | None:
        return next((r for r in self.records if start <= self.record_time(r) < end), None)  # type: ignore[operator]

    async def page(self, symbol: str, *, from_id: int, limit: int) -> list[Any]:
        self.pages.append(from_id)
        return [r for r in self.records if r["id"] >= from_id][:limit]

    def record_id(self, record: object) -> int | None:
        return record.get("id") if isinstance(record, Mapping) else None

    def record_time(self, record: object) -> datetime | None:
        return T0 + timedelta(seconds=record["second"]) if isinstance(record, Mapping) else None

    def normalize(self, record: Any, symbol: str, received_at: datetime) -> TradeEvent:
        trade_time = self.record_time(record)
        assert trade_time is not None
        return TradeEvent(
            event_id=f"listed:{symbol}:{record['id']}",
            exchange="listed",
            symbol=symbol,
            price=Decimal("1"),
            quantity=Decimal("2"),
            quote_volume=Decimal("2"),
            side="buy",
            timestamp=trade_time,
            ingestion_timestamp=received_at,
            trade_id=str(record["id"]),
        )

    async def aclose(self) -> None:
        self.closed = True


class Streaming(BaseConnector):
    default_exchange = "streaming"

    def connect(self) -> Any:
        raise NotImplementedError

    def normalize(self, raw: Mapping[str, Any]) -> list[TradeEvent]:
        return []

    def health_check(self) -> bool:
        return True

    async def shutdown(self) -> None:
        return None


class WithHistory(Streaming):
    def trade_history(self) -> TradeHistory:
        return ListedHistory([])


def collect(history: TradeHistory, start: datetime, end: datetime) -> list[str]:
    async def run() -> list[str]:
        async with history:
            return [event.event_id async for event in history.trades("XY", start, end)]

    return asyncio.run(run())


def test_a_connector_says_whether_it_offers_history_and_the_default_names_it() -> None:
    assert WithHistory.offers_history()
    assert not Streaming.offers_history()
    with pytest.raises(PluginError, match=r"test_history\.Streaming \(streaming\) offers no trade history"):
        Streaming().trade_history()


def test_trades_are_the_half_open_range_across_pages_and_the_history_is_closed() -> None:
    history = ListedHistory([{"id": 100 + n, "second": n} for n in range(10)])
    ids = collect(history, T0 + timedelta(seconds=2), T0 + timedelta(seconds=8))
    assert ids == [f"listed:XY:{n}" for n in range(102, 108)]  # the trade at `end` is left out
    assert history.pages == [102, 105, 108]
    assert history.closed


def test_trades_end_when_the_venue_has_nothing_newer_or_nothing_in_range() -> None:
    history = ListedHistory([{"id": 100 + n, "second": n} for n in range(4)])
    assert collect(history, T0, T0 + timedelta(hours=1)) == [f"listed:XY:{n}" for n in range(100, 104)]
    assert history.pages == [100, 103]  # the short second page says: nothing newer
    assert collect(ListedHistory([]), T0, T0 + timedelta(hours=1)) == []


def test_a_page_going_backwards_is_refused() -> None:
    history = ListedHistory([{"id": 100, "second": 0}])
    history.page = lambda symbol, *, from_id, limit: _async([{"id": 5, "second": 1}])  # type: ignore[method-assign]
    with pytest.raises(HistoryFetchError, match="listed history of XY: record without a valid trade id >= 100"):
        collect(history, T0, T0 + timedelta(hours=1))


async def _async(value: Any) -> Any:
    return value
