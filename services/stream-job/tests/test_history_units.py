"""``load-history`` parts on their own: checkpoint arithmetic, progress display, REST retries."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError

from coattail_stream_job.history.checkpoint import IdRange, LoadCheckpoint
from coattail_stream_job.history.client import AggTradesClient, HistoryFetchError
from coattail_stream_job.history.progress import LoadStats, LogProgress, TerminalProgress, default_reporter

START_MS = 1_723_161_600_000


def test_checkpoint_merges_ranges_and_skips_stored_ids() -> None:
    checkpoint = LoadCheckpoint(symbol="BTCUSDT")
    for first, last in [(100, 199), (300, 399), (200, 249), (380, 450)]:
        checkpoint = checkpoint.with_pending(["some/file.parquet"]).with_stored(IdRange(first=first, last=last))
    assert checkpoint.stored == [IdRange(first=100, last=249), IdRange(first=300, last=450)]
    assert checkpoint.pending == []
    assert (checkpoint.last_stored_id, checkpoint.stored_count) == (450, 150 + 151)
    assert [checkpoint.skip_stored(i) for i in (99, 100, 249, 250, 300, 451)] == [99, 250, 250, 250, 451, 451]
    assert [checkpoint.next_stored_after(i) for i in (50, 250, 450)] == [100, 300, None]
    assert LoadCheckpoint.model_validate_json(checkpoint.model_dump_json()) == checkpoint
    with pytest.raises(ValidationError, match="first <= last"):
        IdRange(first=5, last=4)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_bar_and_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    stats = LoadStats(symbol="BTCUSDT", start_ms=START_MS, end_ms=START_MS + 60_000, pages=3, trades_fetched=3_000)
    stats.last_trade_ms = START_MS + 15_000
    terminal = FakeTerminal()
    bar = default_reporter(terminal)
    assert isinstance(bar, TerminalProgress)
    bar.update(stats)
    bar.close(stats)
    lines = terminal.getvalue()
    assert lines.startswith("\rBTCUSDT [######..................]  25.0% 3,000 trades 3 pages")
    assert "ETA 0:00:0" in lines
    assert lines.endswith("\n")

    assert isinstance(default_reporter(io.StringIO()), LogProgress)
    log = LogProgress(interval_s=0.0)
    with caplog.at_level(logging.INFO, logger="coattail_stream_job.history.progress"):
        log.update(stats)
        log.close(stats)
    assert "BTCUSDT: 25.0% 3000 trades, 3 pages" in caplog.messages[0]
    assert "at 2024-08-09T00:00:15.000Z" in caplog.messages[0]
    assert caplog.messages[1].startswith("BTCUSDT: 0 trades stored in 0 file(s) from 3 page(s), 0 rejected")


Handler = Callable[[web.Request], web.Response]


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


RECORD = {"a": 1, "p": "1.0", "q": "1.0", "f": 1, "l": 1, "T": START_MS, "m": True, "M": True}


async def test_server_errors_are_retried_then_reported(serve: Callable[[list[web.Response]], Any]) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    base = await serve([web.Response(status=503), web.Response(status=502), web.json_response([RECORD])])
    async with aiohttp.ClientSession() as session:
        client = AggTradesClient(session, base, max_retries=2, sleep=sleep)
        assert await client.page("BTCUSDT", from_id=1) == [RECORD]
        assert (client.counters.retries, sleeps) == (2, [0.5, 1.0])
        assert client.counters.used_weight == 3 * 4  # no weight header: the client counts every request

    base = await serve([web.Response(status=500, text="boom") for _ in range(3)])
    async with aiohttp.ClientSession() as session:
        client = AggTradesClient(session, base, max_retries=2, sleep=sleep)
        with pytest.raises(HistoryFetchError, match=r"gave up after 3 attempts: HTTP 500: boom"):
            await client.page("BTCUSDT", from_id=1)

    invalid = web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
    base = await serve([invalid, web.json_response({"not": "a list"})])
    async with aiohttp.ClientSession() as session:
        client = AggTradesClient(session, base, sleep=sleep)
        with pytest.raises(HistoryFetchError, match=r"HTTP 400: .*Invalid symbol"):
            await client.page("NOPE", from_id=1)
        with pytest.raises(HistoryFetchError, match="expected a JSON list"):
            await client.page("BTCUSDT", from_id=1)
