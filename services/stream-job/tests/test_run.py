"""``coattail-stream-job run --local``: real Binance trades through Kinesis, the three detectors and the sinks.

Input: the trades of the bundled Binance BTCUSDT spot recording (2024-08-08) with trade
time in [23:57:10, 23:57:40), normalized by the Binance connector and published as
``TradeEvent`` JSON to the local stack's Kinesis stream. The configuration is the
repository's ``config/features.yaml`` (volume-anomaly, whale and spread active), with
``COATTAIL_*`` overrides naming this test's stream and table only. The expected whale
orders are rebuilt from the raw fills, independently of the detector (``whale_orders``, conftest).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from coattail_connector_binance.normalize import normalize_message
from coattail_devstack.localstack import local_config
from coattail_framework.config import ConfigLoader
from coattail_framework.events import TradeEvent
from coattail_framework.iceberg import open_catalog
from coattail_framework.recordings import read_recording
from coattail_stream_job import cli

REPO = Path(__file__).resolve().parents[3]
FEATURES = REPO / "config" / "features.yaml"
RECORDING = REPO / "tests" / "data" / "binance" / "ws" / "spot_btcusdt_20240808.gz"
SLICE = (datetime(2024, 8, 8, 23, 57, 10, tzinfo=UTC), datetime(2024, 8, 8, 23, 57, 40, tzinfo=UTC))
SIGTERM_TIMEOUT_S = 180.0


def _recorded_trades(start: datetime, end: datetime) -> list[TradeEvent]:
    trades = []
    for message in read_recording(RECORDING):
        received = datetime.fromtimestamp((message.received_ns or 0) / 1e9, tz=UTC)
        trades.extend(normalize_message(json.loads(message.payload), received_at=received))
    return [t for t in trades if start <= t.timestamp < end]


def _publish(endpoint: str, stream: str, trades: Sequence[TradeEvent]) -> None:
    kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=endpoint)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    for start in range(0, len(trades), 500):
        records = [{"Data": t.to_json().encode(), "PartitionKey": t.partition_key} for t in trades[start : start + 500]]
        assert kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"] == 0


def _names(monkeypatch: pytest.MonkeyPatch, suffix: str) -> dict[str, str]:
    # moto keeps its state per process, shared by every server: this test's own stream and table.
    names = {"COATTAIL_KINESIS__STREAM_NAME": f"trades-{suffix}", "COATTAIL_DYNAMODB__TABLE_NAME": f"alerts-{suffix}"}
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    # The recording's 2024 trades are put today: judged against their (recorded) ingestion clock.
    monkeypatch.setenv("COATTAIL_QUALITY__EVENT_TIME_REFERENCE", "ingestion")
    return names


def _rows(root: Path, table: str) -> list[dict[str, Any]]:
    config = local_config(ConfigLoader(FEATURES, environ={}).load(), root, "http://127.0.0.1")
    catalog = open_catalog(config.iceberg, config.aws)
    rows: list[dict[str, Any]] = catalog.load_table((config.iceberg.database, table)).scan().to_arrow().to_pylist()
    return rows


def test_run_local_drain_writes_raw_trades_whales_and_alerts(
    spark: object,
    whale_orders: Callable[[Sequence[TradeEvent]], list[Any]],
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trades = _recorded_trades(*SLICE)
    expected = whale_orders(trades)
    assert len(trades) == 567
    assert [(o.order_time.isoformat(), o.side, o.fills, round(o.notional)) for o in expected] == [
        ("2024-08-08T23:57:18.615000+00:00", "sell", 34, 153_436),
        ("2024-08-08T23:57:24.706000+00:00", "buy", 29, 148_765),
        ("2024-08-08T23:57:24.707000+00:00", "buy", 24, 139_706),
        ("2024-08-08T23:57:33.859000+00:00", "sell", 70, 617_310),
    ]
    names = _names(monkeypatch, "run-drain")
    # The test's moto and the command's stack share moto's process-wide state: create and fill the stream first.
    config = ConfigLoader(FEATURES).load()
    kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto_endpoint)
    kinesis.create_stream(StreamName=config.kinesis.stream_name, ShardCount=config.kinesis.shard_count)
    _publish(moto_endpoint, config.kinesis.stream_name, trades)

    root = tmp_path / "stack"
    assert cli.main(["run", "--config", str(FEATURES), "--local", "--root", str(root), "--drain"]) == 0
    summary = json.loads(capsys.readouterr().out)

    raw = _rows(root, "raw_trades")
    assert sorted(row["event_id"] for row in raw) == sorted(t.event_id for t in trades)
    orders = sorted(_rows(root, "whale_trades"), key=lambda row: (row["order_time"], row["first_trade_id"]))
    assert [(o["order_time"], o["side"], o["first_trade_id"], o["fill_count"]) for o in orders] == [
        (e.order_time, e.side, e.first_trade_id, e.fills) for e in expected
    ]
    assert [o["notional"] for o in orders] == [pytest.approx(float(e.notional), rel=1e-12) for e in expected]

    dynamodb = boto3.resource("dynamodb", region_name="us-east-1", endpoint_url=moto_endpoint)
    items = dynamodb.Table(names["COATTAIL_DYNAMODB__TABLE_NAME"]).scan()["Items"]
    assert sorted((i["alert_id"], i["severity"], i["module_id"]) for i in items) == sorted(
        (e.alert_id, e.severity, "MOD-002") for e in expected
    )
    notional_by_id = {i["alert_id"]: json.loads(str(i["details"]))["notional"] for i in items}
    assert notional_by_id == {e.alert_id: pytest.approx(float(e.notional), rel=1e-12) for e in expected}
    assert sorted(row["alert_id"] for row in _rows(root, "alerts")) == sorted(e.alert_id for e in expected)

    assert summary["input_rows"]["ingest"] == 567
    assert summary["quality"]["invalid"] == 0
    assert summary["dead_letters"] == {}
    assert {table: rows for table, rows in summary["table_rows"].items() if rows} == {
        "raw_trades": 567,
        "whale_trades": 4,
        "alerts": 4,
    }
    assert summary["alerts"] == {"MOD-002/high": 1, "MOD-002/medium": 3}


def test_sigterm_stops_the_local_job_after_its_batch_with_exit_code_0(
    aws_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trades = _recorded_trades(*SLICE)[:200]
    names = _names(monkeypatch, "run-sigterm")
    monkeypatch.setenv("COATTAIL_DISABLED_MODULES", "[volume-anomaly, spread]")
    root, log = tmp_path / "stack", tmp_path / "job.log"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "TZ": "UTC"}
    command = [sys.executable, "-m", "coattail_stream_job.cli", "run", "--config", str(FEATURES), "--local"]
    with log.open("w") as stderr:
        job = subprocess.Popen(
            [*command, "--root", str(root)], stdout=subprocess.PIPE, stderr=stderr, env=env, text=True
        )
    try:
        endpoint = _wait_for(lambda: re.search(r"moto at (http://127\.0\.0\.1:\d+)", log.read_text()), job, log)
        _publish(endpoint.group(1), names["COATTAIL_KINESIS__STREAM_NAME"], trades)
        _wait_for(lambda: (root / "checkpoints" / "ingest" / "commits" / "0").exists(), job, log)
        job.send_signal(signal.SIGTERM)
        out, _ = job.communicate(timeout=SIGTERM_TIMEOUT_S)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 0, log.read_text()[-3000:]
    assert "signal SIGTERM: stopping queries after their current batch" in log.read_text()
    summary = json.loads(out)
    assert summary["table_rows"]["raw_trades"] == 200
    assert sorted(row["event_id"] for row in _rows(root, "raw_trades")) == sorted(t.event_id for t in trades)


def _wait_for(condition: Any, job: subprocess.Popen[str], log: Path) -> Any:
    deadline = time.monotonic() + SIGTERM_TIMEOUT_S
    while time.monotonic() < deadline:
        if result := condition():
            return result
        if job.poll() is not None:
            pytest.fail(f"the job exited with {job.returncode} too early:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"the job did not get there within {SIGTERM_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
