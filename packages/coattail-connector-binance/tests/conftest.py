"""Shared fixtures: the bundled recordings and a bounded way to run the connector.

Helpers are handed out as fixtures because nox runs pytest with ``--import-mode=importlib``,
where test modules cannot import this file by name.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from coattail_connector_binance import BinanceConnector, BinanceSimulator
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import RecordedMessage, read_recording

REPO_ROOT = Path(__file__).resolve().parents[3]
WS_DATA = REPO_ROOT / "tests" / "data" / "binance" / "ws"


def _trade_frames(path: Path, count: int) -> list[RecordedMessage]:
    """The first ``count`` trade frames of a recording (other streams left out)."""
    frames = (message for message in read_recording(path) if '@trade"' in message.payload)
    return list(itertools.islice(frames, count))


def _fast_settings(simulator: BinanceSimulator, **overrides: object) -> dict[str, object]:
    """Simulator settings with test-sized timeouts and backoff."""
    settings: dict[str, object] = {
        **simulator.connector_settings(),
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "healthy_after_s": 0.0,
        "close_timeout_s": 0.5,
        "open_timeout_s": 2.0,
    }
    settings.update(overrides)
    return settings


async def _collect(
    connector: BinanceConnector,
    until: Callable[[list[TradeEvent]], bool],
    *,
    timeout: float = 20.0,
    on_event: Callable[[list[TradeEvent]], object] | None = None,
) -> list[TradeEvent]:
    """Run ``connect()`` until ``until(events)`` holds, then shut down and drain; bounded by ``timeout``."""
    events: list[TradeEvent] = []

    async def run() -> None:
        stopping = False
        async for event in connector.connect():
            events.append(event)
            if on_event is not None:
                result = on_event(events)
                if asyncio.iscoroutine(result):
                    await result
            if not stopping and until(events):
                stopping = True
                await connector.shutdown()

    await asyncio.wait_for(run(), timeout=timeout)
    return events


@pytest.fixture
async def simulator() -> AsyncIterator[BinanceSimulator]:
    """A fresh, not yet started simulator, stopped after the test."""
    server = BinanceSimulator()
    yield server
    await server.stop()


@pytest.fixture
def ws_data() -> Path:
    """The bundled Binance websocket recordings (tests/data/binance/ws)."""
    assert WS_DATA.is_dir(), f"recordings missing at {WS_DATA}"
    return WS_DATA


@pytest.fixture
def trade_frames() -> Callable[[Path, int], list[RecordedMessage]]:
    return _trade_frames


@pytest.fixture
def fast_settings() -> Callable[..., dict[str, object]]:
    return _fast_settings


@pytest.fixture
def collect() -> Callable[..., object]:
    return _collect


@pytest.fixture
def spot_messages(ws_data: Path) -> list[dict[str, object]]:
    """Every trade message of spot_btcusdt_20240808.gz, decoded."""
    return [json.loads(message.payload) for message in _trade_frames(ws_data / "spot_btcusdt_20240808.gz", 10**6)]
