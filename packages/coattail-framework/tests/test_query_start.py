"""Streaming queries through ``coattail-kinesis`` start on a loaded machine (``spark.start_query``).

Each test runs one pipeline-like start in a child process (its own JVM, as a real start has):
this file run as a script starts moto on 127.0.0.1, a stream with a few records, the
platform's local session and N queries reading the stream, and prints one JSON line saying,
per query, "ok" (sources initialised and one batch ran) or the error it died of.

Spark 4.0 gives the source's Python process 10 s to connect back, fixed
(``PythonWorkerFactory.createSimpleWorker``). One test delays that process's first launches
past the 10 s with a wrapper interpreter, so the failure is certain; the other starts five
queries while two processes burn both cores.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(600)

HERE = Path(__file__).resolve()
SOURCE_RUNNER_MODULE = "pyspark.sql.streaming.python_streaming_source_runner"
START_SECONDS = 300
"""Bound of one child start (JVM, moto, queries, first batches), even on a loaded machine."""


def _child_environment(python: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYSPARK_", "SPARK_"))}
    return env | {"PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}


def _start(queries: int, mode: str, python: str = sys.executable) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(HERE), str(queries), mode],
        env=_child_environment(python),
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the child printed no result (exit {result.returncode}):\n{result.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def _late_interpreter(folder: Path, late_launches: int, delay_seconds: float) -> str:
    """An interpreter that starts the source runner ``delay_seconds`` late, its first ``late_launches`` times."""
    script = folder / "python-late"
    count = folder / "source-runner-launches"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$2" = "{SOURCE_RUNNER_MODULE}" ]; then\n'
        f'  echo x >> "{count}"\n'
        f'  if [ "$(wc -l < "{count}")" -le {late_launches} ]; then sleep {delay_seconds}; fi\n'
        "fi\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_a_query_whose_source_process_connects_back_late_is_started_again(tmp_path: Path) -> None:
    from coattail_framework.spark import QUERY_START_ATTEMPTS

    python = _late_interpreter(tmp_path, late_launches=2, delay_seconds=12)

    report = _start(2, "plain-then-start_query", python)

    plain, retried = report["queries"]["q0"], report["queries"]["q1"]
    assert "Python worker failed to connect back" in plain  # Spark alone: the query is dead
    assert retried == "ok", report  # start_query: a later start connected back
    # The first two launches are late on purpose; on a loaded machine a third can be late too.
    assert 2 <= report["starts"]["q1"] <= QUERY_START_ATTEMPTS, report


def test_five_queries_start_while_two_processes_burn_both_cores() -> None:
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdout=subprocess.DEVNULL) for _ in range(2)
    ]
    try:
        report = _start(5, "start_query")
    finally:
        for burner in burners:
            burner.kill()
            burner.wait(timeout=10)

    assert report["queries"] == {f"q{index}": "ok" for index in range(5)}, report


class FakeQuery:
    """A query that has stopped with ``error`` (None: still running)."""

    def __init__(self, error: str | None) -> None:
        self.name = "ingest"
        self.error = error
        self.isActive = error is None
        self.status = {"message": "Waiting for next trigger"}

    def exception(self) -> str | None:
        return self.error

    def awaitTermination(self) -> None:  # noqa: N802 - StreamingQuery's name
        return None


class FakeWriter:
    """A writer whose starts end as ``outcomes`` say, in turn."""

    def __init__(self, *outcomes: str | None) -> None:
        self.outcomes = list(outcomes)
        self.starts = 0

    def start(self) -> FakeQuery:
        self.starts += 1
        return FakeQuery(self.outcomes.pop(0))


LATE = "[STREAM_FAILED] Query terminated with exception: Python worker failed to connect back."


@pytest.mark.parametrize(
    ("outcomes", "starts", "running"),
    [
        ((None,), 1, True),
        ((LATE, None), 2, True),
        ((LATE, LATE, None), 3, True),
        ((LATE, LATE, LATE, None), 4, True),
        ((LATE, LATE, LATE, LATE, None), 4, False),  # bounded: the fourth failure is returned to the caller
        (("[STREAM_FAILED] ResourceNotFoundException: stream trades", None), 1, False),  # not retried
    ],
)
def test_start_query_starts_again_only_a_query_whose_python_process_was_late(
    outcomes: tuple[str | None, ...], starts: int, running: bool
) -> None:
    from coattail_framework.resilience import Backoff
    from coattail_framework.spark import start_query

    writer = FakeWriter(*outcomes)
    pauses: list[float] = []

    query = start_query(writer, sleep=pauses.append, backoff=Backoff(initial=2, cap=8, jitter=0))  # type: ignore[arg-type]

    assert (writer.starts, query.isActive) == (starts, running)
    assert pauses == [2.0, 4.0, 8.0][: starts - 1]  # a pause before each restart, none before the first start


def _main(queries: int, mode: str) -> None:  # pragma: no cover - runs in the child process
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from coattail_framework.spark import local_session, start_query
    from coattail_kinesis.source import register

    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=endpoint)
    kinesis.create_stream(StreamName="trades", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="trades", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    for key in range(5):
        kinesis.put_record(StreamName="trades", Data=b'{"p": "1"}', PartitionKey=str(key))

    spark = local_session("coattail-query-start")
    spark.sparkContext.setLogLevel("OFF")
    register(spark)
    checkpoints = tempfile.mkdtemp(prefix="coattail-query-start-")
    starts: dict[str, int] = {}
    started = []
    for index in range(queries):
        name = f"q{index}"
        frame = (
            spark.readStream.format("coattail-kinesis")
            .options(streamName="trades", region="us-east-1", endpointUrl=endpoint, startingPosition="TRIM_HORIZON")
            .load()
        )
        writer = (
            frame.writeStream.queryName(name)
            .foreachBatch(lambda batch, batch_id: None)
            .option("checkpointLocation", f"{checkpoints}/{name}")
            .trigger(processingTime="1 second")
        )
        if mode == "start_query" or (mode == "plain-then-start_query" and index > 0):
            counted = _CountingWriter(writer)
            started.append(start_query(counted))  # type: ignore[arg-type]
            starts[name] = counted.starts
        else:
            started.append(writer.start())
            starts[name] = 1
    outcome: dict[str, str] = {}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(outcome) < len(started):
        for query in started:
            if query.name in outcome:
                continue
            if not query.isActive:
                error = query.exception()
                outcome[query.name] = f"error: {str(error).splitlines()[0][:300]}" if error else "stopped"
            elif query.lastProgress is not None:
                outcome[query.name] = "ok"
        time.sleep(0.2)
    for query in started:
        outcome.setdefault(query.name, "no batch within 180 s")
        if query.isActive:
            query.stop()
    print(json.dumps({"queries": outcome, "starts": starts}), flush=True)
    spark.stop()
    server.stop()


class _CountingWriter:
    """A ``DataStreamWriter`` that counts its starts."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer
        self.starts = 0

    def start(self) -> Any:
        self.starts += 1
        return self._writer.start()


if __name__ == "__main__":
    _main(int(sys.argv[1]), sys.argv[2])
