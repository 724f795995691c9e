"""Recording readers: the formats in tests/data, gzip or plain, with nothing dropped silently."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from coattail_framework.recordings import parse_line, read_recording

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"


def test_binance_gzip_recording_with_receive_times() -> None:
    messages = list(read_recording(DATA / "binance" / "ws" / "spot_btcusdt_20240808.gz"))
    trades = [m for m in messages if '"e":"trade"' in m.payload]
    assert len(trades) == 9_757
    assert not any(m.malformed for m in messages)
    first = json.loads(trades[0].payload)
    assert first["stream"] == "btcusdt@trade"
    assert trades[0].received_ns is not None
    assert trades[0].received_ns // 1_000_000 - first["data"]["T"] < 5_000


def test_cryptofeed_recording_skips_client_frames() -> None:
    messages = list(read_recording(DATA / "coinbase" / "ws" / "cryptofeed_COINBASE.ws.28.0"))
    types = [json.loads(m.payload)["type"] for m in messages]
    assert types.count("match") == 97
    assert types.count("last_match") == 10
    assert "subscribe" not in types
    assert all(m.received_ns is not None for m in messages)


def test_plain_jsonl_and_unknown_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('{"a": 1}\n\nnot json at all\n1723161255208000000 {"b": 2}\n')
    messages = list(read_recording(path))
    assert [(m.payload, m.received_ns, m.line, m.malformed) for m in messages] == [
        ('{"a": 1}', None, 1, False),
        ("not json at all", None, 3, True),
        ('{"b": 2}', 1723161255208000000, 4, False),
    ]
    assert parse_line("wss://ws-feed.pro.coinbase.com <-> 1618677373.5", 1) is None
