"""Replay a real Binance recording slice through BinanceSimulator and the real BinanceConnector into moto."""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coattail_framework.config.model import CoattailConfig
from coattail_framework.errors import ConfigError
from coattail_framework.recordings import RecordedMessage, read_recording
from coattail_framework.simulator import utc_from_ns
from coattail_producer.replay import detect_connector, parse_recording, replay
from coattail_producer.retime import retime, shift_message
from coattail_producer.runner import connector_registry
from coattail_producer.settings import ProducerSettings, PublisherSettings

from .conftest import BTC_DAY1, DATA, REGION, published_events

SLICE_LINES = 12_000
COINBASE_MATCHES = DATA / "coinbase" / "ws" / "cryptofeed_matches_2021.jsonl"
SETTINGS = ProducerSettings(publisher=PublisherSettings(linger_seconds=0.01))


@pytest.fixture(scope="module")
def btc_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12,000 lines of the real BTCUSDT spot recording (trades, depth, book ticker), gzip."""
    path = tmp_path_factory.mktemp("recordings") / "spot_btcusdt_slice.gz"
    with gzip.open(BTC_DAY1, "rt") as source, gzip.open(path, "wt") as target:
        for _, line in zip(range(SLICE_LINES), source, strict=False):
            target.write(line)
    return path


def recorded_trades(path: Path) -> list[dict[str, Any]]:
    """The raw ``@trade`` payloads of a recording, in file order."""
    trades = []
    for message in read_recording(path):
        raw = json.loads(message.payload)
        if raw.get("stream", "").endswith("@trade"):
            trades.append(raw["data"])
    return trades


def make_config(moto_url: str, stream: str) -> CoattailConfig:
    return CoattailConfig.model_validate(
        {
            "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}},
            "exchanges": {"binance": {"connector": "binance", "settings": {"stream": "trade"}}},
            "aws": {"region": REGION, "endpoint_url": moto_url},
            "kinesis": {"stream_name": stream},
        }
    )


async def test_replay_publishes_every_recorded_trade_exactly_once(
    btc_slice: Path, moto_url: str, stream: str, kinesis: Any
) -> None:
    trades = recorded_trades(btc_slice)
    assert len(trades) == 2278
    stats = await replay(make_config(moto_url, stream), [btc_slice], kinesis_client=kinesis, settings=SETTINGS)

    assert stats.clean
    assert stats.venues["binance"].frames == SLICE_LINES
    assert stats.received == stats.published == len(trades)
    read = published_events(kinesis, stream)
    assert [event.event_id for _, _, event in read] == [f"binance:BTCUSDT:{t['t']}" for t in trades]
    assert {key for _, key, _ in read} == {"BTCUSDT"}
    first, last = read[0][2], read[-1][2]
    assert first.timestamp == datetime.fromtimestamp(trades[0]["T"] / 1000, tz=UTC)
    assert last.timestamp == datetime.fromtimestamp(trades[-1]["T"] / 1000, tz=UTC)
    assert (first.price, first.quantity) == (Decimal(trades[0]["p"]), Decimal(trades[0]["q"]))
    assert first.side == ("sell" if trades[0]["m"] else "buy")


async def test_replay_stamps_the_recorded_receive_times_and_logs_no_health_alarm(
    btc_slice: Path, moto_url: str, stream: str, kinesis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    received = {}
    for message in read_recording(btc_slice):
        raw = json.loads(message.payload)
        if raw.get("stream", "").endswith("@trade"):
            received[f"binance:BTCUSDT:{raw['data']['t']}"] = utc_from_ns(message.received_ns or 0)
    with caplog.at_level(logging.INFO, logger="coattail_producer"):
        stats = await replay(make_config(moto_url, stream), [btc_slice], kinesis_client=kinesis, settings=SETTINGS)

    assert stats.clean
    events = [event for _, _, event in published_events(kinesis, stream)]
    assert len(events) == len(received) == 2278
    assert [e.event_id for e in events if e.ingestion_timestamp != received[e.event_id]] == []
    assert [r.getMessage() for r in caplog.records if "UNHEALTHY" in r.getMessage()] == []


async def test_retime_moves_trade_times_to_now_keeping_gaps(
    btc_slice: Path, moto_url: str, stream: str, kinesis: Any
) -> None:
    trades = recorded_trades(btc_slice)[:400]
    short = btc_slice.parent / "retime_slice.jsonl"
    short.write_text("".join(json.dumps({"stream": "btcusdt@trade", "data": t}) + "\n" for t in trades))
    before = datetime.now(UTC)
    stats = await replay(
        make_config(moto_url, stream), [f"binance:{short}"], retime=True, kinesis_client=kinesis, settings=SETTINGS
    )

    assert stats.clean
    assert stats.published == 400
    events = [event for _, _, event in published_events(kinesis, stream)]
    assert abs((events[0].timestamp - before).total_seconds()) < 5
    recorded_gaps = [b["T"] - a["T"] for a, b in itertools.pairwise(trades)]
    replayed_gaps = [round((b.timestamp - a.timestamp).total_seconds() * 1000) for a, b in itertools.pairwise(events)]
    assert replayed_gaps == recorded_gaps
    assert [e.trade_id for e in events] == [str(t["t"]) for t in trades]


def test_retime_rewrites_binance_and_coinbase_time_fields() -> None:
    binance = RecordedMessage('{"stream":"x@trade","data":{"E":1000,"T":999,"t":5}}', 7_000_000, 1)
    coinbase = RecordedMessage('{"type":"match","time":"2021-04-17T16:43:30.244075Z","trade_id":1}', None, 2)
    other = RecordedMessage('{"result":null,"id":1}', None, 3)

    assert shift_message(binance, 2500) == RecordedMessage(
        '{"stream":"x@trade","data":{"E":3500,"T":3499,"t":5}}', 2_507_000_000, 1
    )
    assert json.loads(shift_message(coinbase, 1).payload)["time"] == "2021-04-17T16:43:30.245075Z"
    assert shift_message(other, 99) == other
    shifted = retime([binance, other], now_ns=1_000_000_000_000)
    assert json.loads(shifted[0].payload)["data"]["T"] == 1_000_000


def test_retime_keeps_frames_nested_too_deep_to_decode_as_they_are() -> None:
    deep = RecordedMessage("[" * 100_000 + "]" * 100_000, 5_000_000, 2)
    trade = RecordedMessage('{"stream":"x@trade","data":{"E":1000,"T":999,"t":5}}', 7_000_000, 1)

    shifted = retime([trade, deep], now_ns=1_000_000_000_000)

    assert shifted[1].payload == deep.payload
    assert shifted[1].received_ns == 5_000_000 + (1_000_000 - 999) * 1_000_000


def test_exchange_is_detected_from_the_messages_or_taken_from_the_prefix(btc_slice: Path, tmp_path: Path) -> None:
    registry = connector_registry()
    assert {"binance", "coinbase"} <= set(registry.connectors)
    assert detect_connector(btc_slice, registry) == "binance"
    assert detect_connector(COINBASE_MATCHES, registry) == "coinbase"
    assert parse_recording(f"coinbase:{btc_slice}", {"binance", "coinbase"}).exchange == "coinbase"
    assert parse_recording(str(btc_slice), {"binance", "coinbase"}).exchange is None
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"hello": "world"}\n')
    with pytest.raises(ConfigError, match="pass --exchange or prefix the path"):
        detect_connector(unknown, registry)


async def test_speed_paces_by_recorded_receive_times(btc_slice: Path, moto_url: str, stream: str, kinesis: Any) -> None:
    messages = [m for m in read_recording(btc_slice) if '@trade"' in m.payload][:300]
    span = (messages[-1].received_ns - messages[0].received_ns) / 1e9  # type: ignore[operator]
    short = btc_slice.parent / "paced_slice.txt"
    short.write_text("".join(f"{m.received_ns} {m.payload}\n" for m in messages))
    speed = span / 1.5
    started = time.monotonic()
    stats = await replay(make_config(moto_url, stream), [short], speed=speed, kinesis_client=kinesis, settings=SETTINGS)
    elapsed = time.monotonic() - started

    assert stats.clean
    assert stats.published == 300
    assert 1.4 < elapsed < 6.0
