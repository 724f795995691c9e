"""Pure policies: backoff, rate limiting, stream URLs, settings, sequencing, quarantine."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coattail_connector_binance import (
    BinanceConnector,
    BinanceSettings,
    SlidingWindowLimiter,
    plan_connections,
    stream_names,
    stream_url,
)
from coattail_connector_binance.connection import StreamConnection
from coattail_connector_binance.sequencing import TradeSequence, Verdict
from coattail_framework.connector import ConnectorStats
from coattail_framework.errors import ConfigError
from coattail_framework.registry import ModuleRegistry
from coattail_framework.resilience import Backoff


def test_reconnect_backoff_is_the_framework_policy_with_the_connector_settings() -> None:
    settings = BinanceSettings(backoff_initial_s=0.5, backoff_multiplier=3.0, backoff_max_s=8.0, backoff_jitter=0.5)
    connection = StreamConnection(
        settings,
        ["btcusdt@trade"],
        asyncio.Queue(),
        attempts=SlidingWindowLimiter(limit=10, window=1.0),
        stats=ConnectorStats(),
        rng=random.Random(7),
    )
    policy = connection.backoff
    assert isinstance(policy, Backoff)
    assert (policy.initial, policy.multiplier, policy.cap, policy.jitter) == (0.5, 3.0, 8.0, 0.5)
    delays = policy.delays(4)
    expected_rng = random.Random(7)
    assert delays == [ceiling * (1 - 0.5 * expected_rng.random()) for ceiling in (0.5, 1.5, 4.5, 8.0)]


def test_backoff_settings_reject_a_jitter_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="backoff_jitter"):
        BinanceSettings(backoff_jitter=1.5)


def test_sliding_window_limiter_with_a_fake_clock() -> None:
    now = [1000.0]
    limiter = SlidingWindowLimiter(limit=300, window=300.0, clock=lambda: now[0])
    for _ in range(300):
        assert limiter.delay_needed() == 0.0
        limiter.record()
        now[0] += 0.5
    # 300 attempts in the last 150 s: the 301st waits until the first leaves the window.
    assert limiter.delay_needed() == pytest.approx(150.0)
    now[0] += 150.0
    assert limiter.delay_needed() == 0.0


async def test_limiter_acquire_paces_control_messages() -> None:
    limiter = SlidingWindowLimiter(limit=4, window=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stamps = []
    for _ in range(9):
        await limiter.acquire()
        stamps.append(loop.time() - started)
    assert stamps[3] < 0.1
    assert stamps[4] >= 0.19
    assert stamps[8] >= 0.39
    for index in range(4, 9):
        assert stamps[index] - stamps[index - 4] >= 0.19


def test_stream_urls() -> None:
    assert stream_names(["BTCUSDT", "ETHUSDT", "BTCUSDT"], "aggTrade") == ["btcusdt@aggTrade", "ethusdt@aggTrade"]
    base = "wss://stream.binance.com:9443"
    assert stream_url(base, ["btcusdt@trade"]) == "wss://stream.binance.com:9443/ws/btcusdt@trade"
    assert (
        stream_url(base + "/", ["btcusdt@trade", "ethusdt@trade"])
        == "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade"
    )
    with pytest.raises(ValueError, match="at least one stream"):
        stream_url(base, [])


def test_more_than_1024_streams_split_across_connections() -> None:
    names = stream_names([f"SYM{index}USDT" for index in range(2500)], "trade")
    groups = plan_connections(names)
    assert [len(group) for group in groups] == [1024, 1024, 452]
    assert [name for group in groups for name in group] == names
    urls = [stream_url("wss://fstream.binance.com", group) for group in groups]
    assert urls[2].startswith("wss://fstream.binance.com/stream?streams=sym2048usdt@trade/sym2049usdt@trade/")
    assert urls[2].count("@trade") == 452
    with pytest.raises(ValueError, match="exceed Binance's limit of 1024"):
        stream_url("wss://x", names[:1025])
    assert plan_connections(names[:5], per_connection=2) == [names[0:2], names[2:4], names[4:5]]


def test_settings_defaults_and_errors() -> None:
    settings = BinanceSettings()
    assert (settings.exchange, settings.symbols, settings.stream) == ("binance", (), "trade")
    assert settings.base_url == "wss://stream.binance.com:9443"
    assert settings.max_connection_age_s < 24 * 3600
    with pytest.raises(ConfigError) as error:
        BinanceSettings.from_mapping({"base_url": "https://nope", "stream": "depth", "symbols": ["btc"], "typo": 1})
    message = str(error.value)
    for key in ("settings.base_url", "settings.stream", "settings.symbols.0", "settings.typo"):
        assert key in message


async def test_connect_without_symbols_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"exchanges\.binance\.settings\.symbols is empty"):
        await anext(BinanceConnector().connect())


def test_connector_is_published_as_an_entry_point() -> None:
    def ours(group: str) -> list[importlib.metadata.EntryPoint]:
        return [point for point in importlib.metadata.entry_points(group=group) if point.name == "binance"]

    registry = ModuleRegistry(entry_points=ours).discover()
    assert registry.failures == []
    connector_class = registry.get_connector("binance")
    assert connector_class is BinanceConnector
    assert connector_class.simulator_class is not None
    assert connector_class.simulator_class.__name__ == "BinanceSimulator"
    assert BinanceConnector().stats.as_dict() == {
        "messages": 0, "trades": 0, "malformed": 0, "reconnects": 0, "gaps": 0, "duplicates_dropped": 0,
        "backfilled": 0, "non_market_trades": 0, "suspect_ids": 0, "resyncs": 0, "backfill_failures": 0,
    }  # fmt: skip


def test_trade_sequence() -> None:
    sequence = TradeSequence()
    assert sequence.check("BTCUSDT", 100) == Verdict("first")
    sequence.advance("BTCUSDT", 100)
    assert sequence.check("BTCUSDT", 101) == Verdict("next")
    assert sequence.check("BTCUSDT", 100) == Verdict("duplicate")
    assert sequence.check("BTCUSDT", 105) == Verdict("gap", 101, 104)
    assert sequence.check("ETHUSDT", 5) == Verdict("first")
    sequence.forget("BTCUSDT")
    assert sequence.last("BTCUSDT") is None


def test_an_absurd_id_is_held_and_cleared_by_the_next_plausible_one() -> None:
    sequence = TradeSequence(max_jump=1000, resync_after_frames=3, resync_after_s=30.0)
    at = datetime(2024, 8, 8, tzinfo=UTC)
    sequence.advance("BTCUSDT", 100)
    assert sequence.check("BTCUSDT", 10**15) == Verdict("jump")
    assert sequence.check("BTCUSDT", 100 - 1002) == Verdict("jump")
    assert sequence.hold("BTCUSDT", 10**15, at) == Verdict("suspect")
    assert sequence.held("BTCUSDT") == 1
    assert sequence.check("BTCUSDT", 101) == Verdict("next")
    sequence.advance("BTCUSDT", 101)
    assert (sequence.held("BTCUSDT"), sequence.last("BTCUSDT")) == (0, 101)


def test_ids_that_keep_jumping_resync_after_a_bounded_number_of_frames_or_seconds() -> None:
    sequence = TradeSequence(max_jump=1000, resync_after_frames=3, resync_after_s=30.0)
    at = datetime(2024, 8, 8, tzinfo=UTC)
    sequence.advance("BTCUSDT", 100)
    assert sequence.hold("BTCUSDT", 50_000, at) == Verdict("suspect")
    assert sequence.hold("BTCUSDT", 50_001, at) == Verdict("suspect")
    assert sequence.hold("BTCUSDT", 50_002, at) == Verdict("resync", 50_000, 50_001)
    sequence.advance("ETHUSDT", 100)
    assert sequence.hold("ETHUSDT", 70_000, at) == Verdict("suspect")
    assert sequence.hold("ETHUSDT", 70_005, at + timedelta(seconds=30)) == Verdict("resync", 70_000, 70_004)
    sequence.advance("SOLUSDT", 100)
    assert sequence.hold("SOLUSDT", 90_000, at) == Verdict("suspect")
    assert sequence.hold("SOLUSDT", 90_000, at + timedelta(seconds=31)) == Verdict("resync")


def test_the_connector_quarantine_is_bounded_by_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "dead" / "binance.jsonl"
    connector = BinanceConnector({"malformed_keep": 2, "malformed_path": str(path), "malformed_max_frame_bytes": 10})
    for index in range(3):
        connector.quarantine.add(f"raw frame {index}", "json")
    assert [frame.payload for frame in connector.quarantine.frames()] == ["raw frame ", "raw frame "]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["source"], line["reason"], line["size_bytes"]) for line in lines] == [("binance", "json", 11)] * 3
