"""Throughput of the coattail-kinesis source, side by side with Spark's JSON file source.

Puts a backlog of trade-like records into moto's Kinesis (2 shards, in-process on
127.0.0.1), then times the same streaming query (a foreachBatch that counts each batch,
which forces every record to be read) over the backlog twice on local[2]: once from
Kinesis, once from the same records written as local JSON files. Figures are records per
second of wall time from query start to the last record counted (``overall``) and from
the end of the first batch to the last (``sustained``, without query start-up), plus
Spark's per-batch ``latestOffset`` (driver fetch) and ``addBatch`` (executors) durations.

    python tests/bench/bench_kinesis_source.py            # prints JSON
    BENCH_RECORDS=50000 python tests/bench/bench_kinesis_source.py

moto has none of Kinesis's limits (5 GetRecords/s per shard, 2 MB/s per shard), so these
figures bound the source's own cost, not what a real stream delivers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RECORDS = int(os.environ.get("BENCH_RECORDS", "20000"))
SHARDS = 2
PER_TRIGGER = 5000
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _trade(n: int) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": 1_767_225_600_000 + n,
        "s": "BTCUSDT",
        "t": n,
        "p": "97123.45000000",
        "q": "0.01234000",
        "T": 1_767_225_600_000 + n,
        "m": n % 2 == 0,
    }


class _Counter:
    """foreachBatch sink counting rows; notes when the first batch and the total were done."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.seen = 0
        self.first_batch_done: float | None = None
        self.done = threading.Event()

    def __call__(self, frame: Any, batch_id: int) -> None:
        self.seen += frame.count()
        if self.first_batch_done is None and self.seen:
            self.first_batch_done = time.perf_counter()
        if self.seen >= self.total:
            self.done.set()


def _time_query(frame: Any, checkpoint: Path, total: int) -> dict[str, float]:
    counter = _Counter(total)
    started = time.perf_counter()
    query = frame.writeStream.foreachBatch(counter).option("checkpointLocation", str(checkpoint)).start()
    try:
        if not counter.done.wait(600):
            raise RuntimeError(f"only {counter.seen} of {total} records arrived within 600 s")
        deadline = time.perf_counter() + 10
        while sum(p["numInputRows"] for p in query.recentProgress) < total and time.perf_counter() < deadline:
            time.sleep(0.1)
        batches = [
            {
                "rows": p["numInputRows"],
                "latest_offset_ms": p["durationMs"].get("latestOffset", 0),
                "add_batch_ms": p["durationMs"].get("addBatch", 0),
            }
            for p in query.recentProgress
            if p["numInputRows"]
        ]
    finally:
        query.stop()
    finished = time.perf_counter()
    first = counter.first_batch_done or started
    first_batch_records = min(total, PER_TRIGGER)
    return {
        "records": counter.seen,
        "seconds": round(finished - started, 2),
        "overall_records_per_s": round(counter.seen / (finished - started)),
        "sustained_records_per_s": round((counter.seen - first_batch_records) / max(finished - first, 1e-9)),
        "batches": batches,
    }


def run() -> dict[str, Any]:
    """Run the benchmark; returns the figures (see the module docstring)."""
    os.environ.update(FAKE_AWS_ENV)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    import boto3
    import pyspark
    from moto.server import ThreadedMotoServer
    from pyspark.sql import SparkSession

    from coattail_kinesis.source import register

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    spark = None
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=endpoint)
        kinesis.create_stream(StreamName="bench-trades", ShardCount=SHARDS)
        kinesis.get_waiter("stream_exists").wait(StreamName="bench-trades", WaiterConfig={"Delay": 0.1})
        payloads = [json.dumps(_trade(n)) for n in range(RECORDS)]
        for first in range(0, RECORDS, 500):
            kinesis.put_records(
                StreamName="bench-trades",
                Records=[
                    {"Data": p.encode(), "PartitionKey": f"k{n % 16}"}
                    for n, p in enumerate(payloads[first : first + 500])
                ],
            )

        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.caseSensitive", "true")  # Binance payloads have both "e" and "E"
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        register(spark)
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            json_dir = root / "json"
            json_dir.mkdir()
            per_file = PER_TRIGGER // 5
            for index, first in enumerate(range(0, RECORDS, per_file)):
                (json_dir / f"part-{index:05d}.json").write_text("\n".join(payloads[first : first + per_file]) + "\n")

            kinesis_frame = (
                spark.readStream.format("coattail-kinesis")
                .option("streamName", "bench-trades")
                .option("region", "us-east-1")
                .option("endpointUrl", endpoint)
                .option("maxRecordsPerTrigger", str(PER_TRIGGER))
                .load()
            )
            source = _time_query(kinesis_frame, root / "ck-kinesis", RECORDS)
            schema = spark.read.json(str(json_dir / "part-00000.json")).schema
            json_frame = spark.readStream.schema(schema).option("maxFilesPerTrigger", 5).json(str(json_dir))
            baseline = _time_query(json_frame, root / "ck-json", RECORDS)
        return {
            "benchmark": "coattail-kinesis source vs JSON files, foreachBatch count, local[2]",
            "pyspark": pyspark.__version__,
            "records": RECORDS,
            "shards": SHARDS,
            "max_records_per_trigger": PER_TRIGGER,
            "coattail_kinesis": source,
            "json_files": baseline,
        }
    finally:
        if spark is not None:
            spark.stop()
        server.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
