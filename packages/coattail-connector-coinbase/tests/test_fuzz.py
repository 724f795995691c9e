"""Seeded fuzz of the frame boundary: 25,000 hostile frames, then the real feed, through ``handle_frame``.

Hostile frames are mutations of the real recorded matches and heartbeats (a field replaced
by a hostile value or deleted, characters flipped, the text cut) plus structural garbage
(deep nesting, huge numbers and frames, wrong JSON types, invalid UTF-8, lone surrogates).
No exception may escape, every published event must be the one its frame (or the REST
backfill of recorded trades) defines and pass checks written here independently of
``normalize``, no frame may take long, and afterwards every real trade is published once.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from coattail_connector_coinbase import CoinbaseConnector, normalize_match, normalize_rest_trade
from coattail_connector_coinbase.rest import BackfillResult
from coattail_connector_coinbase.tracking import Gap
from coattail_framework.events import TradeEvent

SEED = 20261206
HOSTILE_FRAMES = 25_000
LATER_TRADE_IDS = 10_000_000
LATER_SEQUENCES = 10_000_000_000
RECEIVED_AT = datetime(2021, 4, 17, 16, 50, tzinfo=UTC)
PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?\Z", re.ASCII)
FIELDS = ("type", "trade_id", "maker_order_id", "taker_order_id", "side", "size", "price", "product_id", "sequence")
HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 1e308, float("nan"), 10**18, 10**40, -(10**18), 2**63, "", " ",
    "+1.5", " 1.5", "1.5 ", "1_000", "\u0661\u0662", "\uff11\uff12", "1e37", "1E+999999999", "NaN", "nan",
    "Infinity", "-Infinity", "-0.5", "0", "0.000", ".5", "5.", "0x10", "1,5", "\ud800", "a\udfffb",
    "\U0001f4a5", "\x00", "BTC-USD\n", "skl-usd", "9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00Z", "2009-12-31T23:59:59.999999Z", "1970-01-01T00:00:00.000000Z",
    "2031-04-17T16:43:30.244075Z", "2021-04-17T16:53:30.244075Z", "yesterday", "2021-02-30T00:00:00Z",
    [], {}, [[[]]], {"a": 1}, "x" * 10_000, "match", "last_match", "buy", "sell", "heartbeat",
]  # fmt: skip


class RecordedTrades:
    """A stand-in for ``TradesClient``: serves the recorded trades of a gap, as Coinbase's REST would."""

    def __init__(self, matches: list[dict[str, Any]]) -> None:
        self.items: dict[tuple[str, int], dict[str, Any]] = {}
        self.requests = 0
        self.serve(matches)

    def serve(self, matches: list[dict[str, Any]]) -> None:
        for m in matches:
            self.items[(m["product_id"], m["trade_id"])] = {
                k: m[k] for k in ("time", "trade_id", "price", "size", "side")
            }

    async def fetch_gap(self, gap: Gap, max_trades: int) -> BackfillResult:
        self.requests += 1
        lowest = max(gap.first, gap.last - max_trades + 1)
        found = sorted(
            (item for (product, trade_id), item in self.items.items() if product == gap.product_id),
            key=lambda item: int(item["trade_id"]),
        )
        return BackfillResult(trades=[item for item in found if lowest <= item["trade_id"] <= gap.last])


def _later(message: dict[str, Any]) -> dict[str, Any]:
    """The recorded trade as one made later: its trade id and sequence moved up, nothing else."""
    return {
        **message,
        "trade_id": message["trade_id"] + LATER_TRADE_IDS,
        "sequence": message["sequence"] + LATER_SEQUENCES,
    }


def _nested(rng: random.Random) -> str:
    depth = rng.choice((100, 1_000, 5_000, 100_000))
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _dumps(message: object, rng: random.Random) -> str:
    return json.dumps(message, ensure_ascii=rng.random() < 0.5, allow_nan=True)


def hostile_frame(rng: random.Random, matches: list[dict[str, Any]], huge_left: list[int]) -> str | bytes:
    """One hostile frame (text or bytes) drawn with ``rng``."""
    base = dict(rng.choice(matches))
    roll = rng.random()
    if roll < 0.40:
        base[rng.choice((*FIELDS, "time"))] = rng.choice(HOSTILE_VALUES)
        return _dumps(base, rng)
    if roll < 0.48:
        del base[rng.choice((*FIELDS, "time"))]
        return _dumps(base, rng)
    if roll < 0.53:
        heartbeat = {"type": "heartbeat", "product_id": base["product_id"], "sequence": base["sequence"]}
        heartbeat[rng.choice(("last_trade_id", "product_id", "sequence"))] = rng.choice(HOSTILE_VALUES)
        heartbeat.setdefault("last_trade_id", base["trade_id"])
        return _dumps(heartbeat, rng)
    if roll < 0.68:
        text = list(_dumps(base, rng))
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(text))
            action = rng.random()
            if action < 0.4:
                text[position] = rng.choice('0123456789.-+eE"{}[],: \\\ud800\u0661x')
            elif action < 0.7:
                del text[position]
            else:
                text.insert(position, rng.choice('0123456789"{}[],:\\\x00'))
        joined = "".join(text)
        return joined[: rng.randrange(len(joined) + 1)] if rng.random() < 0.2 else joined
    if roll < 0.74:
        base[rng.choice(FIELDS)] = None
        return _nested(rng) if rng.random() < 0.7 else _dumps(base, rng).replace("null", _nested(rng), 1)
    if roll < 0.80:
        field = rng.choice(("price", "size", "trade_id", "sequence"))
        literal = rng.choice(("1" * 5_000, "1e400", "-1e400", "NaN", "Infinity", "1" * 400 + ".5", "0." + "0" * 500))
        return _dumps(base, rng).replace(json.dumps(base[field]), literal, 1)
    if roll < 0.85:
        return rng.choice(("null", "1", '"match"', "[]", "[{}]", "true", "", " ", "{}", '{"type":null}'))
    if roll < 0.90:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
    if roll < 0.95:
        alphabet = '\x00\ud800\udfff\u202e\ufeff\U0001f4a5{}[]":,abc019'
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300)))
    if huge_left[0] > 0:
        huge_left[0] -= 1
        base[rng.choice(("maker_order_id", "extra"))] = "x" * rng.choice((1 << 20, 4 << 20))
        return _dumps(base, rng)
    base["type"] = rng.choice(("error", "mystery", "subscriptions", "ticker", "MATCH", "match "))
    return _dumps(base, rng)


def check_frame_event(event: TradeEvent, frame: str | bytes) -> None:
    """``event`` is exactly what its frame says, checked without ``normalize``'s own rules."""
    message = json.loads(frame)
    assert isinstance(message, dict)
    assert message["type"] in ("match", "last_match")
    for field in ("price", "size"):
        assert isinstance(message[field], str)
        assert PLAIN_DECIMAL.match(message[field]), message[field]
    assert (event.price, event.quantity) == (Decimal(message["price"]), Decimal(message["size"]))
    assert event.side == {"sell": "buy", "buy": "sell"}[message["side"]]
    assert (event.symbol, event.trade_id, event.taker_order_id) == (
        message["product_id"],
        str(message["trade_id"]),
        message["taker_order_id"],
    )
    assert datetime(2010, 1, 1, tzinfo=UTC) <= event.timestamp
    assert RECEIVED_AT - timedelta(hours=24) <= event.timestamp <= RECEIVED_AT + timedelta(seconds=60)
    assert event == normalize_match(message, ingestion_timestamp=RECEIVED_AT)
    assert TradeEvent.model_validate_json(event.to_json().encode("utf-8")) == event


async def test_hostile_frames_never_escape_never_publish_a_wrong_event_and_the_feed_recovers(
    recorded_matches: list[dict[str, Any]],
) -> None:
    rng = random.Random(SEED)
    clock = [0.0]
    connector = CoinbaseConnector(
        settings={
            "symbols": sorted({m["product_id"] for m in recorded_matches}),
            "rejected_max_bytes": 1 << 20,
            "resync_after_frames": 3,
            "resync_after_s": 5,
        },
        clock=lambda: clock[0],
        wall_clock=lambda: RECEIVED_AT,
    )
    rest = RecordedTrades(recorded_matches)
    published: list[TradeEvent] = []
    slowest = 0.0
    started = time.perf_counter()

    async def handle(frame: str | bytes) -> None:
        nonlocal slowest
        clock[0] += 0.01
        before = time.perf_counter()
        events = await connector.handle_frame(frame, RECEIVED_AT, rest)  # type: ignore[arg-type]
        slowest = max(slowest, time.perf_counter() - before)
        for event in events:
            if event.taker_order_id is None:  # backfilled: the recorded trade as REST serves it
                item = rest.items[(event.symbol, int(event.trade_id or 0))]
                assert event == normalize_rest_trade(event.symbol, item, ingestion_timestamp=RECEIVED_AT)
            else:
                check_frame_event(event, frame)
        published.extend(events)

    huge_left = [20]
    for _ in range(HOSTILE_FRAMES):
        await handle(hostile_frame(rng, recorded_matches, huge_left))
    assert huge_left == [0]
    hostile_published = len(published)
    later = [_later(m) for m in recorded_matches]  # the feed after the barrage: new trades, higher sequences
    rest.serve(later)
    for message in later:
        await handle(json.dumps(message))
    clock[0] += 10  # past resync_after_s: a product left disagreeing resyncs on its next frame
    for message in later:  # as after a reconnect
        await handle(json.dumps(message))

    assert time.perf_counter() - started < 60
    assert slowest < 2.0
    assert connector.stats.handler_errors == 0  # every rejection came from an explicit check
    assert not any(reason.startswith("handler_error") for reason in connector.quarantine.counts)
    assert connector.quarantine.total == connector.stats.malformed + connector.stats.exchange_errors
    assert connector.quarantine.bytes_held <= 1 << 20
    assert len(connector.quarantine.frames()) <= 1000
    keys = Counter((event.symbol, event.trade_id) for event in published)
    assert [key for key, count in keys.items() if count > 1] == []
    assert connector.stats.trades == len(published)
    later_keys = {(m["product_id"], str(m["trade_id"])) for m in later}
    assert len(later_keys) == 107
    assert later_keys == set(keys) - set(Counter((e.symbol, e.trade_id) for e in published[:hostile_published]))
