"""The simulator's REST endpoints behave like Binance's (real aiohttp server on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from coattail_connector_binance import BinanceSimulator
from coattail_framework.recordings import RecordedMessage

FIRST = 3735683259


async def _published(simulator: BinanceSimulator, frames: list[RecordedMessage]) -> str:
    """Start, and publish every frame by connecting one websocket reader; returns the REST base URL."""
    simulator.load(frames)
    await simulator.start()
    settings = simulator.connector_settings()
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{settings['base_url']}/ws/btcusdt@trade"):
        assert await simulator.wait_drained(10)
    return str(settings["rest_url"])


async def _get(url: str, **params: str) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        return response.status, await response.json(), dict(response.headers)


async def test_historical_trades_and_agg_trades(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Callable[[Path, int], list[RecordedMessage]]
) -> None:
    frames = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 1200)
    rest = await _published(simulator, frames)
    status, body, headers = await _get(
        f"{rest}/api/v3/historicalTrades", symbol="BTCUSDT", fromId=str(FIRST), limit="2"
    )
    assert status == 200
    assert body == [
        {"id": FIRST, "price": "61837.63000000", "qty": "0.02000000", "quoteQty": "1236.7526000000000000",
         "time": 1723161255342, "isBuyerMaker": True, "isBestMatch": True},
        {"id": FIRST + 1, "price": "61837.63000000", "qty": "0.04800000", "quoteQty": "2968.2062400000000000",
         "time": 1723161255617, "isBuyerMaker": True, "isBestMatch": True},
    ]  # fmt: skip
    assert headers["X-MBX-USED-WEIGHT-1M"] == "25"
    status, body, headers = await _get(f"{rest}/api/v3/aggTrades", symbol="btcusdt", fromId=str(FIRST + 1), limit="1")
    assert body == [
        {"a": FIRST + 1, "p": "61837.63000000", "q": "0.04800000", "f": FIRST + 1, "l": FIRST + 1,
         "T": 1723161255617, "m": True, "M": True}
    ]  # fmt: skip
    assert headers["X-MBX-USED-WEIGHT-1M"] == "29"
    # No fromId: the most recent trades; default limit 500; at most 1000.
    status, body, _ = await _get(f"{rest}/api/v3/historicalTrades", symbol="BTCUSDT")
    assert [record["id"] for record in body] == list(range(FIRST + 700, FIRST + 1200))
    status, body, _ = await _get(f"{rest}/api/v3/aggTrades", symbol="BTCUSDT", fromId=str(FIRST), limit="1000")
    assert len(body) == 1000
    # startTime/endTime select by trade time, and may be at most an hour apart.
    status, body, _ = await _get(
        f"{rest}/api/v3/aggTrades", symbol="BTCUSDT", startTime="1723161255617", endTime="1723161255617"
    )
    same_time = [json.loads(frame.payload)["data"] for frame in frames if '"T":1723161255617,' in frame.payload]
    assert [record["a"] for record in body] == [trade["t"] for trade in same_time]
    assert len(body) == 9
    status, body, _ = await _get(f"{rest}/api/v3/aggTrades", symbol="BTCUSDT", startTime="0", endTime="3600001")
    assert (status, body["code"]) == (400, -1127)
    # USD-M paths answer too.
    status, body, _ = await _get(f"{rest}/fapi/v1/aggTrades", symbol="BTCUSDT", fromId=str(FIRST), limit="3")
    assert [record["a"] for record in body] == [FIRST, FIRST + 1, FIRST + 2]


async def test_rest_errors(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Callable[[Path, int], list[RecordedMessage]]
) -> None:
    rest = await _published(simulator, trade_frames(ws_data / "spot_btcusdt_20240808.gz", 10))
    status, body, _ = await _get(f"{rest}/api/v3/aggTrades", symbol="BTCUSDT", limit="1001")
    assert (status, body["code"]) == (400, -1130)
    status, body, _ = await _get(f"{rest}/api/v3/aggTrades", limit="5")
    assert (status, body["code"]) == (400, -1102)
    status, body, _ = await _get(f"{rest}/api/v3/aggTrades", symbol="NOPEUSDT")
    assert (status, body["code"]) == (400, -1121)
    simulator.force_rest_status(429, count=1, retry_after_s=3)
    status, body, headers = await _get(f"{rest}/api/v3/aggTrades", symbol="BTCUSDT")
    assert (status, headers["Retry-After"]) == (429, "3")
    simulator.force_rest_status(418, count=1, retry_after_s=120)
    status, body, headers = await _get(f"{rest}/api/v3/aggTrades", symbol="BTCUSDT")
    assert (status, headers["Retry-After"]) == (418, "120")


async def test_weight_limit_then_ban_for_a_client_that_keeps_going(
    ws_data: Path, trade_frames: Callable[[Path, int], list[RecordedMessage]]
) -> None:
    simulator = BinanceSimulator(weight_limit_per_minute=100, ban_after_violations=2, ban_seconds=300)
    try:
        rest = await _published(simulator, trade_frames(ws_data / "spot_btcusdt_20240808.gz", 10))
        statuses = []
        for _ in range(7):
            status, _, headers = await _get(f"{rest}/api/v3/historicalTrades", symbol="BTCUSDT", limit="1")
            statuses.append(status)
        # 4 x 25 = 100 weight fit; then 429; a client going on after 429 is banned (418).
        assert statuses[:4] == [200, 200, 200, 200]
        if statuses[4] == 200:  # the minute rolled over between requests: the window restarted
            statuses = statuses[4:] + [0] * 4
        assert statuses[4:7] == [429, 429, 418]
        assert int(headers["Retry-After"]) >= 299
    finally:
        await simulator.stop()
