"""The replay of the five bundled real Binance recordings (``nox -s replay``): the stream-job stage's rate.

Runs ``coattail_stream_job.replay.pipeline.run_replay`` (what ``nox -s replay`` runs) in this
process with the shipped ``config/features.yaml``: the local stack (moto on 127.0.0.1), the
producer replaying the recordings through the local exchange simulators and the real
connectors into Kinesis, then the stream job draining the stream on local[2] (ingest and the
configured modules), then the sinks read back. Events/s of the stream-job stage = events read
by ingest / the stage's wall seconds, Spark's session and query start-up included (the goal
counts them). Two runs, same recordings: the shipped layout (detectors read ingest's commits,
ADR-041) and, as the baseline, ``streaming.detector_input: kinesis`` (every detector query
reads and parses the stream itself, as before ADR-041). Both must find the same alerts per
module and severity and write the same rows per table (``outputs_equal``); the run raises otherwise.

    python tests/bench/bench_replay.py     # prints JSON
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import FAKE_AWS, SHIPPED_CONFIG, shipped_config

DATA = Path(__file__).resolve().parents[1] / "data" / "binance" / "ws"
RECORDINGS = (
    f"binance:{DATA / 'spot_btcusdt_20240808.gz'}",
    f"binance:{DATA / 'spot_btcusdt_20240809.gz'}",
    f"binance:{DATA / 'spot_ethusdt_20240808.gz'}",
    f"binance:{DATA / 'spot_ethusdt_20240809.gz'}",
    f"binance-usdm:{DATA / 'usdm_btcusdt_20240808.gz'}",
)
"""The five real recordings of the issue's figure (55,732 trades), as ``nox -s replay`` names them."""


def replay(detector_input: str, out: Path) -> dict[str, Any]:
    """One replay with ``streaming.detector_input``; the stage seconds, rate and alerts."""
    from coattail_stream_job.replay.pipeline import StageClock, run_replay

    config = shipped_config()
    # Own stream and table names: moto's state lives as long as this process, so the second run
    # would otherwise read the first one's records too.
    config = config.model_copy(
        update={
            "streaming": config.streaming.model_copy(update={"detector_input": detector_input}),
            "kinesis": config.kinesis.model_copy(update={"stream_name": f"replay-{detector_input}"}),
            "dynamodb": config.dynamodb.model_copy(update={"table_name": f"replay-{detector_input}"}),
        }
    )
    lines: list[str] = []
    clock = StageClock(lines.append)
    outcome = run_replay(config, RECORDINGS, out, config_path=str(SHIPPED_CONFIG), progress=lines.append, clock=clock)
    summary = outcome.summary
    stages = summary["wall_seconds"]
    events = int(summary["events"]["read"])
    return {
        "detector_input": detector_input,
        "modules": list(config.active_modules),
        "events": events,
        "stream_job_seconds": stages["stream job"],
        "stream_job_events_per_s": round(events / stages["stream job"]),
        "producer_seconds": stages["producer replay"],
        "total_seconds": round(stages["total"], 1),
        "alerts_by_module": summary["alerts"]["by_module"],
        "table_rows": summary["table_rows"],
    }


def run() -> dict[str, Any]:
    """Both replays; see the module docstring."""
    os.environ.update(FAKE_AWS)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import pyspark

    with tempfile.TemporaryDirectory() as scratch:
        shipped = replay("raw_trades", Path(scratch) / "raw_trades")
        baseline = replay("kinesis", Path(scratch) / "kinesis")
    for key in ("alerts_by_module", "table_rows"):
        if shipped[key] != baseline[key]:
            raise RuntimeError(f"the two layouts wrote different {key}: {shipped[key]} vs {baseline[key]}")
    return {
        "recordings": [name.split(":", 1)[0] + ":" + Path(name.split(":", 1)[1]).name for name in RECORDINGS],
        "goal_events_per_s": 3000,
        "raw_trades": shipped,
        "kinesis": baseline,
        "outputs_equal": True,
        "pyspark": pyspark.__version__,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
