"""The real ``coattail-producer`` command in a subprocess: SIGTERM flushes everything, replay, config errors."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from coattail_connector_binance.simulator import BinanceSimulator
from coattail_framework.recordings import read_recording
from coattail_producer.retime import retime

from .conftest import BTC_DAY1, REGION, published_events, read_stream

COMMAND = str(Path(sys.executable).parent / "coattail-producer")
STOPPED = re.compile(r"stopped; received (\d+), published (\d+), retried (\d+), dropped (\d+)")


def recorded_trade_ids(lines: int) -> list[str]:
    ids = []
    with gzip.open(BTC_DAY1, "rt") as source:
        for _, line in zip(range(lines), source, strict=False):
            if '@trade"' in line:
                ids.append(f"binance:BTCUSDT:{json.loads(line.split(' ', 1)[1])['data']['t']}")
    return ids


def write_config(path: Path, moto_url: str, stream: str, binance_settings: dict[str, Any]) -> Path:
    document = {
        "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}},
        "exchanges": {"binance": {"connector": "binance", "settings": binance_settings}},
        "aws": {"region": REGION, "endpoint_url": moto_url},
        "kinesis": {"stream_name": stream},
        "metrics": {"namespace": f"Test/{stream}"},
    }
    path.write_text(yaml.safe_dump(document))
    return path


def environment(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COATTAIL_")}
    env.update(COATTAIL_CONFIG=str(config), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return env


async def test_sigterm_stops_connectors_flushes_and_exits_zero(
    tmp_path: Path, moto_url: str, stream: str, kinesis: Any
) -> None:
    lines = 12_000
    recorded = [m for _, m in zip(range(lines), read_recording(BTC_DAY1), strict=False)]
    messages = retime(recorded, time.time_ns())  # a live exchange: the connector judges trade times by now
    span = (messages[-1].received_ns - messages[0].received_ns) / 1e9  # type: ignore[operator]
    simulator = BinanceSimulator(speed=span / 10)
    simulator.load(messages)
    await simulator.start()
    settings = {k: v for k, v in simulator.connector_settings().items() if k not in ("exchange", "symbols")}
    config = write_config(tmp_path / "features.yaml", moto_url, stream, settings)
    process = await asyncio.create_subprocess_exec(
        COMMAND,
        "run",
        "--health-port",
        "0",
        "--linger-ms",
        "20",
        env=environment(config),
        stderr=asyncio.subprocess.PIPE,
    )
    log: list[str] = []

    async def collect() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            log.append(line.decode())

    collector = asyncio.create_task(collect())
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while sum(len(r) for r in (await asyncio.to_thread(read_stream, kinesis, stream)).values()) < 100:
            assert asyncio.get_running_loop().time() < deadline, "".join(log)
            assert process.returncode is None, "".join(log)
            await asyncio.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        await collector
    finally:
        if process.returncode is None:
            process.kill()
        await simulator.stop()

    text = "".join(log)
    assert code == 0, text
    assert "SIGTERM received; stopping" in text
    match = STOPPED.search(text)
    assert match is not None, text
    received, published, _, dropped = map(int, match.groups())
    read = [event.event_id for _, _, event in await asyncio.to_thread(published_events, kinesis, stream)]
    all_trades = recorded_trade_ids(lines)
    assert 100 <= received == published == len(read) < len(all_trades)
    assert dropped == 0
    start = all_trades.index(read[0])
    assert read == all_trades[start : start + len(read)]


def test_replay_command_prints_its_summary_and_publishes(
    tmp_path: Path, moto_url: str, stream: str, kinesis: Any
) -> None:
    recording = tmp_path / "trades.txt"
    with gzip.open(BTC_DAY1, "rt") as source:
        trade_lines = [line for _, line in zip(range(3000), source, strict=False) if '@trade"' in line]
    recording.write_text("".join(trade_lines))
    config = write_config(tmp_path / "features.yaml", moto_url, stream, {"stream": "trade"})
    done = subprocess.run(
        [COMMAND, "replay", "--exchange", "binance", "--linger-ms", "10", str(recording)],
        env=environment(config),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["clean"] is True
    assert summary["published"] == summary["received"] == len(trade_lines)
    assert summary["venues"]["binance"]["frames"] == len(trade_lines)
    read = [event.event_id for _, _, event in published_events(kinesis, stream)]
    assert read == [f"binance:BTCUSDT:{json.loads(line.split(' ', 1)[1])['data']['t']}" for line in trade_lines]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"COATTAIL_KINESIS__STREAM_NAME": "no-such-stream"}, "kinesis.stream_name 'no-such-stream' does not exist"),
        ({"COATTAIL_KINESIS__SHARD_COUNT": "0"}, "kinesis.shard_count"),
    ],
)
def test_configuration_errors_exit_2_naming_the_key(
    tmp_path: Path, moto_url: str, stream: str, overrides: dict[str, str], message: str
) -> None:
    config = write_config(tmp_path / "features.yaml", moto_url, stream, {"stream": "trade"})
    done = subprocess.run(
        [COMMAND, "--health-port", "0"],
        env={**environment(config), **overrides},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
