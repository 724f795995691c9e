"""Stream job throughput (ingest + the detectors) from Kinesis vs the same queries from local files; scaling; tiers.

One process, one local[2] SparkSession; moto in a child process on 127.0.0.1 (``aws_process``). Each run puts
``BENCH_PIPELINE_EVENTS`` synthetic trades (symbols quoted on Binance and Coinbase,
event times 10 ms apart, 1 % whale-sized) into a fresh stream and drains it with
``PipelineRunner.run(drain=True)``: the ingest query (quality, raw_trades, DLQ) and the
volume-anomaly, whale and spread queries with their sinks (Iceberg on SQLite, DynamoDB on
moto). Events/s = events / wall seconds of the drain, query start-up and the drain's
final idle triggers included. The baseline runs the SAME runner and queries over the same
records read from local JSON files (Spark's file source, same records per trigger).
Scaling: 1, 2 and 4 shards at 10 symbols; 1, 10 and 50 symbols at 2 shards. The runs above use
``feature_tier: small`` (MOD-001..003); run ``large`` repeats the default one with every built
module (``feature_tier: large``), so the cost of the larger tiers is read beside it.
Peak memory (``procmem``) covers every run; its baseline is an idle SparkSession.

    python tests/bench/bench_pipeline.py     # prints JSON
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_process import moto_in_child_process
from procmem import MemorySampler, sample

EVENTS = int(os.environ.get("BENCH_PIPELINE_EVENTS", "12000"))
PER_TRIGGER = 2000
FILE_RECORDS = 500
SHARDS = (1, 2, 4)
SYMBOLS = (1, 10, 50)
DEFAULT_SHARDS, DEFAULT_SYMBOLS = 2, 10
T0 = datetime(2024, 8, 8, 23, 0, tzinfo=UTC)
SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "features.yaml"
"""The repository's configuration: the benchmarks read Kinesis with its pacing and its triggers."""
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def shipped_config() -> Any:
    """``config/features.yaml`` as loaded without environment overrides."""
    from coattail_framework.config import ConfigLoader

    return ConfigLoader(SHIPPED_CONFIG, environ={}).load()


def bench_config(symbols: int, shards: int, name: str, tier: str = "small") -> Any:
    """The benchmark's configuration: ``symbols`` instruments on binance and coinbase, the modules of ``tier``.

    Kinesis is read with the shipped ``kinesis.min_poll_interval_ms`` (the least time between
    two reads of a shard by one query) and tables are kept with the shipped ``iceberg.maintenance``.
    """
    from coattail_framework.config.model import CoattailConfig

    shipped = shipped_config()
    return CoattailConfig.model_validate(
        {
            "feature_tier": tier,
            "symbols": {
                f"S{n:02d}/USDT": {"binance": f"S{n:02d}USDT", "coinbase": f"S{n:02d}-USD"} for n in range(symbols)
            },
            "exchanges": {"binance": {"connector": "binance"}, "coinbase": {"connector": "coinbase"}},
            "kinesis": {
                "stream_name": f"bench-{name}",
                "shard_count": shards,
                "max_records_per_trigger": PER_TRIGGER,
                "min_poll_interval_ms": shipped.kinesis.min_poll_interval_ms,
            },
            "iceberg": {"maintenance": shipped.iceberg.maintenance.model_dump()},
            "dynamodb": {"table_name": f"bench-{name}"},
            "metrics": {"enabled": False},
            "quality": {"max_event_age_seconds": 600, "event_time_reference": "ingestion"},  # 2024 trades
        }
    )


def iter_synthetic_trades(symbols: int, count: int, seed: int = 7) -> Iterator[Any]:
    """``count`` trades over ``symbols`` instruments and two venues, 10 ms apart; one in 100 is whale-sized.

    One at a time: a million of them are never all in memory.
    """
    from coattail_framework.events import TradeEvent

    rng = random.Random(seed)
    for n in range(count):
        venue = "binance" if n % 2 == 0 else "coinbase"
        number = rng.randrange(symbols)
        symbol = f"S{number:02d}USDT" if venue == "binance" else f"S{number:02d}-USD"
        price = Decimal(100 + number) + Decimal(rng.randrange(-50, 50)) / 100
        quantity = Decimal(2000 if n % 100 == 50 else rng.randrange(1, 500)) / 10
        at = T0 + timedelta(milliseconds=10 * n)
        yield TradeEvent(
            event_id=f"{venue}:{symbol}:{n}",
            exchange=venue,
            symbol=symbol,
            price=price,
            quantity=quantity,
            quote_volume=price * quantity,
            side="buy" if rng.random() < 0.5 else "sell",
            timestamp=at,
            ingestion_timestamp=at + timedelta(milliseconds=300),
            trade_id=str(n),
        )


def synthetic_trades(symbols: int, count: int, seed: int = 7) -> list[Any]:
    """``iter_synthetic_trades`` as a list."""
    return list(iter_synthetic_trades(symbols, count, seed))


def put_trades(endpoint: str, stream: str, trades: list[Any]) -> None:
    from coattail_framework.aws.clients import aws_client

    kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint)
    for first in range(0, len(trades), 500):
        records = [{"Data": t.to_json().encode(), "PartitionKey": t.partition_key} for t in trades[first : first + 500]]
        if kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"]:
            raise RuntimeError("moto refused records while filling the benchmark stream")


def write_files(folder: Path, trades: list[Any]) -> None:
    """The trades as the Kinesis source's columns, JSON lines, ``FILE_RECORDS`` per file."""
    folder.mkdir(parents=True)
    for index, first in enumerate(range(0, len(trades), FILE_RECORDS)):
        lines = [
            json.dumps(
                {
                    "data": t.to_json(),
                    "streamName": "files",
                    "partitionKey": t.partition_key,
                    "sequenceNumber": str(first + k + 1),
                    "approximateArrivalTimestamp": t.ingestion_timestamp.isoformat(),
                    "shardId": "file",
                }
            )
            for k, t in enumerate(trades[first : first + FILE_RECORDS])
        ]
        (folder / f"part-{index:05d}.json").write_text("\n".join(lines) + "\n")


def file_runner(files: Path, per_trigger: int) -> Any:
    """A ``PipelineRunner`` class whose queries read the records from JSON ``files`` instead of Kinesis.

    The files hold the Kinesis source's columns (``write_files``); ``per_trigger`` records per trigger.
    """
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    from coattail_framework.pipeline import PipelineRunner

    class FileRunner(PipelineRunner):
        def _records(self, read_delay_seconds: float = 0.0) -> DataFrame:
            # Drains only: a drain staggers nothing (read_delay_seconds is 0).
            schema = (
                "data string, streamName string, partitionKey string, sequenceNumber string, "
                "approximateArrivalTimestamp timestamp, shardId string"
            )
            frames = self.spark.readStream.schema(schema).option("maxFilesPerTrigger", per_trigger // FILE_RECORDS)
            records: DataFrame = frames.json(str(files)).withColumn("data", F.col("data").cast("binary"))
            return records

        def check_drained(self) -> None:
            """No Kinesis stream to compare with: ``drain`` checks that every event was read and written."""
            return None

    return FileRunner


def drain(spark: Any, config: Any, files: Path | None = None) -> dict[str, Any]:
    """Drain the configured stream (or ``files``) through every detector; wall seconds and totals."""

    from coattail_framework.pipeline import PipelineRunner

    runner = (PipelineRunner if files is None else file_runner(files, PER_TRIGGER))(spark, config)
    started = time.perf_counter()
    stats = runner.run(drain=True, handle_signals=False).snapshot()
    seconds = time.perf_counter() - started
    read = stats["input_rows"].get("ingest", 0)
    if read != EVENTS or stats["table_rows"].get("raw_trades", 0) != EVENTS:
        raise RuntimeError(f"the drain did not ingest every event: {json.dumps(stats)}")
    return {
        "modules": list(config.active_modules),
        "events": read,
        "seconds": round(seconds, 2),
        "events_per_s": round(read / seconds),
        "batches": stats["batches"],
        "alerts": stats["alerts"],
    }


def run() -> dict[str, Any]:
    """Run every configuration; returns the figures (see the module docstring)."""
    os.environ.update(FAKE_AWS)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import pyspark

    from coattail_devstack.localstack import create_resources, local_config
    from coattail_framework.spark import local_session

    results: dict[str, Any] = {"events_per_run": EVENTS, "max_records_per_trigger": PER_TRIGGER}
    with (
        tempfile.TemporaryDirectory() as scratch,
        moto_in_child_process() as endpoint,
    ):
        root = Path(scratch)
        spark = local_session("coattail-bench")
        spark.sparkContext.setLogLevel("ERROR")
        spark.range(1000).selectExpr("sum(id)").collect()
        time.sleep(1.0)
        idle = sample()
        results["memory_idle_session_mib"] = {
            key: round(v / 1024, 1) for key, v in idle.items() if key.endswith(("python", "jvm", "workers"))
        }
        runs = [
            ("kinesis", DEFAULT_SHARDS, DEFAULT_SYMBOLS, False, "small"),
            ("files", DEFAULT_SHARDS, DEFAULT_SYMBOLS, True, "small"),
            ("large", DEFAULT_SHARDS, DEFAULT_SYMBOLS, False, "large"),
        ]
        runs += [(f"shards-{n}", n, DEFAULT_SYMBOLS, False, "small") for n in SHARDS if n != DEFAULT_SHARDS]
        runs += [(f"symbols-{n}", DEFAULT_SHARDS, n, False, "small") for n in SYMBOLS if n != DEFAULT_SYMBOLS]
        with MemorySampler() as memory:
            for name, shards, symbols, from_files, tier in runs:
                config = local_config(bench_config(symbols, shards, name, tier), root / name, endpoint)
                create_resources(config)
                trades = synthetic_trades(symbols, EVENTS)
                files = None
                if from_files:
                    files = root / name / "records"
                    write_files(files, trades)
                else:
                    put_trades(endpoint, config.kinesis.stream_name, trades)
                figures = drain(spark, config, files)
                results[name] = {"shards": shards, "symbols": symbols, "tier": tier, **figures}
                print(f"bench_pipeline: {name}: {figures['events_per_s']} events/s", file=sys.stderr, flush=True)
        results["memory_peak_mib"] = memory.peaks()
        spark.stop()
    results["pyspark"] = pyspark.__version__
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
