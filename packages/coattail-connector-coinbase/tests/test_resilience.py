"""No single frame, failure or absurd number stops, stalls or skews the connector (issue 20)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from coattail_connector_coinbase import CoinbaseConnector, CoinbaseSimulator, Faults
from coattail_connector_coinbase.rest import BackfillError, TradesClient
from coattail_connector_coinbase.tracking import Gap
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import RecordedMessage, read_recording

Replay = Callable[..., Awaitable[tuple[list[TradeEvent], CoinbaseConnector]]]
WaitUntil = Callable[[Callable[[], bool], float], Awaitable[bool]]
FAST_BACKOFF = {"initial": 0.05, "maximum": 0.2, "multiplier": 2.0, "jitter": 0.0, "healthy_after": 0.5}


def _good_frames(template: dict[str, Any], first_trade: int, count: int) -> list[dict[str, Any]]:
    """``count`` consecutive SKL-USD matches after the recording's last one, 10 ms apart."""
    start = datetime(2021, 4, 17, 16, 45, tzinfo=UTC)
    return [
        {
            **template,
            "type": "match",
            "trade_id": first_trade + n,
            "sequence": template["sequence"] + 10 * (first_trade + n - template["trade_id"]),
            "taker_order_id": f"00000000-0000-4000-8000-{n:012d}",
            "time": (start + timedelta(milliseconds=10 * (first_trade + n))).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        for n in range(count)
    ]


async def test_poison_frames_mid_stream_then_200_good_frames_are_all_published_and_health_stays_true(
    recorded_matches: list[dict[str, Any]], replay: Replay
) -> None:
    (last_skl,) = [m for m in recorded_matches if m["product_id"] == "SKL-USD" and m["trade_id"] == 1568319]
    before, after = _good_frames(last_skl, 1568320, 10), _good_frames(last_skl, 1568330, 200)
    poison = [
        "[" * 100_000 + "]" * 100_000,  # RecursionError in json
        json.dumps({**after[0], "time": "9999-12-31T23:00:00-05:00"}),  # OverflowError in astimezone
        json.dumps({**after[0], "taker_order_id": "ab\ud800cd"}),  # failed later in the publisher's to_json()
        json.dumps({**after[0], "price": "1e37"}),
        json.dumps({**after[0], "size": "1_000"}),
        json.dumps({**after[0], "time": "2031-04-17T16:45:00.000000Z"}),
    ]
    simulator = CoinbaseSimulator(Faults(), heartbeat_interval=0.1)
    frames = [json.dumps(m) for m in before] + poison + [json.dumps(m) for m in after]
    simulator.load(RecordedMessage(text, None, n) for n, text in enumerate(frames))
    health: list[bool] = []

    async def watch(connector: CoinbaseConnector) -> None:
        while connector.stats.messages == 0:  # not healthy before its first frame (the contract)
            await asyncio.sleep(0.01)
        while True:
            health.append(connector.health_check())
            await asyncio.sleep(0.01)

    events, connector = await replay(simulator, {"stale_after": 1.0}, expect_trades=210, while_running=watch)

    assert [int(e.trade_id or 0) for e in events] == list(range(1568320, 1568530))
    assert [e.taker_order_id for e in events] == [m["taker_order_id"] for m in before + after]
    assert all(e.to_json() for e in events)
    assert connector.quarantine.counts == {
        "json": 1,
        "time_range": 1,
        "encoding": 1,
        "number_format": 2,
        "time_window": 1,
    }
    assert connector.stats.handler_errors == 0
    assert (connector.stats.reconnects, connector.stats.gaps, connector.stats.stale_dropped) == (0, 0, 0)
    assert len(health) > 10
    assert all(health)
    assert connector.health_check()


async def test_an_absurd_sequence_resyncs_after_bounded_frames_and_the_dropped_trades_are_backfilled(
    recording: Path, recorded_trade_keys: set[tuple[str, str]], replay: Replay
) -> None:
    messages = list(read_recording(recording))
    decoded = [json.loads(m.payload) if not m.malformed else None for m in messages]
    skl = [n for n, d in enumerate(decoded) if d and d.get("type") == "match" and d.get("product_id") == "SKL-USD"]
    poisoned = {**decoded[skl[20]], "sequence": 10**18}  # a repeat of trade 20 with an absurd sequence
    messages.insert(skl[20] + 1, RecordedMessage(json.dumps(poisoned), messages[skl[20]].received_ns, 0))
    simulator = CoinbaseSimulator(Faults(), heartbeat_interval=0.1)
    simulator.load(messages)

    events, connector = await replay(simulator, {"resync_after_frames": 5})

    keys = [(e.symbol, e.trade_id or "") for e in events]
    assert sorted(keys) == sorted(recorded_trade_keys)  # each real trade once
    assert connector.stats.resyncs == 1
    assert connector.stats.stale_dropped == 4  # the 4 trades before the 5th disagreeing one
    assert connector.stats.backfilled == 4  # ... came back over REST
    assert connector.stats.duplicates_dropped == 1  # the poisoned repeat itself
    backfilled = sorted(int(e.trade_id or 0) for e in events if e.taker_order_id is None)
    assert backfilled == [decoded[skl[n]]["trade_id"] for n in range(21, 25)]


async def test_a_failed_connection_task_turns_unhealthy_within_stale_after_and_a_restart_reconnects(
    simulator: CoinbaseSimulator, recorded_trade_keys: set[tuple[str, str]], wait_until: WaitUntil
) -> None:
    await simulator.start()
    offset = [0.0]
    connector = CoinbaseConnector(
        settings={**simulator.connector_settings(), "backoff": FAST_BACKOFF, "stale_after": 2.0},
        rng=random.Random(1),
        clock=lambda: time.monotonic() + offset[0],
        wall_clock=simulator.recorded_clock(),
    )
    handle_frame = connector.handle_frame
    calls = [0]

    async def fails_once(frame: str | bytes, received_at: datetime, rest: TradesClient) -> list[TradeEvent]:
        calls[0] += 1
        if calls[0] == 40:
            raise RuntimeError("a failure outside any frame's handling")
        return await handle_frame(frame, received_at, rest)

    connector.handle_frame = fails_once  # type: ignore[method-assign]
    events: list[TradeEvent] = []

    async def pump() -> None:
        async for event in connector.connect():
            events.append(event)

    with pytest.raises(RuntimeError, match="outside any frame"):
        await asyncio.wait_for(pump(), 10)
    assert connector.health_check()  # the last frame just arrived
    offset[0] += 2.0  # stale_after later, nothing read: the dead task shows
    assert not connector.health_check()

    restarted = asyncio.create_task(pump())  # what the producer does after its pause
    try:
        assert await simulator.wait_drained(10)
        assert await wait_until(lambda: len(events) == 107, 5)
        assert connector.health_check()
    finally:
        await connector.shutdown()
        await asyncio.wait_for(restarted, 5)
        await simulator.stop()
    assert sorted((e.symbol, e.trade_id or "") for e in events) == sorted(recorded_trade_keys)
    assert len(simulator.sessions) == 2


@pytest.fixture
async def bad_rest() -> AsyncIterator[tuple[str, list[str]]]:
    """A REST endpoint answering 200 with the body named by the product id; logs every request."""
    bodies = {
        "HTML": ("<html><body>Bad gateway</body></html>", "text/html"),
        "TRUNCATED": ('[{"trade_id": 1, "price": "1.0"', "application/json"),
        "OBJECT": ('{"message": "rate limited"}', "application/json"),
        "NESTED": ("[" * 100_000 + "]" * 100_000, "application/json"),
        "NOT-UTF8": ("\udcff", "application/json"),
    }
    requests: list[str] = []

    async def trades(request: web.Request) -> web.Response:
        product = request.match_info["product_id"]
        requests.append(product)
        body, content_type = bodies[product]
        raw = body.encode("utf-8", "surrogateescape")
        return web.Response(body=raw, status=200, content_type=content_type)

    app = web.Application()
    app.router.add_get("/products/{product_id}/trades", trades)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", requests
    await runner.cleanup()


async def no_sleep(_: float) -> None:
    """The retry policy's wait, skipped."""


@pytest.mark.parametrize("product", ["HTML", "TRUNCATED", "OBJECT", "NESTED", "NOT-UTF8"])
async def test_a_rest_answer_that_is_not_a_json_array_is_retried_then_reported(
    bad_rest: tuple[str, list[str]], product: str
) -> None:
    url, requests = bad_rest
    async with aiohttp.ClientSession() as session:
        client = TradesClient(session, url, retries=3, sleep=no_sleep)
        with pytest.raises(BackfillError, match=f"/products/{product}/trades .* failed 3 time"):
            await client.fetch_gap(Gap(product, 5, 9), 100)
    assert requests == [product] * 3


async def test_a_gap_whose_backfill_gets_html_is_reported_and_the_trade_still_published(
    bad_rest: tuple[str, list[str]], recorded_matches: list[dict[str, Any]]
) -> None:
    url, requests = bad_rest
    (first,) = [m for m in recorded_matches if m["product_id"] == "SKL-USD" and m["trade_id"] == 1568300]
    later = {**first, "product_id": "HTML", "trade_id": 1568310, "sequence": first["sequence"] + 50}
    connector = CoinbaseConnector(settings={"symbols": ["HTML"], "rest_url": url})
    received_at = datetime(2021, 4, 17, 16, 50, tzinfo=UTC)
    async with aiohttp.ClientSession() as session:
        rest = TradesClient(session, url, retries=2, sleep=no_sleep)
        first_events = await connector.handle_frame(json.dumps({**first, "product_id": "HTML"}), received_at, rest)
        later_events = await connector.handle_frame(json.dumps(later), received_at, rest)
    assert [e.trade_id for e in first_events + later_events] == ["1568300", "1568310"]
    assert requests == ["HTML", "HTML"]
    assert (connector.stats.gaps, connector.stats.unrecovered, connector.stats.backfilled) == (1, 9, 0)
