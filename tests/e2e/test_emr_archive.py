"""The EMR archive, built and run: real trades through the stream job from the venv archive.

Builds the archive with the function ``nox -s package-emr`` runs (from the committed lock),
unpacks it into a clean folder and runs the packaged entry point with ``spark-submit``
(from this test venv's PySpark, local[2]) against the local stack started here: real
Binance trades from tests/data go into the stack's Kinesis, ``run --drain`` processes them
in the child and the test reads ``raw_trades`` back with pyiceberg.

As on EMR, the archive holds no PySpark: spark-submit puts its own ``pyspark.zip`` and
py4j on the ``PYTHONPATH`` of the archive's Python. Unlike EMR, a local master cannot use
``--archives env.tar.gz#environment`` for the Python: local-mode workers run in the
driver's working folder, not where Spark unpacks archives, so the test unpacks the
archive itself and points both the driver and the workers at the unpacked ``bin/python``.
The child gets a clean environment: fake AWS credentials and the ``COATTAIL_*`` variables
that point it at the stack, nothing of this test's venv.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pyspark
import pytest

from coattail_connector_binance.normalize import normalize_message
from coattail_devstack.localstack import FAKE_CREDENTIALS, environment_overrides, start_local_stack
from coattail_framework.config import ConfigLoader
from coattail_framework.events import TradeEvent
from coattail_framework.iceberg import open_catalog
from coattail_framework.recordings import read_recording
from coattail_stream_job.packaging import LOCK_PATH, PROVIDED_BY_EMR, build_archive, normalize

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests" / "data" / "binance" / "ws" / "spot_btcusdt_20240808.gz"
TRADES = 40


def _real_trades(count: int) -> list[TradeEvent]:
    trades: list[TradeEvent] = []
    for message in read_recording(RECORDING):
        if message.malformed or message.received_ns is None:
            continue
        received_at = datetime.fromtimestamp(message.received_ns / 1e9, tz=UTC)
        trades.extend(normalize_message(json.loads(message.payload), received_at=received_at))
        if len(trades) >= count:
            return trades[:count]
    raise AssertionError(f"{RECORDING} holds fewer than {count} trades")


def _locked(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ", 1)[0].split("==")
            pins[normalize(name)] = version
    return pins


@pytest.mark.timeout(1200)
def test_the_archive_runs_the_stream_job_end_to_end(tmp_path: Path) -> None:
    artifacts = build_archive(ROOT, tmp_path / "dist")

    locked = _locked(ROOT / LOCK_PATH)
    assert {name: artifacts.distributions[name] for name in locked} == locked
    assert not set(PROVIDED_BY_EMR) & set(artifacts.distributions)
    assert {"coattail-stream-job", "coattail-framework", "coattail-kinesis", "coattail-detector-whale"} <= set(
        artifacts.distributions
    )

    unpacked = tmp_path / "environment"
    with tarfile.open(artifacts.archive) as archive:
        archive.extractall(unpacked, filter="tar")
    python = unpacked / "bin" / "python"
    assert not list((unpacked / "lib").glob("python3.11/site-packages/pyspark"))
    # The local stack and the test kit stay on developers' machines (ADR-037).
    assert not {"moto", "coattail-devstack", "pytest"} & set(artifacts.distributions)
    site_packages = unpacked / "lib" / "python3.11" / "site-packages"
    assert not [path.name for name in ("moto", "coattail_devstack") for path in site_packages.glob(name)]
    framework = site_packages / "coattail_framework"
    assert [p for p in framework.rglob("*.py") if re.search(r"^\s*(from|import) moto", p.read_text(), re.M)] == []

    base = ConfigLoader(ROOT / "config" / "features.yaml", environ={}).load()
    config = base.model_copy(
        update={
            "kinesis": base.kinesis.model_copy(update={"stream_name": "trades-package-test"}),
            "dynamodb": base.dynamodb.model_copy(update={"table_name": "alerts-package-test"}),
            "storage": base.storage.model_copy(update={"s3_bucket": "data-package-test"}),
        }
    )
    trades = _real_trades(TRADES)
    with start_local_stack(config, tmp_path / "stack") as stack:
        kinesis = boto3.client("kinesis", region_name=config.aws.region, endpoint_url=stack.endpoint_url)
        put = kinesis.put_records(
            StreamName=config.kinesis.stream_name,
            Records=[{"Data": trade.to_json().encode(), "PartitionKey": trade.symbol} for trade in trades],
        )
        assert put["FailedRecordCount"] == 0

        environment = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "TZ": "UTC",
            "AWS_DEFAULT_REGION": config.aws.region,
            **FAKE_CREDENTIALS,
            **environment_overrides(stack.config),
            "COATTAIL_KINESIS__STREAM_NAME": config.kinesis.stream_name,
            "COATTAIL_DYNAMODB__TABLE_NAME": config.dynamodb.table_name,
            "COATTAIL_STORAGE__S3_BUCKET": config.storage.s3_bucket,
            "COATTAIL_QUALITY__EVENT_TIME_REFERENCE": "ingestion",  # 2024 trades put today
        }
        if "JAVA_HOME" in os.environ:
            environment["JAVA_HOME"] = os.environ["JAVA_HOME"]
        spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
        command = [
            str(spark_submit),
            "--master",
            "local[2]",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.sql.shuffle.partitions=2",
            "--conf",
            f"spark.pyspark.python={python}",
            "--conf",
            f"spark.pyspark.driver.python={python}",
            str(artifacts.entry_point),
            "--config",
            str(ROOT / "config" / "features.yaml"),
            "--drain",
        ]
        workdir = tmp_path / "work"
        workdir.mkdir()
        completed = subprocess.run(
            command, cwd=workdir, env=environment, capture_output=True, text=True, timeout=900, check=False
        )
        assert completed.returncode == 0, completed.stderr[-6000:]

        catalog = open_catalog(stack.config.iceberg, stack.config.aws)
        rows = catalog.load_table((config.iceberg.database, "raw_trades")).scan().to_arrow().to_pylist()
    assert sorted(row["event_id"] for row in rows) == sorted(trade.event_id for trade in trades)
    assert {row["symbol"] for row in rows} == {"BTCUSDT"}
    summary, _ = json.JSONDecoder().raw_decode(completed.stdout, completed.stdout.index("{\n"))
    assert summary["table_rows"]["raw_trades"] == TRADES
    assert summary["dead_letters"] == {}
