"""Hostile input: a seeded fuzz of the frame handler, poison frames on a live stream, restarts,
absurd ids, non-market futures trades and REST answers that are not JSON (issue 20)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web

from coattail_connector_binance import BinanceConnector, BinanceSimulator
from coattail_connector_binance.backfill import BackfillError, TradeBackfill
from coattail_connector_binance.connection import Frame
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import RecordedMessage
from coattail_framework.simulator import utc_from_ns

SEED = 20
FUZZ_FRAMES = 25_000
START = datetime(2024, 8, 9, tzinfo=UTC)
FIRST = 3735683259

Frames = Callable[[Path, int], list[RecordedMessage]]
Collect = Callable[..., Any]

_PLAIN = re.compile(r"[0-9]+(\.[0-9]+)?")
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._/-]{1,31}")


class StubBackfill:
    """REST stand-in: serves synthetic trades for the ids asked (or nothing), counting calls."""

    def __init__(self, *, serve: bool = False) -> None:
        self.serve = serve
        self.calls: list[tuple[str, int, int | None]] = []

    async def fetch(self, symbol: str, from_id: int, to_id: int | None) -> list[dict[str, Any]]:
        self.calls.append((symbol, from_id, to_id))
        if not self.serve or to_id is None:
            return []
        return [trade(symbol, trade_id) for trade_id in range(from_id, to_id + 1)]


def trade(symbol: str, trade_id: int, **fields: Any) -> dict[str, Any]:
    """A valid bare trade payload at START."""
    ms = int(START.timestamp() * 1000)
    return {"e": "trade", "E": ms, "s": symbol, "t": trade_id, "p": "61800.30", "q": "0.006", "T": ms, "m": False,
            **fields}  # fmt: skip


def at_start(settings: dict[str, Any]) -> BinanceConnector:
    """A connector whose clock (REST receive time, quarantine) stands at START."""
    return BinanceConnector(settings, wall_clock=lambda: START)


def frame(payload: Any, at: datetime = START) -> Frame:
    return Frame(payload if isinstance(payload, str) else json.dumps(payload), at)


async def handle_all(connector: BinanceConnector, frames: list[Frame], backfill: Any = None) -> list[TradeEvent]:
    backfill = backfill or StubBackfill()
    events: list[TradeEvent] = []
    for item in frames:
        events.extend(await connector.handle_frame(cast(TradeBackfill, backfill), item))
    return events


# --- the seeded fuzz -------------------------------------------------------------------------

HOSTILE_VALUES: list[Any] = [
    None, True, False, -1, 0, 1.5, 1e20, 1e308, -1e20, 10**15, 10**20, 10**400, 253402300800000, 2**63, 2**64,
    "1E+999999999", "1e37", "+1.5", " 1.5", "1.5 ", "1_000", "\u0661\u0662\u0663", "\uff11\uff12\uff13",
    "NaN", "Infinity", "-Infinity", "-1",
    "0", "0.00000000", "", ".5", "5.", "1.2.3", "0x10", "\ud800", "\udfff1", "é", "\u0000", "9" * 100, "1" * 5000,
    "x" * 70_000, [], {}, [1, 2], {"p": "1"}, "MARKET", "INSURANCE_FUND", "ADL", "NA", "trade", "aggTrade", "BTCUSDT",
    "btcusdt", "BTCUSDT\n", "🚀", "trade\ud800",
]  # fmt: skip
FIELDS = ["e", "E", "s", "t", "p", "q", "T", "m", "M", "X", "a", "f", "l"]


def _nested(rng: random.Random) -> str:
    depth = rng.choice([50, 900, 1100, 5000, 100_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}"), ('{"data":', "}")])
    return opener * depth + "1" + closer * depth


def _garbage(rng: random.Random) -> str:
    kind = rng.randrange(10)
    if kind == 0:
        return _nested(rng)
    if kind == 1:
        return rng.choice(["1" * 5000, "1e999999", "-1e999999", "NaN", "Infinity", "[NaN]", "null", "true", "[]", "{}"])
    if kind == 2:
        return "".join(chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(rng.randrange(1, 200)))
    if kind == 3:
        return json.dumps({"stream": "btcusdt@trade", "data": {"e": "trade", "s": "\ud800", "t": 1}})
    if kind == 4:
        return '{"stream":"btcusdt@trade","data":' + json.dumps(rng.choice(HOSTILE_VALUES)) + "}"
    if kind == 5:
        return json.dumps({"result": rng.choice(HOSTILE_VALUES), "id": rng.choice(HOSTILE_VALUES)})
    if kind == 6:
        return json.dumps({"error": {"code": 2, "msg": "x"}, "id": 1})
    if kind == 7:
        return '"' + "\\ud800" * rng.randrange(1, 50) + '"'
    if kind == 8:
        return "".join(rng.choice('{}[]":,0123456789.eE+-tfnul ') for _ in range(rng.randrange(1, 300)))
    return json.dumps([trade("BTCUSDT", FIRST)] * rng.randrange(1, 5))


def _mutate(rng: random.Random, base: dict[str, Any]) -> str:
    wrapped = rng.random() < 0.5
    payload = dict(base)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        action = rng.randrange(4)
        name = rng.choice(FIELDS)
        if action == 0:
            payload[name] = rng.choice(HOSTILE_VALUES)
        elif action == 1:
            payload.pop(name, None)
        elif action == 2 and type(payload.get(name)) is int:
            payload[name] += rng.choice([1, -1, 10**6, -(10**6), 60_001, 86_400_001])
        else:
            payload[name] = str(payload.get(name))
    message: Any = {"stream": "btcusdt@trade", "data": payload} if wrapped else payload
    text = json.dumps(message, ensure_ascii=rng.random() < 0.5)
    roll = rng.random()
    if roll < 0.1:
        return text[: rng.randrange(len(text))]
    if roll < 0.2:
        at = rng.randrange(len(text))
        return text[:at] + chr(rng.randrange(0x20, 0x10FFFF)) + text[at + 1 :]
    return text


def hostile_frames(rng: random.Random, bases: list[tuple[dict[str, Any], datetime]]) -> Iterator[Frame]:
    for index in range(FUZZ_FRAMES):
        base, at = bases[index % len(bases)]
        if index % 2000 == 1999:
            yield Frame('{"x":"' + "y" * rng.choice([1 << 20, 4 << 20]) + '"}', at)  # huge frames
        elif rng.random() < 0.3:
            yield Frame(_garbage(rng), at)
        elif rng.random() < 0.1:
            yield Frame(json.dumps({"stream": "btcusdt@trade", "data": base}), at)  # a valid frame, maybe a duplicate
        else:
            yield Frame(_mutate(rng, base), at)


def expected_event(text: str, received_at: datetime, exchange: str) -> tuple[Any, ...] | None:
    """An independent reading of a valid trade frame: the published fields it must give, else None."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    payload = message.get("data") if isinstance(message, dict) and "stream" in message else message
    if not isinstance(payload, dict) or payload.get("e") not in ("trade", "aggTrade"):
        return None
    trade_id = payload.get("t" if payload["e"] == "trade" else "a")
    price, quantity, trade_ms, symbol = payload.get("p"), payload.get("q"), payload.get("T"), payload.get("s")
    if not (type(trade_id) is int and 0 <= trade_id < 2**63 and type(trade_ms) is int and trade_ms >= 0):
        return None
    if not (type(price) is str and _PLAIN.fullmatch(price) and type(quantity) is str and _PLAIN.fullmatch(quantity)):
        return None
    if Decimal(price) <= 0 or Decimal(quantity) <= 0 or len(price) > 40 or len(quantity) > 40:
        return None
    if type(symbol) is not str or not _SYMBOL.fullmatch(symbol) or payload.get("m") not in (True, False):
        return None
    if payload.get("X", "MARKET") != "MARKET" or trade_ms >= 253402300800000:
        return None
    offset_ms = trade_ms - received_at.timestamp() * 1000
    if not -86_400_000 <= offset_ms <= 60_000:
        return None
    side = "sell" if payload["m"] else "buy"
    return (f"{exchange}:{symbol}:{trade_id}", Decimal(price), Decimal(quantity), side, trade_ms)


async def test_a_seeded_fuzz_of_25000_hostile_frames_publishes_only_valid_trades(
    ws_data: Path, trade_frames: Frames
) -> None:
    rng = random.Random(SEED)
    recorded = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 2000)
    recorded += trade_frames(ws_data / "usdm_btcusdt_20240808.gz", 500)
    bases = [
        (json.loads(message.payload)["data"], datetime.fromtimestamp((message.received_ns or 0) / 1e9, UTC))
        for message in recorded
    ]
    connector = at_start({"symbols": ["BTCUSDT"]})
    backfill = StubBackfill()
    published = wrong = 0
    slowest = 0.0
    started = time.monotonic()
    for item in hostile_frames(rng, bases):
        before = time.monotonic()
        events = await asyncio.wait_for(connector.handle_frame(cast(TradeBackfill, backfill), item), timeout=5)
        slowest = max(slowest, time.monotonic() - before)
        expected = expected_event(item.text, item.received_at, "binance")
        for event in events:  # the stub backfill serves nothing, so every event comes from the frame itself
            got = (event.event_id, event.price, event.quantity, event.side, int(event.timestamp.timestamp() * 1000))
            published += 1
            wrong += got != expected
    assert wrong == 0
    assert connector.stats.messages == FUZZ_FRAMES
    handler_errors = {reason: n for reason, n in connector.quarantine.counts.items() if reason.startswith("handler")}
    assert handler_errors == {}  # every rejection has a reason of its own, the frame boundary caught nothing
    assert connector.quarantine.total == connector.stats.malformed
    assert connector.quarantine.bytes_held <= connector.quarantine.max_bytes
    assert published == connector.stats.trades > 500
    assert slowest < 2.0
    assert time.monotonic() - started < 120


# --- the live stream ---------------------------------------------------------------------------

POISON = [
    "[" * 1000 + "]" * 1000,
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1E+999999999","q":"1",'
    '"T":1723161256322,"m":false}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1",'
    '"T":253402300800000,"m":false}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1e20,"m":false}}',
]


async def test_poison_frames_mid_stream_then_200_good_frames_are_all_published_and_healthy(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect
) -> None:
    frames = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 300)
    simulator.load(frames[:100])
    await simulator.start()
    connector = BinanceConnector(simulator.connector_settings(), wall_clock=simulator.recorded_clock())
    health: list[bool] = []

    def poison_after_100(events: list[TradeEvent]) -> None:
        health.append(connector.health_check())
        if len(events) == 100:
            for text in POISON:
                simulator.inject_raw(text)
            simulator.load(frames[100:])

    events = await collect(connector, lambda got: len(got) == 300, on_event=poison_after_100)
    assert [int(event.trade_id or 0) for event in events] == list(range(FIRST, FIRST + 300))
    assert health == [True] * 300
    assert connector.quarantine.counts == {"json": 1, "number_format": 1, "number_range": 1, "field": 1}
    assert (connector.stats.malformed, connector.stats.trades, connector.stats.gaps) == (4, 300, 0)
    assert connector.stats.reconnects == 0


async def test_connect_after_a_failure_really_reconnects(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect, fast_settings: Any
) -> None:
    simulator.load(trade_frames(ws_data / "spot_btcusdt_20240808.gz", 400))
    await simulator.start()
    connector = BinanceConnector(
        fast_settings(simulator, max_buffered_messages=4), wall_clock=simulator.recorded_clock()
    )
    first_run: list[TradeEvent] = []
    stream = cast(AsyncGenerator[TradeEvent, None], connector.connect())
    async for event in stream:  # the consumer fails after 50 trades, the server keeps sending
        first_run.append(event)
        if len(first_run) == 50:
            break
    await asyncio.wait_for(stream.aclose(), timeout=5)  # did hang in a cancelling task on a busy stream
    assert not connector.health_check()
    rest = await collect(connector, lambda got: got[-1].trade_id == str(FIRST + 399))
    ids = [int(event.trade_id or 0) for event in first_run + rest]
    assert ids == list(range(FIRST, FIRST + 400))
    assert len(simulator.connection_attempts) == 2
    # The market waits for each frame to be read: the one it sent as the new connection opened
    # also came in the REST catch-up, and was dropped as a duplicate.
    assert (connector.stats.trades, connector.stats.reconnects, connector.stats.duplicates_dropped) == (400, 1, 1)


async def test_a_dead_connection_task_makes_the_health_check_fail(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect
) -> None:
    simulator.load(trade_frames(ws_data / "spot_btcusdt_20240808.gz", 100))
    await simulator.start()
    connector = BinanceConnector(simulator.connector_settings(), wall_clock=simulator.recorded_clock())
    seen: list[bool] = []

    async def kill_the_task(events: list[TradeEvent]) -> None:
        if len(events) == 10:
            seen.append(connector.health_check())
            (task,) = connector._tasks.values()
            for _ in range(100):  # one cancel can be swallowed by wait_for on Python 3.11
                task.cancel()
                if (await asyncio.wait([task], timeout=0.05))[0]:
                    break
            assert task.done()
            seen.append(connector.health_check())

    await collect(connector, lambda got: len(got) == 10, on_event=kill_the_task)
    assert seen == [True, False]


# --- ids, execution types, REST ----------------------------------------------------------------


async def test_one_absurd_trade_id_does_not_stall_the_symbol() -> None:
    connector = at_start({"symbols": ["BTCUSDT"]})
    frames = [frame(trade("BTCUSDT", trade_id)) for trade_id in range(1, 6)]
    frames.append(frame(trade("BTCUSDT", 10**15)))
    frames += [frame(trade("BTCUSDT", trade_id)) for trade_id in range(6, 31)]
    backfill = StubBackfill()
    events = await handle_all(connector, frames, backfill)
    assert [event.trade_id for event in events] == [str(trade_id) for trade_id in range(1, 31)]
    assert (connector.stats.suspect_ids, connector.stats.resyncs, connector.stats.duplicates_dropped) == (1, 0, 0)
    assert connector.quarantine.counts == {"trade_id_jump": 1}
    assert backfill.calls == []


async def test_ids_that_really_jump_resync_after_20_frames_and_the_held_ones_are_backfilled() -> None:
    connector = at_start({"symbols": ["BTCUSDT"], "resync_after_frames": 20})
    frames = [frame(trade("BTCUSDT", 1))] + [frame(trade("BTCUSDT", t)) for t in range(500_000, 500_031)]
    backfill = StubBackfill(serve=True)
    events = await handle_all(connector, frames, backfill)
    assert [int(event.trade_id or 0) for event in events] == [1, *range(500_000, 500_031)]
    assert (connector.stats.suspect_ids, connector.stats.resyncs, connector.stats.backfilled) == (19, 1, 19)
    assert backfill.calls == [("BTCUSDT", 500_000, 500_018)]
    assert [(gap.first_missing, gap.last_missing) for gap in connector.unrecovered_gaps] == [(2, 499_999)]


async def test_ids_that_really_jump_resync_after_30_seconds_of_received_time() -> None:
    connector = at_start({"symbols": ["BTCUSDT"]})
    later = START + timedelta(seconds=30)
    frames = [frame(trade("BTCUSDT", 1)), frame(trade("BTCUSDT", 900_000)), frame(trade("BTCUSDT", 900_001), later)]
    events = await handle_all(connector, frames, StubBackfill(serve=True))
    assert [int(event.trade_id or 0) for event in events] == [1, 900_000, 900_001]
    assert (connector.stats.suspect_ids, connector.stats.resyncs) == (1, 1)


async def test_a_trade_of_a_symbol_not_subscribed_is_quarantined() -> None:
    connector = at_start({"symbols": ["BTCUSDT"]})
    frames = [frame(trade("BTCUSDT", 1)), frame(trade("XRPUSDT", 7)), frame(trade("BTCUSDT", 2))]
    events = await handle_all(connector, frames)
    assert [event.event_id for event in events] == ["binance:BTCUSDT:1", "binance:BTCUSDT:2"]
    assert connector.quarantine.counts == {"symbol": 1}


async def test_a_real_gap_is_still_backfilled() -> None:
    connector = at_start({"symbols": ["BTCUSDT"]})
    backfill = StubBackfill(serve=True)
    events = await handle_all(connector, [frame(trade("BTCUSDT", 1)), frame(trade("BTCUSDT", 50))], backfill)
    assert [int(event.trade_id or 0) for event in events] == list(range(1, 51))
    assert backfill.calls == [("BTCUSDT", 2, 49)]
    assert (connector.stats.gaps, connector.stats.backfilled, connector.stats.suspect_ids) == (1, 48, 0)


@pytest.mark.parametrize("execution", ["INSURANCE_FUND", "ADL", "NA"])
async def test_futures_trades_other_than_market_are_skipped_and_counted(execution: str) -> None:
    connector = at_start({"exchange": "binance-usdm", "symbols": ["BTCUSDT"]})
    frames = [
        frame(trade("BTCUSDT", 1, X="MARKET")),
        frame(trade("BTCUSDT", 2, X=execution)),
        frame(trade("BTCUSDT", 3, X="MARKET")),
    ]
    backfill = StubBackfill()
    events = await handle_all(connector, frames, backfill)
    assert [event.event_id for event in events] == ["binance-usdm:BTCUSDT:1", "binance-usdm:BTCUSDT:3"]
    assert (connector.stats.non_market_trades, connector.stats.malformed, connector.stats.gaps) == (1, 0, 0)
    assert backfill.calls == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [("+1.5", "number_format"), (" 1.5", "number_format"), ("1_000", "number_format"), ("١٢٣", "number_format"),
     ("1e37", "number_format"), ("NaN", "number_format"), ("Infinity", "number_format"), ("0.000", "number_range"),
     (1.5, "field")],
)  # fmt: skip
async def test_prices_only_in_the_documented_decimal_format(value: Any, reason: str) -> None:
    connector = at_start({"symbols": ["BTCUSDT"]})
    assert await handle_all(connector, [frame(trade("BTCUSDT", 1, p=value))]) == []
    assert connector.quarantine.counts == {reason: 1}


@pytest.mark.parametrize(("offset", "published"), [(-86_400_001, 0), (-86_400_000, 1), (60_000, 1), (60_001, 0)])
async def test_trade_times_outside_the_window_around_receive_time_are_rejected(offset: int, published: int) -> None:
    connector = at_start({"symbols": ["BTCUSDT"]})
    ms = int(START.timestamp() * 1000) + offset
    events = await handle_all(connector, [frame(trade("BTCUSDT", 1, T=ms))])
    assert len(events) == published
    assert connector.quarantine.counts == ({} if published else {"time_window": 1})


async def _rest_server(bodies: list[str]) -> tuple[web.AppRunner, str, list[int]]:
    hits: list[int] = []

    async def trades(request: web.Request) -> web.Response:
        hits.append(1)
        body = bodies[min(len(hits), len(bodies)) - 1]
        return web.Response(text=body, status=200, content_type="text/html")

    app = web.Application()
    app.router.add_get("/api/v3/historicalTrades", trades)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}", hits


async def no_sleep(_: float) -> None:
    return None


@pytest.mark.parametrize("body", ["<html>502 Bad Gateway</html>", '[{"id": 2, "price": "1', "", '{"code": 0}'])
async def test_a_rest_answer_that_is_not_a_json_list_is_retried_then_reported(body: str) -> None:
    runner, url, hits = await _rest_server([body])
    try:
        connector = at_start({"symbols": ["BTCUSDT"], "rest_url": url, "rest_max_retries": 2})
        async with aiohttp.ClientSession() as session:
            backfill = TradeBackfill(session, connector.settings, sleep=no_sleep)
            with pytest.raises(BackfillError, match="not a JSON list"):
                await backfill.fetch("BTCUSDT", 2, 4)
            assert len(hits) == 3
            events = await handle_all(connector, [frame(trade("BTCUSDT", 1)), frame(trade("BTCUSDT", 5))], backfill)
        assert [event.trade_id for event in events] == ["1", "5"]
        assert connector.stats.backfill_failures == 1
        assert [(gap.first_missing, gap.last_missing, gap.missing) for gap in connector.unrecovered_gaps] == [(2, 4, 3)]
        assert "not a JSON list" in connector.unrecovered_gaps[0].reason
    finally:
        await runner.cleanup()


async def test_a_rest_answer_that_recovers_after_html_fills_the_gap() -> None:
    good = json.dumps([{"id": i, "price": "1.5", "qty": "2", "time": int(START.timestamp() * 1000),
                        "isBuyerMaker": True} for i in (2, 3, 4)])  # fmt: skip
    runner, url, hits = await _rest_server(["<html>oops</html>", good])
    try:
        connector = at_start({"symbols": ["BTCUSDT"], "rest_url": url})
        async with aiohttp.ClientSession() as session:
            backfill = TradeBackfill(session, connector.settings, sleep=no_sleep)
            events = await handle_all(connector, [frame(trade("BTCUSDT", 1)), frame(trade("BTCUSDT", 5))], backfill)
        assert [event.trade_id for event in events] == ["1", "2", "3", "4", "5"]
        assert (len(hits), connector.stats.backfilled, connector.stats.backfill_failures) == (2, 3, 0)
    finally:
        await runner.cleanup()


async def test_a_recording_is_judged_by_its_own_clock_and_an_absurd_trade_time_in_it_is_rejected(
    simulator: BinanceSimulator, ws_data: Path, trade_frames: Frames, collect: Collect
) -> None:
    frames = trade_frames(ws_data / "spot_btcusdt_20240808.gz", 100)
    absurd = json.loads(frames[50].payload)
    absurd["data"].update(t=10**15, T=7_258_118_400_000)  # year 2200
    hostile = RecordedMessage(json.dumps(absurd), frames[50].received_ns, 0)
    simulator.load([*frames[:50], hostile, *frames[50:]])
    clock = simulator.recorded_clock()
    assert clock() == utc_from_ns(frames[0].received_ns or 0)
    await simulator.start()
    connector = BinanceConnector(simulator.connector_settings(), wall_clock=clock)
    events = await collect(connector, lambda got: len(got) == 100)
    assert [int(event.trade_id or 0) for event in events] == list(range(FIRST, FIRST + 100))
    assert connector.quarantine.counts == {"time_window": 1}
    last_received = utc_from_ns(frames[-1].received_ns or 0)
    assert clock() == last_received
    assert all(event.ingestion_timestamp <= last_received for event in events)
    assert all(abs((event.ingestion_timestamp - event.timestamp).total_seconds()) < 60 for event in events)
