"""A real recording with hostile frames mixed in replays every real trade once and alerts as the trades say (issue 20).

A 3.5-minute slice of the Binance BTCUSDT recording (every stream, as recorded) gets seeded
hostile frames written into it at random places, in the recording's own format
(``<receive ns> <frame>``): bad JSON, JSON nested deeper than any decoder goes, wrong types,
absurd ids and times (year 2200, year 10000), ``1E+999999999``, lone surrogates, 1 MiB
frames, a non-MARKET ``X``, missing fields, a trade of another symbol, and lines that are
not frames at all. It is replayed through the whole pipeline (``python -m
coattail_stream_job.replay replay``: simulator, unchanged connector, producer, moto Kinesis,
the stream job's queries, Iceberg and DynamoDB) in its own process (it owns its
SparkSession and moto). What the replay must give is computed here from the clean slice,
without the pipeline: every trade of the slice (the Binance normalizer's events), once
each, in ``raw_trades``; exactly the alerts of the whale orders rebuilt from those fills
(``whale_orders``); every hostile frame counted under the reason it names in the
connector's quarantine. The replay judges trade times against the recording's clock
(``quality.event_time_reference: ingestion``), so no trade is flagged late.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from coattail_connector_binance.normalize import normalize_message
from coattail_devstack.localstack import local_config
from coattail_framework.config import load_config
from coattail_framework.events import TradeEvent
from coattail_framework.iceberg import open_catalog
from coattail_framework.recordings import read_recording

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "config" / "features.yaml"
RECORDING = ROOT / "tests" / "data" / "binance" / "ws" / "spot_btcusdt_20240808.gz"
UNTIL_MS = 1723161460000
"""Trade time where the slice ends: 2024-08-08 23:57:40 UTC (the recording starts 23:54)."""
SEED = 20
COPIES = 3
"""Hostile frames of each kind."""
REPLAY_TIMEOUT_S = 300

Trade = dict[str, Any]


def _frame(trade: Trade, **changes: Any) -> str:
    return json.dumps({"stream": "btcusdt@trade", "data": {**trade, **changes}})


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _missing_quantity(trade: Trade, rng: random.Random) -> str:
    return json.dumps({"stream": "btcusdt@trade", "data": {k: v for k, v in trade.items() if k != "q"}})


HOSTILE: dict[str, tuple[str | None, Callable[[Trade, random.Random], str]]] = {
    # kind: (the connector's quarantine reason, None for a line that is not a frame; the frame)
    "truncated": ("json", lambda t, rng: _frame(t)[: rng.randrange(10, 60)]),
    "nested_too_deep": ("json", lambda t, rng: '{"stream":"btcusdt@trade","data":' + "[" * 10**5 + "]" * 10**5 + "}"),
    "nested_price": ("field", lambda t, rng: _frame(t, p=_nested(50))),
    "float_price": ("field", lambda t, rng: _frame(t, p=float(t["p"]))),
    "exponent_price": ("number_format", lambda t, rng: _frame(t, p="1E+999999999")),
    "year_10000": ("number_range", lambda t, rng: _frame(t, T=253402300800000)),
    "absurd_id": ("trade_id_jump", lambda t, rng: _frame(t, t=10**15 + rng.randrange(1000))),
    "absurd_event_time_and_id": ("trade_id_jump", lambda t, rng: _frame(t, E=10**15, t=2 * 10**15)),
    "id_beyond_long": ("number_range", lambda t, rng: _frame(t, t=10**20)),
    "bool_id": ("field", lambda t, rng: _frame(t, t=True)),
    "non_market_in_2200": ("time_window", lambda t, rng: _frame(t, X="INSURANCE_FUND", T=7258118400000)),
    "execution_type_list": ("field", lambda t, rng: _frame(t, X=["MARKET"])),
    "missing_quantity": ("field", _missing_quantity),
    "lone_surrogate_symbol": ("field", lambda t, rng: _frame(t, s="\ud800", p=[1])),
    "emoji_symbol": ("field", lambda t, rng: json.dumps({"stream": "btcusdt@trade", "data": {**t, "s": "BTC🚀"}},
                                                         ensure_ascii=False)),
    "huge_quantity": ("number_format", lambda t, rng: _frame(t, q="1" * (1 << 20))),
    "unknown_payload": ("unknown_message", lambda t, rng: _frame({"hostile": True})),
    "other_symbol": ("symbol", lambda t, rng: _frame(t, s="XRPUSDT")),
    "not_a_frame": (None, lambda t, rng: "not a recorded frame \u2620"),
}  # fmt: skip


def _slice(target: Path) -> list[TradeEvent]:
    """The recording up to ``UNTIL_MS`` of trade time, every stream, as recorded; returns its trades' events."""
    trades: list[TradeEvent] = []
    with gzip.open(target, "wt", encoding="utf-8") as out:
        for message in read_recording(RECORDING):
            payload = json.loads(message.payload)
            data = payload.get("data", {})
            if data.get("e") == "trade":
                if int(data["T"]) > UNTIL_MS:
                    break
                received = datetime.fromtimestamp((message.received_ns or 0) / 1e9, tz=UTC)
                trades.extend(normalize_message(payload, received_at=received))
            out.write(f"{message.received_ns} {message.payload}\n")
    return trades


def _with_hostile_frames(clean: Path, target: Path, rng: random.Random) -> Counter[str | None]:
    """``clean`` with ``COPIES`` frames of each hostile kind at random places after its first trade.

    A hostile frame takes the receive time of the line before it and is built from the last
    real trade. Returns how many were written per quarantine reason (None: not a frame).
    """
    with gzip.open(clean, "rt", encoding="utf-8") as source:
        lines = source.read().splitlines()
    first_trade = next(i for i, line in enumerate(lines) if '"e":"trade"' in line)
    kinds = [kind for kind in HOSTILE for _ in range(COPIES)]
    rng.shuffle(kinds)
    places = dict(zip(sorted(rng.sample(range(first_trade + 1, len(lines)), len(kinds))), kinds, strict=True))
    written: Counter[str | None] = Counter()
    trade: Trade = {}
    previous_ns = ""
    with gzip.open(target, "wt", encoding="utf-8") as out:
        for index, line in enumerate(lines):
            received_ns, _, payload = line.partition(" ")
            if index in places:
                reason, build = HOSTILE[places[index]]
                out.write(f"{previous_ns} {build(trade, rng)}\n")
                written[reason] += 1
            data = json.loads(payload).get("data", {})
            trade = data if data.get("e") == "trade" else trade
            previous_ns = received_ns
            out.write(line + "\n")
    return written


@dataclass(frozen=True)
class Replayed:
    """What one replay left: its summary, the event ids in ``raw_trades`` and the alert ids."""

    summary: dict[str, Any]
    event_ids: list[str]
    alert_ids: list[str]
    parquet: dict[str, list[dict[str, Any]]]
    """``out/tables/<table>.parquet`` read back, by table name."""


def _replay(recording: Path, out: Path) -> Replayed:
    """``python -m coattail_stream_job.replay replay binance:<recording>`` in its own process."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    env = {key: value for key, value in env.items() if not key.startswith("COATTAIL_")}
    command = [sys.executable, "-m", "coattail_stream_job.replay", "replay", f"binance:{recording}"]
    command += ["--out", str(out), "--config", str(FEATURES)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    config = local_config(load_config(FEATURES), out, "http://127.0.0.1:9")
    catalog = open_catalog(config.iceberg, config.aws)
    rows = catalog.load_table((config.iceberg.database, "raw_trades")).scan().to_arrow().to_pylist()
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    return Replayed(
        json.loads((out / "summary.json").read_text()),
        sorted(row["event_id"] for row in rows),
        sorted(alert["alert_id"] for alert in alerts),
        {path.stem: pq.read_table(path).to_pylist() for path in (out / "tables").glob("*.parquet")},
    )


def test_hostile_frames_in_a_real_recording_change_no_trade_and_no_alert_and_are_all_quarantined(
    tmp_path: Path, whale_orders: Callable[[Sequence[TradeEvent]], list[Any]]
) -> None:
    clean, hostile = tmp_path / "clean.gz", tmp_path / "hostile.gz"
    trades = _slice(clean)
    written = _with_hostile_frames(clean, hostile, random.Random(SEED))
    assert sum(written.values()) == COPIES * len(HOSTILE)
    expected_alerts = sorted(order.alert_id for order in whale_orders(trades))
    assert (len(trades), len(expected_alerts)) == (3_764, 4)

    replayed = _replay(hostile, tmp_path / "hostile-out")

    assert replayed.event_ids == sorted(trade.event_id for trade in trades)
    assert max(Counter(replayed.event_ids).values()) == 1
    assert replayed.alert_ids == expected_alerts
    assert {table: len(rows) for table, rows in replayed.parquet.items()} == replayed.summary["table_rows"]
    assert sorted(row["event_id"] for row in replayed.parquet["raw_trades"]) == replayed.event_ids
    assert sorted(row["alert_id"] for row in replayed.parquet["alerts"]) == expected_alerts
    venue = replayed.summary["producer"]["venues"]["binance"]
    assert venue["quarantined"] == {reason: n for reason, n in written.items() if reason is not None}
    assert venue["malformed_lines"] == written[None]
    assert venue["connector_stats"]["trades"] == len(trades)
    events = replayed.summary["events"]
    assert (events["published"], events["valid"], events["invalid"]) == (len(trades), len(trades), 0)
    assert events["warnings_by_rule"] == {}  # judged by the recording's clock: nothing late
