"""``coattail-stream-job redrive-dlq``: dead letters written by the ingest path's own code, re-driven into moto.

The dead letters come from the pipeline's functions (``parse_trades`` -> quality flags ->
``write_dead_letters``, on the session's local Spark), one ``batch=`` folder per call as the
ingest query writes them. The redrive runs through the command line against moto's Kinesis
(and S3) on 127.0.0.1; the stream is read back with ``GetRecords``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import BinaryType, StringType, StructField, StructType, TimestampType

from coattail_devstack.testing.events import trade
from coattail_framework.aws.clients import aws_client
from coattail_framework.config.model import CoattailConfig
from coattail_framework.pipeline.parse import parse_trades
from coattail_framework.quality import DataQualityChecker, write_dead_letters
from coattail_framework.quality.checker import REASON
from coattail_framework.quality.dlq import DLQ_FOLDER, dead_letter_date, dead_letter_path
from coattail_stream_job import cli, redrive

REGION = "us-east-1"
DAY = "2024-08-08"
MIB = 1024 * 1024
RECORDS = StructType(
    [
        StructField("data", BinaryType()),
        StructField("approximateArrivalTimestamp", TimestampType()),
        StructField("sequenceNumber", StringType()),
        StructField("shardId", StringType()),
    ]
)
NOT_JSON = b"not json at all, {{"
UNICODE = "ünïcødé ✓ 日本 — not json".encode()
TRUNCATED = b'{"symbol": "BTCUSDT", "price": '
TOO_LARGE = b"z" * (MIB + 1)
NO_PRICE = json.dumps(
    {
        k: v
        for k, v in json.loads(trade("2024-08-08T10:00:00Z", "60000.1", "0.5", trade_id=7).to_json()).items()
        if k != "price"
    },
    separators=(",", ":"),
).encode()
"""A real TradeEvent payload without its price: the ``completeness_price`` rule dead-letters it."""


def hash_key(payload: bytes) -> str:
    return "raw-" + hashlib.sha256(payload).hexdigest()[:32]


def write_batch(
    spark: SparkSession, config: CoattailConfig, payloads: list[bytes | None], batch_id: int
) -> dict[str, int]:
    """Dead-letter ``payloads`` as the ingest query does (rows without a time under ``DAY``)."""
    arrival = datetime(2024, 8, 8, 10, 0, 1, tzinfo=UTC)
    records = spark.createDataFrame(
        [(payload, arrival, str(n), "shardId-000000000000") for n, payload in enumerate(payloads)], RECORDS
    )
    checker = DataQualityChecker(spark, config)
    _, invalid = DataQualityChecker.split(checker.flag(parse_trades(records)))
    flagged = invalid.withColumn("dt", dead_letter_date(DAY))
    counted = {(row[REASON], row["dt"]): int(row["count"]) for row in flagged.groupBy(REASON, "dt").count().collect()}
    return write_dead_letters(invalid, config.storage.raw_zone, batch_id, counted=(DAY, counted))


@pytest.fixture(scope="module")
def dead_letters(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A raw zone with dead letters of two reasons, written by the pipeline's own code (module scope: one Spark run)."""
    raw_zone = tmp_path_factory.mktemp("raw")
    config = CoattailConfig.model_validate(
        {"symbols": {"BTC/USDT": {"binance": "BTCUSDT"}}, "storage": {"raw_zone": str(raw_zone)}}
    )
    assert write_batch(spark, config, [NOT_JSON, UNICODE, TRUNCATED], 0) == {"validity_json": 3}
    assert write_batch(spark, config, [None, TOO_LARGE], 1) == {"validity_json": 2}
    assert write_batch(spark, config, [NO_PRICE], 4) == {"completeness_price": 1}
    return raw_zone


@pytest.fixture
def raw_zone(dead_letters: Path, tmp_path: Path) -> Path:
    """A copy of the dead letters for one test (markers are written into it)."""
    return Path(shutil.copytree(dead_letters, tmp_path / "raw"))


@pytest.fixture
def stream(moto_endpoint: str) -> str:
    name = f"trades-{uuid.uuid4().hex[:8]}"
    client = aws_client("kinesis", region=REGION, endpoint_url=moto_endpoint)
    client.create_stream(StreamName=name, ShardCount=2)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


def config_file(tmp_path: Path, moto_endpoint: str, stream: str, raw_zone: str) -> str:
    path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(
        json.dumps(
            {
                "aws": {"region": REGION, "endpoint_url": moto_endpoint},
                "kinesis": {"stream_name": stream},
                "storage": {"raw_zone": raw_zone},
            }
        )
    )
    return str(path)


def stream_records(moto_endpoint: str, stream: str) -> list[tuple[str, bytes]]:
    """``(partition key, data)`` of every record, shard by shard in sequence order."""
    client = aws_client("kinesis", region=REGION, endpoint_url=moto_endpoint)
    out: list[tuple[str, bytes]] = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                break
            out.extend((record["PartitionKey"], record["Data"]) for record in page["Records"])
            iterator = page["NextShardIterator"]
    return out


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any] | None, str]:
    code = cli.main(["redrive-dlq", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


REDRIVEN = sorted([(hash_key(NOT_JSON), NOT_JSON), (hash_key(UNICODE), UNICODE), (hash_key(TRUNCATED), TRUNCATED)])


def test_a_redrive_puts_every_raw_payload_back_counts_the_rest_and_refuses_a_second_run(
    raw_zone: Path, tmp_path: Path, moto_endpoint: str, stream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, moto_endpoint, stream, str(raw_zone))
    folder = raw_zone / "dlq" / "validity_json" / f"dt={DAY}"

    code, summary, error = run(capsys, "--reason", "validity_json", "--date", DAY, "--config", config)

    assert code == redrive.EXIT_LEFT
    assert summary is not None
    assert (summary["found"], summary["redriven"], summary["skipped"]) == (5, 3, {"no_raw_payload": 1, "too_large": 1})
    assert sorted({name.split("/")[0] for name in summary["files"]}) == ["batch=0", "batch=1"]
    assert summary["complete"] is False
    assert summary["earlier_redrive"] is None
    assert f"left 2 of 5 dead letter(s) of {folder}" in error
    assert "{'no_raw_payload': 1, 'too_large': 1}" in error
    assert sorted(stream_records(moto_endpoint, stream)) == REDRIVEN
    marker = json.loads((folder / redrive.MARKER).read_text())
    assert {key: marker[key] for key in ("found", "redriven", "skipped", "stream", "forced")} == {
        "found": 5,
        "redriven": 3,
        "skipped": {"no_raw_payload": 1, "too_large": 1},
        "stream": stream,
        "forced": False,
    }
    assert marker["files"] == summary["files"]

    code, summary, error = run(capsys, "--reason", "validity_json", "--date", DAY, "--config", config)
    assert (code, summary) == (2, None)
    assert f"{folder} was already re-driven at {marker['redriven_at']} (3 of 5 dead letter(s)" in error
    assert "pass --force" in error

    code, summary, _ = run(capsys, "--reason", "validity_json", "--date", DAY, "--config", config, "--dry-run")
    assert code == redrive.EXIT_LEFT
    assert summary is not None
    assert (summary["dry_run"], summary["found"], summary["redriven"]) == (True, 5, 3)
    assert summary["earlier_redrive"] == marker["redriven_at"]
    assert sorted(stream_records(moto_endpoint, stream)) == REDRIVEN

    code, summary, _ = run(capsys, "--reason", "validity_json", "--date", DAY, "--config", config, "--force")
    assert code == redrive.EXIT_LEFT
    assert summary is not None
    assert summary["redriven"] == 3
    assert sorted(stream_records(moto_endpoint, stream)) == sorted(REDRIVEN * 2)
    assert json.loads((folder / redrive.MARKER).read_text())["forced"] is True


def test_a_complete_redrive_exits_0_and_keeps_the_trade_key(
    raw_zone: Path, tmp_path: Path, moto_endpoint: str, stream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, moto_endpoint, stream, str(raw_zone))

    code, summary, error = run(capsys, "--reason", "completeness_price", "--date", DAY, "--config", config)

    assert (code, error) == (0, "")
    assert summary is not None
    assert (summary["found"], summary["redriven"], summary["skipped"], summary["complete"]) == (1, 1, {}, True)
    assert stream_records(moto_endpoint, stream) == [("BTCUSDT", NO_PRICE)]
    assert (raw_zone / "dlq" / "completeness_price" / f"dt={DAY}" / redrive.MARKER).is_file()


def test_a_redrive_reads_dead_letters_from_s3_and_writes_its_marker_there(
    dead_letters: Path, tmp_path: Path, moto_endpoint: str, stream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = f"data-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    for path in sorted(dead_letters.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"raw/{path.relative_to(dead_letters).as_posix()}")
    config = config_file(tmp_path, moto_endpoint, stream, f"s3://{bucket}/raw")

    code, summary, _ = run(capsys, "--reason", "validity_json", "--date", DAY, "--config", config)

    assert code == redrive.EXIT_LEFT
    assert summary is not None
    assert (summary["found"], summary["redriven"]) == (5, 3)
    assert summary["folder"] == f"s3://{bucket}/raw/dlq/validity_json/dt={DAY}"
    assert sorted(stream_records(moto_endpoint, stream)) == REDRIVEN
    marker = s3.get_object(Bucket=bucket, Key=f"raw/dlq/validity_json/dt={DAY}/{redrive.MARKER}")["Body"].read()
    assert json.loads(marker)["redriven"] == 3
    code, _, error = run(capsys, "--reason", "validity_json", "--date", DAY, "--config", config)
    assert code == 2
    assert "already re-driven" in error


def test_no_dead_letters_or_no_stream_is_a_configuration_error_naming_what_is_there(
    raw_zone: Path, tmp_path: Path, moto_endpoint: str, stream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, moto_endpoint, stream, str(raw_zone))
    code, _, error = run(capsys, "--reason", "validity_json", "--date", "2024-08-09", "--config", config)
    assert code == 2
    assert (
        f"no dead letters under {raw_zone}/dlq/validity_json/dt=2024-08-09; present: dates of this reason: dt={DAY}"
        in error
    )
    code, _, error = run(capsys, "--reason", "validity_side_known", "--date", DAY, "--config", config)
    assert code == 2
    assert "present: reasons: completeness_price, validity_json" in error

    empty = raw_zone / "dlq" / "validity_json" / "dt=2024-08-07" / "batch=0" / "part-00000.json"
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")
    code, _, error = run(capsys, "--reason", "validity_json", "--date", "2024-08-07", "--config", config)
    assert code == 2
    assert f"the 1 file(s) under {empty.parents[1]} hold no dead letters" in error
    assert not (empty.parents[1] / redrive.MARKER).exists()

    missing = config_file(tmp_path, moto_endpoint, "no-such-stream", str(raw_zone))
    code, _, error = run(capsys, "--reason", "validity_json", "--date", DAY, "--config", missing)
    assert code == 2
    assert "stream 'no-such-stream' not found" in error
    assert not (raw_zone / "dlq" / "validity_json" / f"dt={DAY}" / redrive.MARKER).exists()


def test_the_dead_letter_path_is_the_one_the_ingest_query_writes() -> None:
    assert redrive.DLQ_FOLDER == DLQ_FOLDER
    assert redrive.dead_letter_uri("s3://b/raw/", "validity_json", DAY) == dead_letter_path(
        "s3://b/raw/", "validity_json", DAY
    )
    assert redrive.is_hidden("batch=0/_SUCCESS")
    assert redrive.is_hidden("batch=0/.part-0.json.crc")
    assert redrive.is_hidden("_temporary/0/part-0.json")
    assert not redrive.is_hidden("batch=0/part-00000-abc-c000.json")


@pytest.mark.parametrize("text", ["2024-8-8", "20240808", "2024-02-30", "yesterday"])
def test_a_date_must_be_a_calendar_day_written_yyyy_mm_dd(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="a date is YYYY-MM-DD"):
        redrive.utc_date(text)


@pytest.mark.parametrize("text", ["..", "a/b", "", "rule name"])
def test_a_reason_is_a_single_folder_name(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="a reason is a rule name"):
        redrive.reason_name(text)


@pytest.fixture(autouse=True)
def _no_config_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``COATTAIL_*`` variable from the environment changes the test's configuration files."""
    import os

    for name in [name for name in os.environ if name.startswith("COATTAIL_")]:
        monkeypatch.delenv(name)
