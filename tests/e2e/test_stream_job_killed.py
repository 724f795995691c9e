"""The stream job killed with SIGKILL mid-run, three times, ends exactly like an uninterrupted run.

The pytest process owns the local AWS (moto, in-process) and two identical streams filled
with the same records: 60 seconds of real Binance spot and USD-M BTCUSDT trades (normalized
by the real connector, recorded receive times as ingestion times) plus three synthetic
whale orders. A child process (``coattail-stream-job run --config FILE --drain``: the
stream job with the volume-anomaly, whale and spread detectors, until drained) processes
the reference stream once. Against the other stream, children are killed with SIGKILL (the
whole process group: driver, JVM and Python workers) at random moments — after a random
number (1-3) of further micro-batches committed by any query, plus a random delay — three
times, and restarted each
time on the same checkpoints; the last one drains. The DynamoDB alerts and every Iceberg
table must then be identical to the reference: nothing lost, nothing written twice.
The seed is printed; set ``E2E_KILL_SEED`` to replay a failing schedule.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from coattail_connector_binance import BinanceConnector
from coattail_devstack.localstack import LocalStack, create_resources, local_config, start_local_stack
from coattail_framework.aws.clients import aws_client
from coattail_framework.config.model import CoattailConfig
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import read_recording
from coattail_stream_job.replay.pipeline import read_alert_items, read_tables

DATA = Path(__file__).resolve().parents[1] / "data" / "binance" / "ws"
SLICES = {"binance": DATA / "spot_btcusdt_20240808.gz", "binance-usdm": DATA / "usdm_btcusdt_20240808.gz"}
SLICE_START = datetime(2024, 8, 8, 23, 54, 15, tzinfo=UTC)
SLICE_SECONDS = 60
KILLS = 3
CHILD_TIMEOUT_SECONDS = 300
SUBMIT_ARGS = " ".join(
    [
        "--master local[2]",
        "--conf spark.sql.shuffle.partitions=2",
        "--conf spark.ui.enabled=false",
        "--conf spark.driver.host=127.0.0.1",
        "--conf spark.driver.bindAddress=127.0.0.1",
        "pyspark-shell",
    ]
)
"""How the job is submitted on this machine: ``run`` without ``--local`` takes Spark's settings
from the submission (on EMR from ``submit``); here local[2] with 2 shuffle partitions."""
BASE: dict[str, Any] = {
    "symbols": {"BTC/USDT": {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT"}},
    "exchanges": {"binance": {"connector": "binance"}, "binance-usdm": {"connector": "binance"}},
    "modules": {
        "volume-anomaly": {
            "window_seconds": 10,
            "baseline_windows": 6,
            "min_baseline_windows": 3,
            "watermark_delay_seconds": 5,
            "min_quote_volume": 10_000,
        },
        "whale": {"min_notional_usd": 100_000},
        "spread": {"window_seconds": 30, "watermark_delay_seconds": 10, "min_quote_volume": 1000},
    },
    "kinesis": {"shard_count": 2, "max_records_per_trigger": 1000},
    "streaming": {"trigger_seconds": 0.5},
    "metrics": {"enabled": False},
    "quality": {"event_time_reference": "ingestion"},  # 2024 trades put today
}


def slice_events() -> list[TradeEvent]:
    """The real trades of both venues in the slice, plus three synthetic whale orders (in time order)."""
    end = SLICE_START + timedelta(seconds=SLICE_SECONDS)
    events: list[TradeEvent] = []
    for venue, path in SLICES.items():
        connector = BinanceConnector(settings={"exchange": venue, "symbols": ["BTCUSDT"]})
        for message in read_recording(path):
            received = datetime.fromtimestamp((message.received_ns or 0) / 1e9, tz=UTC)
            for event in connector.normalize(json.loads(message.payload), received):
                if event.timestamp < end:
                    events.append(event)
    for n, seconds in enumerate((15, 30, 45), start=1):
        at = SLICE_START + timedelta(seconds=seconds, milliseconds=n)
        price, quantity = Decimal("61500"), Decimal(20 * n)
        events.append(
            TradeEvent(
                event_id=f"binance:BTCUSDT:synthetic-whale-{n}",
                exchange="binance",
                symbol="BTCUSDT",
                price=price,
                quantity=quantity,
                quote_volume=price * quantity,
                side="buy" if n % 2 else "sell",
                timestamp=at,
                ingestion_timestamp=at + timedelta(seconds=1),
                trade_id=f"90000000{n}",
            )
        )
    return sorted(events, key=lambda event: (event.timestamp, event.event_id))


def put_all(stack: LocalStack, stream: str, events: list[TradeEvent]) -> None:
    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=stack.endpoint_url)
    for start in range(0, len(events), 500):
        batch = events[start : start + 500]
        records = [{"Data": e.to_json().encode(), "PartitionKey": e.partition_key} for e in batch]
        assert kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"] == 0


def child_config(stack: LocalStack, root: Path, name: str) -> tuple[CoattailConfig, Path]:
    """A configuration on the shared moto with its own stream, table, catalog and checkpoints, as YAML."""
    base = CoattailConfig.model_validate(
        BASE
        | {
            "kinesis": BASE["kinesis"] | {"stream_name": f"e2e-kill-{name}"},
            "dynamodb": {"table_name": f"e2e-kill-{name}"},
        }
    )
    config = local_config(base, root / name, stack.endpoint_url)
    create_resources(config)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return config, path


def start_job(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    """The stream job in drain mode, in its own process group (so SIGKILL reaches its JVM and workers)."""
    env = os.environ | {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYSPARK_SUBMIT_ARGS": SUBMIT_ARGS,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TZ": "UTC",
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "coattail_stream_job.cli", "run", "--config", str(config_path), "--drain"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def committed_batches(config: CoattailConfig) -> int:
    """Micro-batches committed so far, summed over every query's checkpoint (ingest and detectors)."""
    root = Path(config.storage.checkpoint_root)
    commits = [query / "commits" for query in root.iterdir()] if root.is_dir() else []
    return sum(len([p for p in folder.iterdir() if p.name.isdigit()]) for folder in commits if folder.is_dir())


def wait(process: subprocess.Popen[bytes], log: Path) -> None:
    try:
        code = process.wait(timeout=CHILD_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    assert code == 0, f"stream job exited {code}; its output:\n{log.read_text()[-4000:]}"


def comparable(value: Any) -> Any:
    """Rows and items as hashable values; JSON details parsed so key order cannot differ.

    ``ttl_epoch`` is left out: it is the write time (wall clock) plus ``dynamodb.ttl_days``,
    so two runs of the same trades write different expiries.
    """
    if isinstance(value, dict):
        return tuple(sorted((key, comparable(v)) for key, v in value.items() if key != "ttl_epoch"))
    if isinstance(value, str) and value.startswith("{"):
        return comparable(json.loads(value))
    return value


def outputs(config: CoattailConfig) -> dict[str, Counter[Any]]:
    tables = {name: Counter(map(comparable, table.to_pylist())) for name, table in read_tables(config).items()}
    return tables | {"dynamodb": Counter(comparable(item) for item in read_alert_items(config))}


@pytest.mark.timeout(900)
def test_sigkilled_stream_job_ends_identical_to_an_uninterrupted_run(
    tmp_path: Path, capsys: Any, stream_records: Callable[[Any, str], list[dict[str, Any]]]
) -> None:
    seed = int(os.environ.get("E2E_KILL_SEED", random.SystemRandom().randrange(1_000_000)))
    with capsys.disabled():
        print(f"\nkill schedule seed: {seed} (E2E_KILL_SEED={seed} replays it)")
    schedule = random.Random(seed)
    events = slice_events()
    assert len(events) > 3000
    base = CoattailConfig.model_validate(BASE)
    with start_local_stack(base, tmp_path / "stack") as stack:
        reference, reference_yaml = child_config(stack, tmp_path, "reference")
        killed, killed_yaml = child_config(stack, tmp_path, "killed")
        for config in (reference, killed):
            put_all(stack, config.kinesis.stream_name, events)

        log = tmp_path / "reference.log"
        wait(start_job(reference_yaml, log), log)

        kills: list[tuple[int, float]] = []
        target = 0
        for attempt in range(KILLS):
            log = tmp_path / f"killed-{attempt}.log"
            job = start_job(killed_yaml, log)
            target = committed_batches(killed) + schedule.randint(1, 3)
            while job.poll() is None and committed_batches(killed) < target:
                time.sleep(0.05)
            delay = schedule.uniform(0.0, 1.5)
            time.sleep(delay)
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait(timeout=30)
                kills.append((committed_batches(killed), round(delay, 2)))
        log = tmp_path / "killed-final.log"
        wait(start_job(killed_yaml, log), log)

        expected, got = outputs(reference), outputs(killed)
        kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=stack.endpoint_url)
        assert len(stream_records(kinesis, killed.kinesis.stream_name)) == len(events)

    assert len(kills) == KILLS, f"the job drained before every kill landed: kills at {kills}"
    assert sorted(expected) == [
        "alerts",
        "dynamodb",
        "exchange_spreads",
        "raw_trades",
        "volume_aggregates",
        "whale_trades",
    ]
    assert sum(expected["raw_trades"].values()) == len(events)
    modules = {dict(item)["module_id"] for item in expected["dynamodb"]}
    assert {"MOD-001", "MOD-002"} <= modules
    for table in sorted(expected):
        assert got[table] == expected[table], f"{table} differs after kills at (batches committed, delay s) {kills}"
