"""The simulator speaks Coinbase's protocol: subscribe deadline, answers, heartbeats, REST pages."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import websockets

from coattail_connector_coinbase import CoinbaseSimulator, Faults
from coattail_framework.recordings import RecordedMessage, read_recording


@pytest.fixture
async def started(recording: Path) -> AsyncIterator[CoinbaseSimulator]:
    simulator = CoinbaseSimulator(Faults(), heartbeat_interval=0.05, subscribe_timeout=0.3)
    simulator.load(read_recording(recording))
    await simulator.start()
    yield simulator
    await simulator.stop()


async def test_client_that_never_subscribes_is_told_and_disconnected(started: CoinbaseSimulator) -> None:
    async with websockets.connect(started.connector_settings()["url"], max_queue=None) as websocket:
        opened = time.monotonic()
        error = json.loads(await websocket.recv())
        assert error["type"] == "error"
        assert error["message"] == "Failed to subscribe"
        with pytest.raises(websockets.ConnectionClosed):
            await websocket.recv()
        assert 0.25 < time.monotonic() - opened < 2
    assert started.made == 0


async def test_subscribe_is_answered_then_filtered_frames_and_heartbeats(started: CoinbaseSimulator) -> None:
    request = {"type": "subscribe", "product_ids": ["BAND-GBP"], "channels": ["matches", "heartbeat"]}
    async with websockets.connect(started.connector_settings()["url"], max_queue=None) as websocket:
        await websocket.send(json.dumps(request))
        answer = json.loads(await websocket.recv())
        assert answer == {
            "type": "subscriptions",
            "channels": [
                {"name": "matches", "product_ids": ["BAND-GBP"]},
                {"name": "heartbeat", "product_ids": ["BAND-GBP"]},
            ],
        }
        assert await started.wait_drained(5)
        received = []
        while not received or received[-1].get("last_trade_id") != 881617:
            received.append(json.loads(await websocket.recv()))
    trades = [m for m in received if m["type"] in ("match", "last_match")]
    assert [m["trade_id"] for m in trades] == [881613, 881614, 881615, 881616, 881617]
    assert {m["product_id"] for m in received} == {"BAND-GBP"}
    heartbeat = received[-1]
    assert set(heartbeat) == {"type", "sequence", "last_trade_id", "product_id", "time"}
    assert (heartbeat["last_trade_id"], heartbeat["sequence"]) == (881617, 333939600)
    assert heartbeat["time"].endswith("Z")
    assert len(heartbeat["time"]) == 27


async def test_invalid_subscription_gets_an_error(started: CoinbaseSimulator) -> None:
    async with websockets.connect(started.connector_settings()["url"], max_queue=None) as websocket:
        await websocket.send(json.dumps({"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["matches"]}))
        error = json.loads(await websocket.recv())
    assert error == {"type": "error", "message": "Failed to subscribe", "reason": "BTC-USD is not a valid product"}


async def test_resubscribe_gets_last_match_of_products_that_traded(
    started: CoinbaseSimulator, wait_until: Callable[[Callable[[], bool], float], Awaitable[bool]]
) -> None:
    request = json.dumps({"type": "subscribe", "product_ids": ["SKL-USD"], "channels": ["matches"]})
    async with websockets.connect(started.connector_settings()["url"], max_queue=None) as websocket:
        await websocket.send(request)
        assert await started.wait_drained(5)
    async with websockets.connect(started.connector_settings()["url"], max_queue=None) as websocket:
        await websocket.send(request)
        assert json.loads(await websocket.recv())["type"] == "subscriptions"
        last_match = json.loads(await websocket.recv())
    assert (last_match["type"], last_match["trade_id"], last_match["sequence"]) == ("last_match", 1568319, 201393867)
    assert await wait_until(lambda: len(started.sessions) == 2 and started.sessions[1].closed_at is not None, 2)


async def test_rest_trades_pagination_like_coinbase(started: CoinbaseSimulator) -> None:
    async with websockets.connect(started.connector_settings()["url"], max_queue=None) as websocket:
        await websocket.send(json.dumps({"type": "subscribe", "product_ids": ["SKL-USD"], "channels": ["matches"]}))
        assert await started.wait_drained(5)
    base = started.connector_settings()["rest_url"] + "/products/SKL-USD/trades"
    async with aiohttp.ClientSession() as http:
        async with http.get(base, params={"limit": "3"}) as response:
            newest = await response.json()
            assert [t["trade_id"] for t in newest] == [1568319, 1568318, 1568317]
            assert (response.headers["CB-BEFORE"], response.headers["CB-AFTER"]) == ("1568319", "1568317")
        assert set(newest[0]) == {"time", "trade_id", "price", "size", "side"}
        async with http.get(base, params={"after": "1568317", "limit": "2"}) as response:
            assert [t["trade_id"] for t in await response.json()] == [1568316, 1568315]
        async with http.get(base, params={"before": "1568270", "limit": "2"}) as response:
            assert [t["trade_id"] for t in await response.json()] == [1568272, 1568271]
            assert response.headers["CB-BEFORE"] == "1568272"
        async with http.get(base, params={"after": "1568267"}) as response:
            assert await response.json() == []
            assert "CB-AFTER" not in response.headers
        async with http.get(base, params={"limit": "1001"}) as response:
            assert response.status == 400
        async with http.get(started.connector_settings()["rest_url"] + "/products/BTC-USD/trades") as response:
            assert (response.status, await response.json()) == (404, {"message": "NotFound"})


def test_recording_span_is_the_receive_times_or_the_bulk_of_the_trade_times(recording: Path) -> None:
    cryptofeed = CoinbaseSimulator()
    cryptofeed.load(read_recording(recording))
    served = [m for m in read_recording(recording) if '"type":"subscriptions"' not in m.payload]
    received = [m.received_ns for m in served if m.received_ns is not None]
    assert cryptofeed.recording_span() == (
        datetime.fromtimestamp(min(received) / 1e9, UTC),
        datetime.fromtimestamp(max(received) / 1e9, UTC),
    )

    times = ["2021-04-17T16:43:30.000000Z", "2031-04-17T16:43:30.000000Z", "2021-04-17T16:50:00.000000Z"]
    times += ["2011-01-01T00:00:00.000000Z", "9999-12-31T23:00:00-05:00"]
    jsonl = CoinbaseSimulator()
    jsonl.load(
        RecordedMessage(json.dumps({"type": "match", "product_id": "SKL-USD", "time": t}), None, n)
        for n, t in enumerate(times)
    )
    assert jsonl.recording_span() == (
        datetime(2021, 4, 17, 16, 43, 30, tzinfo=UTC),
        datetime(2021, 4, 17, 16, 50, tzinfo=UTC),
    )
    assert CoinbaseSimulator().recording_span() is None
