"""The connector's trade history: ``/products/{id}/trades`` of the simulator serving the bundled recording.

SKL-USD trades 1568267..1568319 (53, 2021-04-17 16:43:37-16:44:06 UTC) are served once a
websocket client has made the whole recording. Faults (429, 5xx) come from a real local
proxy in front of the simulator.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp import web

from coattail_connector_coinbase import CoinbaseConnector, CoinbaseSimulator
from coattail_connector_coinbase.history import CoinbaseTradeHistory
from coattail_connector_coinbase.normalize import parse_time
from coattail_framework.resilience import Backoff, RetryExhaustedError

PRODUCT = "SKL-USD"
START = parse_time("2021-04-17T16:43:48.875223Z")  # trades 1568277 and 1568278
END = parse_time("2021-04-17T16:44:03.003815Z")  # trades 1568308 and 1568309: left out
EXPECTED = list(range(1568277, 1568308))


@pytest.fixture
async def served(simulator: CoinbaseSimulator) -> AsyncIterator[CoinbaseSimulator]:
    """The simulator with every recorded frame made (so REST serves every recorded trade)."""
    await simulator.start()
    request = json.dumps({"type": "subscribe", "product_ids": simulator.products, "channels": ["matches"]})
    async with websockets.connect(simulator.connector_settings()["url"], max_queue=None) as websocket:
        await websocket.send(request)
        assert await simulator.wait_drained(10)
    yield simulator
    await simulator.stop()


@pytest.fixture
async def proxy(served: CoinbaseSimulator) -> AsyncIterator[Callable[[list[int]], Any]]:
    """A local server answering the given statuses first, then passing requests on to the simulator."""
    runners: list[web.AppRunner] = []
    upstream = served.connector_settings()["rest_url"]

    async def start(statuses: list[int]) -> tuple[str, list[str]]:
        seen: list[str] = []

        async def trades(request: web.Request) -> web.Response:
            seen.append(request.query_string)
            if statuses:
                return web.json_response({"message": "scripted"}, status=statuses.pop(0))
            async with aiohttp.ClientSession() as http, http.get(upstream + request.rel_url.path_qs) as answer:
                headers = {k: v for k, v in answer.headers.items() if k.startswith("CB-")}
                return web.Response(body=await answer.read(), status=answer.status, headers=headers)

        app = web.Application()
        app.router.add_get("/products/{product_id}/trades", trades)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}", seen

    yield start
    for runner in runners:
        await runner.cleanup()


def history_at(rest_url: str, sleeps: list[float], **settings: Any) -> CoinbaseTradeHistory:
    """The connector's history of ``rest_url`` (pages of 10), its retry waits recorded in ``sleeps``."""

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    connector = CoinbaseConnector(settings={"rest_url": rest_url, "rest_page_size": 10, **settings})
    return CoinbaseTradeHistory(connector.settings, backoff=Backoff(initial=0.5, cap=10.0, jitter=0.0), sleep=sleep)


async def trade_ids(history: CoinbaseTradeHistory, start: datetime = START, end: datetime = END) -> list[int]:
    async with history:
        return [int(event.trade_id or 0) async for event in history.trades(PRODUCT, start, end)]


async def test_the_connector_offers_the_trades_of_a_half_open_range_paged_by_trade_id(
    served: CoinbaseSimulator, recorded_matches: list[dict[str, Any]]
) -> None:
    recorded = sorted(
        {m["trade_id"] for m in recorded_matches if m["product_id"] == PRODUCT and START <= parse_time(m["time"]) < END}
    )
    assert recorded == EXPECTED  # 31 trades: the two at START in, the two at END out
    assert CoinbaseConnector.offers_history()
    connector = CoinbaseConnector(settings={**served.connector_settings(), "rest_page_size": 10})
    history = connector.trade_history()

    async with history:
        events = [event async for event in history.trades(PRODUCT, START, END)]
        # back from the newest: 1568319.., ..1568270 holds a trade before START; then forward from 1568277
        assert history.requests == 5 + 4

    assert [int(event.trade_id or 0) for event in events] == EXPECTED
    assert {event.event_id.rsplit(":", 1)[0] for event in events} == {f"coinbase:{PRODUCT}"}
    assert events[0].timestamp == START
    assert all(START <= event.timestamp < END for event in events)
    assert events[-1].timestamp < END


async def test_a_range_with_no_trade_and_a_range_past_the_newest_trade(served: CoinbaseSimulator) -> None:
    rest_url = served.connector_settings()["rest_url"]
    quiet_start, quiet_end = parse_time("2021-04-17T16:43:38.7Z"), parse_time("2021-04-17T16:43:44.4Z")
    assert await trade_ids(history_at(rest_url, [])) == EXPECTED
    assert await trade_ids(history_at(rest_url, []), quiet_start, quiet_end) == []
    late = await trade_ids(
        history_at(rest_url, []), parse_time("2021-04-17T16:44:04.5Z"), parse_time("2030-01-01T00:00:00Z")
    )
    assert late == [1568315, 1568316, 1568317, 1568318, 1568319]


async def test_a_429_is_retried_with_the_framework_policy_then_the_pages_continue(
    proxy: Callable[[list[int]], Any],
) -> None:
    rest_url, seen = await proxy([429, 503])
    sleeps: list[float] = []
    assert await trade_ids(history_at(rest_url, sleeps)) == EXPECTED
    assert sleeps == [0.5, 1.0]
    assert seen[:3] == ["limit=10"] * 3  # the first page, asked three times


async def test_a_persistent_5xx_ends_in_retry_exhausted_naming_the_url(proxy: Callable[[list[int]], Any]) -> None:
    rest_url, seen = await proxy([503] * 3)
    sleeps: list[float] = []
    with pytest.raises(
        RetryExhaustedError, match=rf"GET {rest_url}/products/{PRODUCT}/trades .* failed 3 time"
    ) as ended:
        await trade_ids(history_at(rest_url, sleeps, rest_retries=3))
    assert "HTTP 503" in str(ended.value)
    assert (len(seen), sleeps) == (3, [0.5, 1.0])
