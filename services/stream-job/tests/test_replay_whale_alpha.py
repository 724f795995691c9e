"""``feature_tier: large`` on the real BTCUSDT recording: MOD-008's markouts equal the raw trades' (issue 22).

The whole recording (2024-08-08 23:54-00:00 UTC, 9,757 trades) goes through the replay: the
producer's simulator and connector, Kinesis (moto), the stream job with every built module.
The expected markouts are computed here from the recording's trades, sharing no code with
the module: whale orders from the stream job's MOD-002 oracle (``whale_orders``, conftest),
entry = VWAP of the trades in (t, t + 5 s], exit = the last trade at or before t + h, the
return side-signed in bps; a horizon is resolved when the final watermark (last trade - 2 s)
has reached t + h.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from coattail_connector_binance.normalize import normalize_message
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import read_recording

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "config" / "features.yaml"
RECORDING = ROOT / "tests" / "data" / "binance" / "ws" / "spot_btcusdt_20240808.gz"
HORIZONS_S = (60, 300, 900, 3600)
"""MOD-008's default horizons."""
WATERMARK_DELAY = timedelta(seconds=2)
ENTRY_DELAY = timedelta(seconds=5)
REPLAY_TIMEOUT_S = 400


def recorded_trades() -> list[TradeEvent]:
    trades = []
    for message in read_recording(RECORDING):
        received = datetime.fromtimestamp((message.received_ns or 0) / 1e9, tz=UTC)
        trades.extend(normalize_message(json.loads(message.payload), received_at=received))
    return trades


def expected_markouts(trades: Sequence[TradeEvent], orders: Sequence[Any]) -> dict[tuple[str, int], float]:
    """``(first trade id, horizon s) -> return bps`` of every resolved horizon of every whale order."""
    ordered = sorted(trades, key=lambda trade: (trade.timestamp, int(trade.trade_id or 0)))
    watermark = ordered[-1].timestamp - WATERMARK_DELAY
    found = {}
    for order in orders:
        start = order.order_time
        window = [t for t in ordered if start < t.timestamp <= start + ENTRY_DELAY]
        entry = float(sum(t.quote_volume for t in window)) / float(sum(t.quantity for t in window))
        for horizon in HORIZONS_S:
            end = start + timedelta(seconds=horizon)
            if end <= watermark:
                exit_price = float([t for t in ordered if t.timestamp <= end][-1].price)
                sign = 1.0 if order.side == "buy" else -1.0
                found[order.first_trade_id, horizon] = sign * (exit_price - entry) / entry * 10_000
    return found


def test_a_large_tier_replay_writes_a_markout_for_every_whale_order_horizon_inside_the_recording(
    tmp_path: Path, whale_orders: Callable[[Sequence[TradeEvent]], list[Any]]
) -> None:
    trades = recorded_trades()
    orders = whale_orders(trades)
    expected = expected_markouts(trades, orders)
    assert (len(trades), len(orders), len(expected)) == (9_757, 16, 13)  # 5.8 minutes: only 1 min resolves

    config = tmp_path / "large.yaml"
    config.write_text(FEATURES.read_text().replace("\nfeature_tier: small ", "\nfeature_tier: large ", 1))
    out = tmp_path / "out"
    env = {key: value for key, value in os.environ.items() if not key.startswith("COATTAIL_")}
    env |= {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    command = [sys.executable, "-m", "coattail_stream_job.replay", "replay", f"binance:{RECORDING}"]
    done = subprocess.run(
        [*command, "--out", str(out), "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=REPLAY_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())

    rows = pq.read_table(out / "tables" / "whale_markouts.parquet").to_pylist()
    assert summary["table_rows"]["whale_markouts"] == len(rows)
    markouts = {(row["first_trade_id"], row["horizon_seconds"]): row for row in rows if row["horizon_seconds"] > 0}
    assert sorted(markouts) == sorted(expected)
    for key, row in markouts.items():
        assert row["return_bps"] == pytest.approx(expected[key], abs=0.05), key
    entries = sorted((row["order_time"], row["first_trade_id"]) for row in rows if row["horizon_seconds"] == 0)
    assert entries == [(order.order_time, order.first_trade_id) for order in orders]
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    by_type = {kind: sum(alert["alert_type"] == kind for alert in alerts) for kind in ("whale_markout", "whale_trade")}
    assert by_type == {"whale_markout": 13, "whale_trade": 16}
