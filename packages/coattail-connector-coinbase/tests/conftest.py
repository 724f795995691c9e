"""Shared fixtures: the bundled Coinbase recording and a replay through a real simulator.

Helpers are handed out as fixtures because nox runs pytest with ``--import-mode=importlib``,
where test modules cannot import ``conftest``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coattail_connector_coinbase import CoinbaseConnector, CoinbaseSimulator, Faults
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import read_recording
from coattail_framework.resilience import wait_until_async

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA = REPO_ROOT / "tests" / "data" / "coinbase" / "ws"
RECORDING = DATA / "cryptofeed_COINBASE.ws.28.0"
MATCHES = DATA / "cryptofeed_matches_2021.jsonl"
FAST_BACKOFF = {"initial": 0.05, "maximum": 0.2, "multiplier": 2.0, "jitter": 0.5, "healthy_after": 0.5}


def _recorded_matches() -> list[dict[str, Any]]:
    """The 107 match / last_match messages of the recording, in order."""
    return [json.loads(line) for line in MATCHES.read_text().splitlines() if line.strip()]


@pytest.fixture
def recorded_matches() -> list[dict[str, Any]]:
    """The 107 match / last_match messages of the recording, in order."""
    return _recorded_matches()


@pytest.fixture
def recorded_trade_keys() -> set[tuple[str, str]]:
    """(product_id, trade_id) of every recorded trade."""
    return {(m["product_id"], str(m["trade_id"])) for m in _recorded_matches()}


@pytest.fixture
def recording() -> Path:
    """The whole cryptofeed recording (level2, ticker, matches)."""
    return RECORDING


@pytest.fixture
def simulator() -> Iterator[CoinbaseSimulator]:
    """A simulator loaded with the whole recording, fast heartbeats; the test starts it."""
    loaded = CoinbaseSimulator(Faults(), heartbeat_interval=0.1)
    loaded.load(read_recording(RECORDING))
    return loaded


async def _replay(
    simulator: CoinbaseSimulator,
    settings: dict[str, Any] | None = None,
    *,
    expect_trades: int = 107,
    timeout: float = 15.0,
    while_running: Callable[[CoinbaseConnector], Awaitable[None]] | None = None,
) -> tuple[list[TradeEvent], CoinbaseConnector]:
    """Start the simulator, stream until it is drained and ``expect_trades`` arrived, shut down.

    ``while_running`` runs alongside the connector (e.g. to watch its health) and is cancelled at the end.
    """
    await simulator.start()
    connector = CoinbaseConnector(
        settings={**simulator.connector_settings(), "backoff": FAST_BACKOFF, **(settings or {})},
        rng=random.Random(7),
        wall_clock=simulator.recorded_clock(),
    )
    events: list[TradeEvent] = []

    async def consume() -> None:
        async for event in connector.connect():
            events.append(event)

    task = asyncio.create_task(consume())
    watcher = asyncio.create_task(while_running(connector)) if while_running else None
    try:
        assert await simulator.wait_drained(timeout), "simulator did not send every frame in time"
        await wait_until_async(lambda: len(events) >= expect_trades, 3.0)
        await asyncio.sleep(0.15)
    finally:
        if watcher is not None:
            watcher.cancel()
        await connector.shutdown()
        await asyncio.wait_for(task, 5)
        await simulator.stop()
    return events, connector


@pytest.fixture
def wait_until() -> Callable[[Callable[[], bool], float], Awaitable[bool]]:
    """``await wait_until(condition, timeout)``: ``resilience.wait_until_async``, False on timeout."""
    return wait_until_async


@pytest.fixture
def replay() -> Callable[..., Awaitable[tuple[list[TradeEvent], CoinbaseConnector]]]:
    """``await replay(simulator, settings, ...)``: see ``_replay``."""
    return _replay
