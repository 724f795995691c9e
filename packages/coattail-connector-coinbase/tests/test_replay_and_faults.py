"""The connector against a real local Coinbase simulator replaying the real recording, with faults."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from coattail_connector_coinbase import CoinbaseConnector, CoinbaseSimulator, Faults, normalize_match
from coattail_connector_coinbase.simulator import GARBAGE
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import RecordedMessage, read_recording
from coattail_framework.simulator import utc_from_ns

TradeKeys = set[tuple[str, str]]
Messages = list[dict[str, Any]]
Replay = Callable[..., Awaitable[tuple[list[TradeEvent], CoinbaseConnector]]]
WaitUntil = Callable[[Callable[[], bool], float], Awaitable[bool]]


def _keys(events: list[TradeEvent]) -> list[tuple[str, str]]:
    return [(e.symbol, e.trade_id or "") for e in events]


def _assert_complete(events: list[TradeEvent], recorded_trade_keys: TradeKeys) -> None:
    keys = _keys(events)
    duplicates = [key for key, count in Counter(keys).items() if count > 1]
    assert duplicates == []
    assert set(keys) == recorded_trade_keys
    assert len(events) == 107


def _receive_times(recording: Path) -> dict[tuple[str, str], datetime]:
    """(product_id, trade_id) of each recorded match to its recorded receive time (aware UTC)."""
    received = {}
    for message in read_recording(recording):
        decoded = json.loads(message.payload)
        if decoded.get("type") in ("match", "last_match"):
            received[(decoded["product_id"], str(decoded["trade_id"]))] = utc_from_ns(message.received_ns or 0)
    return received


def _assert_subscribed_quickly(simulator: CoinbaseSimulator, connections: int) -> None:
    assert len(simulator.sessions) == connections
    for session in simulator.sessions:
        assert session.subscribed_at is not None
        assert session.subscribed_at - session.connected_at < 5.0
        assert session.channels == ("heartbeat", "matches")
        assert session.product_ids == tuple(simulator.products)


async def test_full_replay_is_exact_and_ends_on_shutdown(
    simulator: CoinbaseSimulator,
    recorded_trade_keys: TradeKeys,
    recorded_matches: list[dict[str, Any]],
    replay: Replay,
    recording: Path,
) -> None:
    events, connector = await replay(simulator)
    _assert_complete(events, recorded_trade_keys)
    expected = {(m["product_id"], str(m["trade_id"])): normalize_match(m) for m in recorded_matches}
    received = _receive_times(recording)
    for event in events:
        assert (
            event.model_copy(update={"ingestion_timestamp": event.timestamp})
            == expected[(event.symbol, event.trade_id)]
        )
        assert event.ingestion_timestamp == received[(event.symbol, event.trade_id)]  # the recording's clock
    per_product = {}
    for event in events:
        assert int(event.trade_id or 0) > per_product.get(event.symbol, 0)  # each product in trade order
        per_product[event.symbol] = int(event.trade_id or 0)
    stats = connector.stats.as_dict()
    assert {k: stats[k] for k in ("trades", "gaps", "malformed", "reconnects", "backfilled", "stale_dropped")} == {
        "trades": 107,
        "gaps": 0,
        "malformed": 0,
        "reconnects": 0,
        "backfilled": 0,
        "stale_dropped": 0,
    }
    assert stats["duplicates_dropped"] == 0
    _assert_subscribed_quickly(simulator, 1)
    assert simulator.sessions[0].close_code == 1000  # the connector's close frame


async def test_heartbeats_flooding_the_feed_do_not_move_the_recorded_clock_under_a_match(
    recorded_trade_keys: TradeKeys, replay: Replay, recording: Path
) -> None:
    """A heartbeat every 2 ms per product queues frames ahead of each match; each is still stamped with its own time.

    The simulator's clock moves once the client's websocket answered a ping, which it does as
    soon as it read the frame, queued or not. Before the connector took frames with ``recv`` in
    its own task (``asyncio.timeout``, not ``wait_for``), 4-7 of the 107 matches were stamped with
    a later frame's time in every one of three runs like this one.
    """
    flooded = CoinbaseSimulator(Faults(), heartbeat_interval=0.002)
    flooded.load(read_recording(recording))
    received = _receive_times(recording)

    events, connector = await replay(flooded)

    _assert_complete(events, recorded_trade_keys)
    assert connector.stats.messages > 2_000  # the heartbeats did flood the connection
    stamped_late = [(e.symbol, e.trade_id) for e in events if e.ingestion_timestamp != received[(e.symbol, e.trade_id)]]
    assert stamped_late == []


async def test_connection_dropped_mid_stream_is_backfilled_over_rest(
    simulator: CoinbaseSimulator, recorded_trade_keys: TradeKeys, replay: Replay
) -> None:
    skl_usd = simulator.find_frames("match", "SKL-USD")
    drop_after, resume_at = skl_usd[20], skl_usd[30]
    simulator.faults = Faults(drop_connection_at={drop_after: resume_at - drop_after})
    missed: dict[str, list[int]] = {}
    for index in range(drop_after + 1, resume_at + 1):
        frame = simulator.frame(index)
        if frame is not None and frame["type"] == "match":
            missed.setdefault(frame["product_id"], []).append(frame["trade_id"])
    assert len(missed["SKL-USD"]) == 10

    events, connector = await replay(simulator)

    _assert_complete(events, recorded_trade_keys)
    # On resubscribe each product's newest trade comes back as last_match; the rest come over REST.
    backfilled = {(product, str(t)) for product, ids in missed.items() for t in ids[:-1]}
    assert connector.stats.backfilled == len(backfilled) > 0
    assert {(e.symbol, e.trade_id) for e in events if e.taker_order_id is None} == backfilled
    assert connector.stats.gaps == sum(1 for ids in missed.values() if len(ids) > 1)
    assert connector.stats.reconnects == 1
    assert connector.stats.unrecovered == 0
    _assert_subscribed_quickly(simulator, 2)
    assert simulator.sessions[0].close_code == 1006  # dropped without a close frame


async def test_dropped_messages_are_gaps_found_by_trade_id_and_heartbeat(
    simulator: CoinbaseSimulator, recorded_trade_keys: TradeKeys, replay: Replay
) -> None:
    mid_skl = simulator.find_frames("match", "SKL-USD")[25]
    last_band = simulator.find_frames("match", "BAND-GBP")[-1]  # only a heartbeat can reveal this one
    simulator.faults = Faults(drop_messages={mid_skl, last_band})
    lost = {("SKL-USD", str(simulator.frame(mid_skl)["trade_id"])), ("BAND-GBP", "881617")}  # type: ignore[index]

    events, connector = await replay(simulator)

    _assert_complete(events, recorded_trade_keys)
    assert connector.stats.gaps == 2
    assert connector.stats.backfilled == 2
    assert {(e.symbol, e.trade_id) for e in events if e.taker_order_id is None} == lost
    assert connector.stats.reconnects == 0


async def test_older_sequence_is_dropped_as_stale(
    simulator: CoinbaseSimulator, recorded_trade_keys: TradeKeys, replay: Replay
) -> None:
    skl_usd = simulator.find_frames("match", "SKL-USD")
    simulator.faults = Faults(repeat_after={skl_usd[30]: skl_usd[28], skl_usd[40]: skl_usd[40]})

    events, connector = await replay(simulator)

    _assert_complete(events, recorded_trade_keys)
    assert connector.stats.stale_dropped == 1  # frame 28 again: older sequence
    assert connector.stats.duplicates_dropped == 1  # frame 40 again: same sequence, same trade id
    assert connector.stats.gaps == 0


async def test_garbage_truncated_and_unknown_frames_are_counted_and_kept(
    simulator: CoinbaseSimulator, tmp_path: Path, recorded_trade_keys: TradeKeys, replay: Replay
) -> None:
    skl_usd = simulator.find_frames("match", "SKL-USD")
    simulator.faults = Faults(garbage_before={skl_usd[5]}, truncate={skl_usd[10]})
    simulator.load(
        [
            RecordedMessage('{"type":"mystery","product_id":"SKL-USD"}', None, 9001),
            RecordedMessage("not a recorded frame at all", None, 9002, malformed=True),
        ]
    )
    truncated = json.dumps(simulator.frame(skl_usd[10]), separators=(",", ":"))
    rejected_file = tmp_path / "dead" / "rejected.jsonl"

    events, connector = await replay(simulator, {"rejected_path": str(rejected_file)})

    _assert_complete(events, recorded_trade_keys)
    assert connector.stats.malformed == 4
    held = connector.quarantine.frames()
    assert [frame.reason for frame in held] == ["json", "json", "unknown_type", "json"]
    assert held[2].detail == "unknown message type 'mystery'"
    assert held[0].detail.startswith("not JSON")
    assert connector.quarantine.counts == {"json": 3, "unknown_type": 1}
    payloads = [frame.payload for frame in held]
    assert payloads[0] == GARBAGE
    assert truncated.startswith(payloads[1])
    assert len(payloads[1]) == len(truncated) // 2
    assert payloads[3] == "not a recorded frame at all"
    lines = [json.loads(line) for line in rejected_file.read_text().splitlines()]
    assert [(line["reason"], line["payload"]) for line in lines] == [(f.reason, f.payload) for f in held]
    assert connector.stats.backfilled == 1  # the truncated match came back over REST
    assert connector.stats.reconnects == 0


async def test_frames_with_non_string_type_or_absurd_fields_are_kept_and_the_feed_goes_on(
    simulator: CoinbaseSimulator,
    recorded_trade_keys: TradeKeys,
    recorded_matches: Messages,
    replay: Replay,
) -> None:
    (old_trade,) = [m for m in recorded_matches if m["product_id"] == "SKL-USD" and m["trade_id"] == 1568300]
    odd_frames = [
        {"type": ["match"], "product_id": "SKL-USD"},
        {**old_trade, "type": "match", "side": []},
        {**old_trade, "type": "match", "price": "1E+600000", "size": "1E+600000"},
    ]
    simulator.load([RecordedMessage(json.dumps(frame), None, 9100 + n) for n, frame in enumerate(odd_frames)])

    events, connector = await replay(simulator)

    _assert_complete(events, recorded_trade_keys)
    held = connector.quarantine.frames()
    assert [(frame.reason, frame.detail) for frame in held] == [
        ("unknown_type", "unknown message type ['match']"),
        ("field", "invalid match: side must be 'buy' or 'sell' (the maker's side), got []"),
        ("number_format", "invalid match: price must be a plain decimal string like 67000.12, got '1E+600000'"),
    ]
    assert [json.loads(frame.payload) for frame in held] == odd_frames
    assert connector.stats.malformed == 3
    assert connector.stats.reconnects == 0


async def test_stalled_feed_fails_health_check_and_is_recycled(
    simulator: CoinbaseSimulator, recorded_trade_keys: TradeKeys, replay: Replay
) -> None:
    simulator.faults = Faults(stall_at=simulator.find_frames("match", "SKL-USD")[20])
    unhealthy_seen: list[bool] = []

    async def watch(connector: CoinbaseConnector) -> None:
        while True:
            if not connector.health_check():
                unhealthy_seen.append(True)
            await asyncio.sleep(0.01)

    events, connector = await replay(simulator, {"stale_after": 0.4}, while_running=watch)

    _assert_complete(events, recorded_trade_keys)
    assert unhealthy_seen
    assert connector.stats.stale_recycles == 1
    assert connector.stats.reconnects == 1
    assert connector.health_check()
    _assert_subscribed_quickly(simulator, 2)
    assert simulator.sessions[0].close_code == 1000  # the connector closed the silent connection


async def test_refused_connections_back_off_then_recover(
    simulator: CoinbaseSimulator, recorded_trade_keys: TradeKeys, replay: Replay
) -> None:
    simulator.faults = Faults(refuse_connections=3)
    backoff = {"initial": 0.1, "maximum": 0.25, "multiplier": 2.0, "jitter": 0.0}

    events, connector = await replay(simulator, {"backoff": backoff})

    _assert_complete(events, recorded_trade_keys)
    assert simulator.refused == 3
    assert connector.stats.reconnects == 3
    waits = [later - earlier for earlier, later in zip(simulator.attempts, simulator.attempts[1:], strict=False)]
    assert len(waits) == 3
    for wait, ceiling in zip(waits, (0.1, 0.2, 0.25), strict=True):
        assert ceiling <= wait < ceiling + 0.15
    _assert_subscribed_quickly(simulator, 1)


async def test_shutdown_while_backing_off_ends_the_iterator(wait_until: WaitUntil, recording: Path) -> None:
    simulator = CoinbaseSimulator(Faults(refuse_connections=100))
    simulator.load(read_recording(recording))
    await simulator.start()
    connector = CoinbaseConnector(
        settings={**simulator.connector_settings(), "backoff": {"initial": 5, "maximum": 5}, "stale_after": 0.2},
        rng=random.Random(3),
        wall_clock=simulator.recorded_clock(),
    )

    async def consume() -> list[TradeEvent]:
        return [event async for event in connector.connect()]

    task = asyncio.create_task(consume())
    assert await wait_until(lambda: simulator.refused == 1, 5)
    await asyncio.sleep(0.3)
    assert not connector.health_check()  # no message for longer than stale_after
    await connector.shutdown()
    assert await asyncio.wait_for(task, 1) == []
    assert connector.stats.reconnects == 1
    await simulator.stop()
