"""The connector against the simulator: real websocket and REST servers on 127.0.0.1, real data."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from coattail_connector_binance import BinanceConnector, BinanceSettings, BinanceSimulator
from coattail_connector_binance.backfill import TradeBackfill
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import RecordedMessage, read_recording
from coattail_framework.resilience import wait_until_async

FIRST = 3735683259
SPOT_TRADES = 9757

Frames = Callable[[Path, int], list[RecordedMessage]]
Collect = Callable[..., Any]


def _ids(events: list[TradeEvent], symbol: str = "BTCUSDT") -> list[int]:
    return [int(event.trade_id or -1) for event in events if event.symbol == symbol]


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    assert await wait_until_async(condition, timeout, interval_s=0.005), "condition not reached in time"


async def test_full_recording_replays_every_trade_once(
    simulator: BinanceSimulator, ws_data: Path, collect: Collect
) -> None:
    simulator.load(read_recording(ws_data / "spot_btcusdt_20240808.gz"))
    await simulator.start()
    connector = BinanceConnector(simulator.connector_settings(), wall_clock=simulator.recorded_clock())
    assert connector.settings.symbols == ("BTCUSDT",)
    events = await collect(connector, lambda got: got[-1].trade_id == str(FIRST + SPOT_TRADES - 1))
    assert _ids(events) == list(range(FIRST, FIRST + SPOT_TRADES))
    assert len({event.event_id for event in events}) == SPOT_TRADES
    assert await simulator.wait_drained(5)
    assert simulator.skipped == 1  # the REST depth snapshot line is not a stream frame
    assert simulator.frames_sent == SPOT_TRADES  # only the subscribed stream reached the client
    stats = connector.stats.as_dict()
    assert stats == {**stats, "messages": SPOT_TRADES, "trades": SPOT_TRADES, "malformed": 0, "gaps": 0}
    assert simulator.close_codes == [1000]  # shutdown() sent a close frame


async def test_combined_stream_of_two_symbols(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect
) -> None:
    btc = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 400)
    eth = trade_frames(ws_data / "spot_ethusdt_20240808.gz", 300)
    simulator.load(sorted(btc + eth, key=lambda message: message.received_ns or 0))
    await simulator.start()
    connector = BinanceConnector(simulator.connector_settings(), wall_clock=simulator.recorded_clock())
    assert set(connector.settings.symbols) == {"BTCUSDT", "ETHUSDT"}
    events = await collect(connector, lambda got: len(got) == 700)
    first_eth = json.loads(eth[0].payload)["data"]["t"]
    assert _ids(events, "BTCUSDT") == list(range(FIRST, FIRST + 400))
    assert _ids(events, "ETHUSDT") == list(range(first_eth, first_eth + 300))
    assert connector.stats.gaps == 0


async def test_usdm_recording_uses_the_venue_id(ws_data: Path, trade_frames: Frames, collect: Collect) -> None:
    simulator = BinanceSimulator(exchange="binance-usdm")
    simulator.load(trade_frames(ws_data / "usdm_btcusdt_20240808.gz", 200))
    await simulator.start()
    try:
        connector = BinanceConnector(simulator.connector_settings(), wall_clock=simulator.recorded_clock())
        events = await collect(connector, lambda got: len(got) == 200)
        assert events[0].event_id == "binance-usdm:BTCUSDT:5266583935"
        assert _ids(events) == list(range(5266583935, 5266583935 + 200))
    finally:
        await simulator.stop()


async def test_dropped_connection_is_backfilled_over_rest(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect, fast_settings: Any
) -> None:
    simulator.load(trade_frames(ws_data / "spot_btcusdt_20240808.gz", 3000))
    await simulator.start()
    connector = BinanceConnector(fast_settings(simulator), wall_clock=simulator.recorded_clock())

    async def drop_mid_stream() -> None:
        await _until(lambda: simulator.frames_sent >= 500)
        simulator.drop_connections(missed_frames=300)

    dropper = asyncio.create_task(drop_mid_stream())
    events = await collect(connector, lambda got: got[-1].trade_id == str(FIRST + 2999))
    await dropper
    assert _ids(events) == list(range(FIRST, FIRST + 3000))  # the full consecutive set, no duplicates
    assert connector.stats.reconnects == 1
    assert connector.stats.backfilled >= 300
    assert connector.stats.gaps >= 1
    assert simulator.frames_sent <= 3000 - 300
    assert len(simulator.connection_attempts) == 2
    assert not connector.unrecovered_gaps


async def test_garbage_and_truncated_frames_are_kept_and_the_gap_filled(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect, fast_settings: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    frames = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 300)
    simulator.load(frames[:100])
    await simulator.start()
    dead_letters = tmp_path / "malformed.jsonl"
    connector = BinanceConnector(
        fast_settings(simulator, malformed_path=str(dead_letters)), wall_clock=simulator.recorded_clock()
    )
    invalid_trade = '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1}}'

    def fault_after_100(events: list[TradeEvent]) -> None:
        if len(events) == 100:
            simulator.inject_raw("this is not json")
            simulator.inject_raw('{"result":null,"id":7}')
            simulator.inject_raw('{"surprise":true}')
            simulator.inject_raw(invalid_trade)
            simulator.truncate_next(2)
            simulator.force_rest_status(429, count=1, retry_after_s=1)
            simulator.load(frames[100:])

    events = await collect(
        connector, lambda got: got[-1].trade_id == str(FIRST + 299), on_event=fault_after_100, timeout=15
    )
    assert _ids(events) == list(range(FIRST, FIRST + 300))
    assert connector.stats.malformed == 5
    assert (connector.stats.gaps, connector.stats.backfilled) == (1, 2)
    held = connector.quarantine.frames()
    assert [frame.reason for frame in held] == ["json", "unknown_message", "field", "json", "json"]
    assert connector.quarantine.counts == {"json": 3, "unknown_message": 1, "field": 1}
    assert "'p'" in held[2].detail
    raws = [frame.payload for frame in held]
    assert raws[:3] == ["this is not json", '{"surprise":true}', invalid_trade]
    bare = [json.dumps(json.loads(frame.payload)["data"], separators=(",", ":")) for frame in frames[100:102]]
    assert raws[3:] == [text[: len(text) // 2] for text in bare]  # /ws/ clients get bare payloads
    kept = [json.loads(line) for line in dead_letters.read_text().splitlines()]
    assert [record["payload"] for record in kept] == raws


async def test_stalled_server_fails_health_check_and_is_recycled(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect, fast_settings: Any
) -> None:
    frames = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 200)
    simulator.load(frames[:100])
    await simulator.start()
    connector = BinanceConnector(
        fast_settings(simulator, stale_after_s=0.3, backoff_initial_s=0.2), wall_clock=simulator.recorded_clock()
    )
    health: list[bool] = []

    async def watch() -> None:
        while True:
            health.append(connector.health_check())
            await asyncio.sleep(0.01)

    def stall_after_100(events: list[TradeEvent]) -> None:
        if len(events) == 100:
            health.append(connector.health_check())
            simulator.stall()
            simulator.load(frames[100:])

    watcher = asyncio.create_task(watch())
    events = await collect(connector, lambda got: len(got) == 200, on_event=stall_after_100)
    watcher.cancel()
    assert _ids(events) == list(range(FIRST, FIRST + 200))
    assert True in health
    assert health[health.index(True) :].count(False) >= 5  # false for a while after the stall
    assert connector.health_check() is False  # shut down
    assert connector.stats.reconnects == 1
    assert len(simulator.connection_attempts) == 2


async def test_refused_connections_back_off_then_recover(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect, fast_settings: Any
) -> None:
    simulator.load(trade_frames(ws_data / "spot_btcusdt_20240808.gz", 50))
    simulator.refuse_connections(3)
    await simulator.start()
    settings = fast_settings(simulator, backoff_initial_s=0.1, backoff_multiplier=2.0, backoff_max_s=0.3)
    connector = BinanceConnector({**settings, "backoff_jitter": 0.0}, wall_clock=simulator.recorded_clock())
    events = await collect(connector, lambda got: len(got) == 50)
    assert _ids(events) == list(range(FIRST, FIRST + 50))
    attempts = simulator.connection_attempts
    assert len(attempts) == 4
    spacing = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    for gap, delay in zip(spacing, [0.1, 0.2, 0.3], strict=True):
        assert delay - 0.01 <= gap <= delay + 0.5


async def test_connection_is_recycled_at_its_age_limit_without_loss(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect, fast_settings: Any
) -> None:
    frames = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 200)
    simulator.load(frames[:100])
    await simulator.start()
    connector = BinanceConnector(
        fast_settings(simulator, max_connection_age_s=0.3), wall_clock=simulator.recorded_clock()
    )

    async def more_after_recycle(events: list[TradeEvent]) -> None:
        if len(events) == 100:
            await _until(lambda: len(simulator.connection_attempts) >= 2)
            simulator.load(frames[100:])

    events = await collect(connector, lambda got: len(got) == 200, on_event=more_after_recycle)
    assert _ids(events) == list(range(FIRST, FIRST + 200))
    assert simulator.close_codes[0] == 1000


async def test_shutdown_hands_over_what_was_read(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, fast_settings: Any
) -> None:
    simulator.load(trade_frames(ws_data / "spot_btcusdt_20240808.gz", 2000))
    await simulator.start()
    connector = BinanceConnector(fast_settings(simulator), wall_clock=simulator.recorded_clock())
    events: list[TradeEvent] = []
    async for event in connector.connect():
        events.append(event)
        if len(events) == 10:
            await connector.shutdown()
    assert len(events) >= 10
    assert _ids(events) == list(range(FIRST, FIRST + len(events)))
    assert connector.stats.trades == connector.stats.messages == len(events)
    assert simulator.close_codes == [1000]
    assert connector.connections == []


async def test_pings_answered_while_the_consumer_is_slow(
    ws_data: Path, trade_frames: Frames, collect: Collect, fast_settings: Any
) -> None:
    # Pongs count toward the 5 incoming messages/s: ping every 0.25 s, drop after 0.6 s without pong.
    simulator = BinanceSimulator(ping_interval_s=0.25, pong_timeout_s=0.6)
    simulator.load(trade_frames(ws_data / "spot_btcusdt_20240808.gz", 120))
    await simulator.start()
    try:
        connector = BinanceConnector(
            fast_settings(simulator, ping_interval_s=None), wall_clock=simulator.recorded_clock()
        )

        async def slow(events: list[TradeEvent]) -> None:
            await asyncio.sleep(0.01)

        events = await collect(connector, lambda got: len(got) == 120, on_event=slow)
        assert _ids(events) == list(range(FIRST, FIRST + 120))
        assert simulator.pongs_received >= 3
        assert len(simulator.connection_attempts) == 1
    finally:
        await simulator.stop()


async def test_subscribe_stays_under_the_control_message_limit(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect, fast_settings: Any
) -> None:
    simulator.load(trade_frames(ws_data / "spot_btcusdt_20240808.gz", 20))
    eth = trade_frames(ws_data / "spot_ethusdt_20240808.gz", 30)
    await simulator.start()
    connector = BinanceConnector(fast_settings(simulator, symbols=["BTCUSDT"]), wall_clock=simulator.recorded_clock())

    async def subscribe_after_btc(events: list[TradeEvent]) -> None:
        if len(events) == 20:
            for symbol in ["ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT"]:
                await connector.subscribe([symbol])
            await connector.unsubscribe(["BNBUSDT"])
            simulator.load(eth)

    events = await collect(connector, lambda got: len(got) == 50, on_event=subscribe_after_btc)
    first_eth = json.loads(eth[0].payload)["data"]["t"]
    assert _ids(events, "ETHUSDT") == list(range(first_eth, first_eth + 30))
    sent = simulator.control_messages
    assert [method for _, method in sent] == ["SUBSCRIBE"] * 6 + ["UNSUBSCRIBE"]
    times = [at for at, _ in sent]
    # at most 4 per second
    assert all(later - earlier >= 0.99 for earlier, later in zip(times, times[4:], strict=False))
    assert connector.stats.malformed == 0  # the acks are not trades and not malformed


async def test_agg_trade_backfill_pages_through_rest(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames
) -> None:
    frames = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 1600)
    simulator.load(frames)
    await simulator.start()
    base = simulator.connector_settings()
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{base['base_url']}/ws/btcusdt@trade"):
        assert await simulator.wait_drained(10)
        settings = BinanceSettings.from_mapping({**base, "stream": "aggTrade"})
        backfill = TradeBackfill(session, settings)
        payloads = await backfill.fetch("BTCUSDT", FIRST + 5, FIRST + 1500)
        latest = await backfill.fetch("BTCUSDT", FIRST + 1590, None)
    assert [payload["a"] for payload in payloads] == list(range(FIRST + 5, FIRST + 1501))
    assert [payload["a"] for payload in latest] == list(range(FIRST + 1590, FIRST + 1600))
    assert backfill.used_weight == 3 * 4
    recorded = json.loads(frames[5].payload)["data"]
    connector = BinanceConnector({"stream": "aggTrade"})
    (from_rest,) = connector.normalize(payloads[0])
    (from_ws,) = connector.normalize(recorded, received_at=from_rest.ingestion_timestamp)
    assert from_rest == from_ws  # one aggregate per trade: same id, price, quantity, side and time


async def test_speed_factor_follows_recorded_receive_times(
    ws_data: Path, trade_frames: Frames, collect: Collect
) -> None:
    frames = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 300)
    span_s = ((frames[-1].received_ns or 0) - (frames[0].received_ns or 0)) / 1e9  # 18.7 s recorded
    simulator = BinanceSimulator(speed=span_s / 0.5)  # replayed in 0.5 s
    simulator.load(frames)
    loop = asyncio.get_running_loop()
    await simulator.start()
    started = loop.time()
    try:
        connector = BinanceConnector(simulator.connector_settings(), wall_clock=simulator.recorded_clock())
        events = await collect(connector, lambda got: got[-1].trade_id == str(FIRST + 299))
        elapsed = loop.time() - started
    finally:
        await simulator.stop()
    assert 0.45 <= elapsed < 3.0
    ids = _ids(events)
    # The market runs whether or not anyone listens: a late subscriber gets a consecutive tail.
    assert ids == list(range(ids[0], FIRST + 300))
