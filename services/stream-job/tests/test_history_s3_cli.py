"""``load-history`` into S3 (moto's server on 127.0.0.1) and through its command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from coattail_connector_binance import BinanceSettings, BinanceSimulator
from coattail_connector_binance.history import BinanceTradeHistory
from coattail_framework.config import CoattailConfig
from coattail_framework.errors import ConfigError
from coattail_framework.iceberg import to_arrow_schema
from coattail_framework.recordings import RecordedMessage, read_recording
from coattail_framework.schemas import UNIFIED_TRADE_EVENT
from coattail_stream_job.arguments import utc_time
from coattail_stream_job.history import cli
from coattail_stream_job.history.checkpoint import IdRange, LoadCheckpoint
from coattail_stream_job.history.job import epoch_ms, load_history
from coattail_stream_job.history.loader import HistoryLoader, checkpoint_path
from coattail_stream_job.history.store import S3Store, open_store, s3_filesystem

WS_DATA = Path(__file__).resolve().parents[3] / "tests" / "data" / "binance" / "ws"
SYMBOL = "BTCUSDT"
PARTITIONS = ds.partitioning(pa.schema([("date", pa.string()), ("symbol", pa.large_string())]), flavor="hive")
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
# 1,979 trades: 155 before midnight, 1,824 after
START, END = "2024-08-08T23:59:50.010Z", "2024-08-09T00:01:00Z"


@pytest.fixture(scope="module")
def trade_frames() -> list[RecordedMessage]:
    names = ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz")
    return [m for name in names for m in read_recording(WS_DATA / name) if '@trade"' in m.payload]


@pytest.fixture(scope="module")
def expected_ids(trade_frames: list[RecordedMessage]) -> list[int]:
    start_ms, end_ms = (int(utc_time(text).timestamp() * 1000) for text in (START, END))
    trades = (json.loads(frame.payload)["data"] for frame in trade_frames)
    return sorted(trade["t"] for trade in trades if start_ms <= trade["T"] < end_ms)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 on 127.0.0.1 with fake credentials in the environment (pyarrow and boto3 read them)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in FAKE_AWS.items():
            patch.setenv(key, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"history-{uuid.uuid4().hex[:12]}"  # moto keeps state per process: one bucket per test
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
async def simulator(trade_frames: list[RecordedMessage]) -> AsyncIterator[BinanceSimulator]:
    simulator = BinanceSimulator(speed=1e6)
    simulator.load(trade_frames)
    await simulator.start()
    assert await simulator.wait_drained(30)
    yield simulator
    await simulator.stop()


class CrashingS3Store(S3Store):
    """Dies after writing its first Parquet object, before the checkpoint commits it."""

    def put(self, path: str, data: bytes) -> None:
        super().put(path, data)
        if path.endswith(".parquet"):
            raise OSError("simulated crash after the S3 upload")


def s3_keys(endpoint: str, bucket: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    # pyarrow leaves an empty "folder/" marker where it deleted the last file of a folder
    return sorted(item["Key"] for item in objects if not item["Key"].endswith("/"))


async def test_s3_destination_partitions_checkpoint_and_crash_resume(
    simulator: BinanceSimulator, s3_endpoint: str, bucket: str, expected_ids: list[int]
) -> None:
    config = CoattailConfig.model_validate({"aws": {"endpoint_url": s3_endpoint}})
    destination = f"s3://{bucket}/raw/history/aggtrades"
    rest = f"http://127.0.0.1:{simulator.port}"
    start, end = utc_time(START), utc_time(END)
    crashing = CrashingS3Store(destination, s3_filesystem(region="us-east-1", endpoint_url=s3_endpoint))
    async with aiohttp.ClientSession() as session:
        history = BinanceTradeHistory(BinanceSettings(rest_url=rest), session=session)
        loader = HistoryLoader(history, crashing, to_arrow_schema(UNIFIED_TRADE_EVENT))
        with pytest.raises(OSError, match="simulated crash after the S3 upload"):
            await loader.load(SYMBOL, epoch_ms(start), epoch_ms(end))
    store = open_store(destination, region="us-east-1", endpoint_url=s3_endpoint)
    crashed = LoadCheckpoint.model_validate_json(store.get(checkpoint_path(SYMBOL)) or b"")
    assert crashed.stored == []
    assert len(crashed.pending) == 2

    stats = await load_history(
        config, symbol=SYMBOL, start=start, end=end, destination=destination, base_url=rest, rows_per_file=700
    )

    dataset = ds.dataset(
        f"{bucket}/raw/history/aggtrades",
        filesystem=s3_filesystem(region="us-east-1", endpoint_url=s3_endpoint),
        format="parquet",
        partitioning=PARTITIONS,
    )
    table = dataset.to_table(columns=["trade_id", "date", "symbol", "event_id"])
    ids = sorted(int(trade_id) for trade_id in table.column("trade_id").to_pylist())
    assert ids == expected_ids
    assert len(ids) == 1_979
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert stats.trades_stored == 1_979
    assert set(table.column("symbol").to_pylist()) == {SYMBOL}
    keys = s3_keys(s3_endpoint, bucket)
    prefix = "raw/history/aggtrades/"
    assert keys[0] == f"{prefix}_checkpoints/symbol={SYMBOL}.json"
    assert {key.rsplit("/", 1)[0] for key in keys[1:]} == {
        f"{prefix}date=2024-08-08/symbol={SYMBOL}",
        f"{prefix}date=2024-08-09/symbol={SYMBOL}",
    }
    assert sorted(f"{prefix}{path}" for path in stats.files) == keys[1:]
    assert len(stats.files) == 3  # a flush after each page: the first one split at midnight
    checkpoint = LoadCheckpoint.model_validate_json(store.get(checkpoint_path(SYMBOL)) or b"")
    assert checkpoint.stored == [IdRange(first=expected_ids[0], last=expected_ids[-1])]
    assert checkpoint.pending == []


def test_open_store_rejects_unsupported_destinations() -> None:
    with pytest.raises(ConfigError, match="names no bucket"):
        open_store("s3:///raw", region="us-east-1", endpoint_url=None)
    with pytest.raises(ConfigError, match="only local paths and s3:// URIs"):
        open_store("gs://bucket/raw", region="us-east-1", endpoint_url=None)
    with pytest.raises(ConfigError, match=r"aws\.endpoint_url must be an http"):
        open_store("s3://bucket/raw", region="us-east-1", endpoint_url="127.0.0.1:5000")


@pytest.fixture
def threaded_simulator(trade_frames: list[RecordedMessage]) -> Iterator[BinanceSimulator]:
    """The simulator on its own event loop in a thread, for the CLI (which runs ``asyncio.run``)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="binance simulator", daemon=True)
    thread.start()
    simulator = BinanceSimulator(speed=1e6)
    simulator.load(trade_frames)

    async def start() -> None:
        await simulator.start()
        assert await simulator.wait_drained(30)

    asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    yield simulator
    asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="coattail-stream-job load-history")
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_loads_into_the_configured_raw_zone_and_exits_75_on_a_ban(
    threaded_simulator: BinanceSimulator,
    expected_ids: list[int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "features.yaml"
    config.write_text(f"storage:\n  raw_zone: {tmp_path / 'raw'}\n", encoding="utf-8")
    rest = f"http://127.0.0.1:{threaded_simulator.port}"
    argv = ["--symbol", "btcusdt", "--start", START, "--end", END, "--base-url", rest, "--config", str(config)]

    assert cli.main(parse(*argv)) == 0

    out = capsys.readouterr().out
    assert f"{SYMBOL}: 1,979 trades stored in 2 file(s)" in out
    assert f"destination {tmp_path / 'raw'}/history/aggtrades" in out
    files = sorted((tmp_path / "raw" / "history" / "aggtrades").rglob("*.parquet"))
    assert [file.parent.name for file in files] == [f"symbol={SYMBOL}"] * 2
    table = ds.dataset(files, format="parquet").to_table(columns=["trade_id"])
    assert sorted(int(value) for value in table.column("trade_id").to_pylist()) == expected_ids

    threaded_simulator.force_rest_status(418, retry_after_s=600)
    other = ["--symbol", "BTCUSDT", "--start", "2024-08-09T00:01:00", "--end", "2024-08-09T00:02:00"]
    assert cli.main(parse(*other, "--base-url", rest, "--config", str(config))) == cli.EXIT_BANNED
    err = capsys.readouterr().err
    assert "HTTP 418" in err
    assert "600 s (Retry-After)" in err
    assert "last stored id " + str(expected_ids[-1]) in err  # the checkpoint of the earlier run


def test_cli_arguments() -> None:
    args = parse("--symbol", "ethusdt", "--start", "2024-08-08", "--end", "2024-08-09T02:00:00+02:00")
    assert args.symbol == "ETHUSDT"
    assert args.start.isoformat() == "2024-08-08T00:00:00+00:00"  # a bare date is midnight UTC
    assert args.end.isoformat() == "2024-08-09T00:00:00+00:00"
    assert (args.rows_per_file, args.weight_per_minute, args.out) == (100_000, None, None)
    assert (args.exchange, args.base_url) == ("binance", None)  # None: the connector's rest_url setting
    with pytest.raises(ConfigError, match=r"--end .* must be after --start"):
        cli.main(parse("--symbol", "BTCUSDT", "--start", "2024-08-09", "--end", "2024-08-08"))


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--start", "yesterday"], "'yesterday' is not an ISO 8601 time"),
        (["--rows-per-file", "0"], "must be a positive integer, got '0'"),
    ],
)
def test_cli_rejects_bad_arguments(argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    base: dict[str, Any] = {"--symbol": "BTCUSDT", "--start": "2024-08-08", "--end": "2024-08-09"}
    base.update(dict(zip(argv[::2], argv[1::2], strict=False)))
    with pytest.raises(SystemExit) as exited:
        parse(*[item for pair in base.items() for item in pair])
    assert exited.value.code == 2
    assert problem in capsys.readouterr().err
