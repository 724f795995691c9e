"""The demo's SYNTHETIC Coinbase BTC-USD file replays after the real 2021 Coinbase recording on one venue.

Both files go through one Coinbase simulator and one unchanged connector, as in ``nox -s demo``.
The connector judges trade times against the simulator's recorded clock; the synthetic
file's receive times must move that clock from 2021 to 2024, or every synthetic trade is
quarantined (``time_window``) and the demo loses its spread and whale cases (found in
session 11: 94 of 94 quarantined). Runs the producer's replay into moto's Kinesis; no Spark.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

from coattail_devstack.localstack import start_local_stack
from coattail_framework.config import load_config
from coattail_framework.recordings import read_recording
from coattail_framework.simulator import utc_from_ns
from coattail_producer.replay import replay
from coattail_stream_job.replay import synthetic
from coattail_stream_job.replay.pipeline import replay_config

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
COINBASE_2021 = DATA / "coinbase" / "ws" / "cryptofeed_COINBASE.ws.28.0"
BINANCE_BTCUSDT = [DATA / "binance" / "ws" / f"spot_btcusdt_2024080{day}.gz" for day in (8, 9)]
REAL_COINBASE_TRADES = 107


def test_synthetic_file_carries_receive_times_after_its_trade_times(tmp_path: Path) -> None:
    path = synthetic.write_coinbase_btc_usd(BINANCE_BTCUSDT, tmp_path, synthetic.SyntheticPlan())
    messages = list(read_recording(path))
    plan = synthetic.SyntheticPlan()
    windows = len(synthetic.binance_window_vwaps(BINANCE_BTCUSDT, plan.window_seconds)) - 2
    assert len(messages) == windows * plan.fills_per_window + plan.whale_fills
    for message in messages:
        assert message.received_ns is not None
        assert not message.malformed
        trade_time = json.loads(message.payload)["time"]
        received = utc_from_ns(message.received_ns)
        assert received - synthetic.RECEIVE_LATENCY == datetime.fromisoformat(trade_time.replace("Z", "+00:00"))


def test_synthetic_trades_follow_the_2021_recording_through_one_connector(tmp_path: Path) -> None:
    path = synthetic.write_coinbase_btc_usd(BINANCE_BTCUSDT, tmp_path / "synthetic", synthetic.SyntheticPlan())
    expected_synthetic = sum(1 for _ in read_recording(path))
    config = replay_config(load_config(ROOT / "config" / "demo.yaml"), ["coinbase"])
    # moto keeps its state per process: this test's own stream and table, so later tests' replays start empty.
    config = config.model_copy(
        update={
            "kinesis": config.kinesis.model_copy(update={"stream_name": "trades-demo-synthetic"}),
            "dynamodb": config.dynamodb.model_copy(update={"table_name": "alerts-demo-synthetic"}),
        }
    )

    with start_local_stack(config, tmp_path / "stack") as stack:
        stats = asyncio.run(replay(stack.config, [f"coinbase:{COINBASE_2021}", f"coinbase:{path}"]))

    venue = stats.venues["coinbase"]
    assert venue.quarantined == {}
    assert venue.connector_stats["malformed"] == 0
    assert venue.received == REAL_COINBASE_TRADES + expected_synthetic
    assert stats.published == venue.received
    assert stats.clean


def _alert(module: str, exchange: str, symbol: str, **details: object) -> dict[str, object]:
    return {"module_id": module, "exchange": exchange, "symbol": symbol, "details": json.dumps(details)}


def test_missing_cases_names_each_synthetic_case_without_an_alert() -> None:
    plan = synthetic.SyntheticPlan()
    whale = _alert("MOD-002", "coinbase", "BTC-USD", fill_count=plan.whale_fills)
    spread = _alert("MOD-003", "binance|coinbase", "BTC/USD", premium_bps=79.7)
    small_spread = _alert("MOD-003", "binance|coinbase", "BTC/USD", premium_bps=2.1)
    binance_whale = _alert("MOD-002", "binance", "BTCUSDT", fill_count=plan.whale_fills)

    assert synthetic.missing_cases([whale, spread], plan) == []
    assert synthetic.missing_cases([spread, binance_whale], plan) == ["whale (MOD-002 coinbase BTC-USD, 10 fills)"]
    assert synthetic.missing_cases([whale, small_spread], plan) == [
        "spread (MOD-003 with a coinbase leg, premium within 25% of 80 bps)"
    ]
    assert len(synthetic.missing_cases([], plan)) == 2
