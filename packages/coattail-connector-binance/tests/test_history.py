"""The connector's trade history (aggTrades) over real local servers: the simulator, and scripted answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from coattail_connector_binance import BinanceConnector, BinanceSettings, BinanceSimulator
from coattail_connector_binance.history import BinanceTradeHistory
from coattail_connector_binance.rest import BinanceBanError
from coattail_framework.history import HistoryFetchError
from coattail_framework.recordings import RecordedMessage
from coattail_framework.resilience import Backoff, RetryExhaustedError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECORD = {"a": 1, "p": "1.0", "q": "1.0", "f": 1, "l": 1, "T": 1_723_161_600_000, "m": True, "M": True}


async def test_the_connector_offers_the_aggtrades_of_a_half_open_range_across_pages(
    ws_data: Path, trade_frames: Callable[[Path, int], list[RecordedMessage]]
) -> None:
    frames = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 2600)
    trades = sorted((data["t"], data["T"]) for data in (json.loads(f.payload)["data"] for f in frames))
    simulator = BinanceSimulator(speed=1e6)  # publishes the whole recording at once
    simulator.load(frames)
    await simulator.start()
    try:
        assert await simulator.wait_drained(30)
        start_ms, end_ms = trades[100][1], trades[2500][1]
        expected = [trade_id for trade_id, trade_ms in trades if start_ms <= trade_ms < end_ms]
        connector = BinanceConnector(settings=simulator.connector_settings())
        assert BinanceConnector.offers_history()
        async with connector.trade_history() as history:
            assert isinstance(history, BinanceTradeHistory)
            start, end = EPOCH + timedelta(milliseconds=start_ms), EPOCH + timedelta(milliseconds=end_ms)
            events = [event async for event in history.trades("BTCUSDT", start, end)]
            assert history.counters.requests == 1 + 3  # locate, then three pages of at most 1,000
    finally:
        await simulator.stop()
    assert [int(event.trade_id or 0) for event in events] == expected
    assert len(expected) > 2000
    assert all(start <= event.timestamp < end for event in events)
    assert {event.event_id.rsplit(":", 1)[0] for event in events} == {"binance:BTCUSDT"}


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[list[web.Response]], Any]]:
    """Starts a server answering ``/api/v3/aggTrades`` with the given responses in turn."""
    runners: list[web.AppRunner] = []

    async def start(responses: list[web.Response]) -> str:
        async def agg_trades(_: web.Request) -> web.Response:
            return responses.pop(0)

        app = web.Application()
        app.router.add_get("/api/v3/aggTrades", agg_trades)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def history_at(base: str, session: aiohttp.ClientSession, sleeps: list[float], **settings: Any) -> BinanceTradeHistory:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return BinanceTradeHistory(
        BinanceSettings(rest_url=base, **settings),
        session=session,
        sleep=sleep,
        backoff=Backoff(initial=0.5, cap=30.0, jitter=0.0),
    )


async def test_server_errors_are_retried_with_the_framework_policy_then_reported(
    serve: Callable[[list[web.Response]], Any],
) -> None:
    sleeps: list[float] = []
    base = await serve([web.Response(status=503), web.Response(status=502), web.json_response([RECORD])])
    async with aiohttp.ClientSession() as session:
        history = history_at(base, session, sleeps, rest_max_retries=2)
        assert await history.page("BTCUSDT", from_id=1) == [RECORD]
        assert (history.counters.retries, sleeps) == (2, [0.5, 1.0])
        assert history.counters.used_weight == 3 * 4  # no weight header: the client counts every request

    base = await serve([web.Response(status=500, text="boom") for _ in range(3)])
    async with aiohttp.ClientSession() as session:
        history = history_at(base, session, sleeps, rest_max_retries=2)
        with pytest.raises(RetryExhaustedError, match=rf"GET {base}/api/v3/aggTrades .* failed 3 time.*HTTP 500: boom"):
            await history.page("BTCUSDT", from_id=1)

    invalid = web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
    html = web.Response(text="<html>maintenance</html>", content_type="text/html")
    base = await serve([invalid, html, web.json_response([RECORD])])
    async with aiohttp.ClientSession() as session:
        history = history_at(base, session, sleeps)
        with pytest.raises(HistoryFetchError, match=r"HTTP 400: .*Invalid symbol"):
            await history.page("NOPE", from_id=1)
        assert await history.page("BTCUSDT", from_id=1) == [RECORD]  # a 200 that is not a JSON list is retried
        assert history.counters.retries == 1


async def test_a_short_429_is_waited_out_and_a_long_418_is_a_ban(serve: Callable[[list[web.Response]], Any]) -> None:
    sleeps: list[float] = []
    limited = web.json_response({"code": -1003}, status=429, headers={"Retry-After": "7"})
    banned = web.json_response({"code": -1003}, status=418, headers={"Retry-After": "7200"})
    base = await serve([limited, web.json_response([RECORD]), banned])
    async with aiohttp.ClientSession() as session:
        history = history_at(base, session, sleeps)
        assert await history.page("BTCUSDT", from_id=1) == [RECORD]
        assert (sleeps, history.counters.rate_limited, history.counters.retries) == ([7.0], 1, 0)
        with pytest.raises(BinanceBanError, match="HTTP 418, Binance banned this IP for 7200 s") as ban:
            await history.page("BTCUSDT", from_id=2)
    assert ban.value.retry_after_s == 7200
