"""``python -m coattail_stream_job.replay --time-limit``: a run past its limit stops and names the stage.

The clock is injected (``StageClock(clock=...)``); no test sleeps. The producer-stage test
runs the real local stack and producer replay without Spark; the stream-job stage is
driven with stand-in queries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coattail_framework.config import load_config
from coattail_framework.pipeline.completeness import DrainTimeLimitError
from coattail_stream_job.replay import __main__ as cli
from coattail_stream_job.replay.pipeline import (
    StageClock,
    TimeLimitError,
    drain_replayed,
    run_replay,
)

ROOT = Path(__file__).resolve().parents[3]
RECORDING = f"binance:{ROOT / 'tests/data/binance/ws/spot_btcusdt_20240808.gz'}"


class SteppingClock:
    """A clock that stands still until ``start()``, then moves ``step`` seconds per reading."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = 0.0
        self._step = step

    def start(self) -> None:
        self.step = self._step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_replay_past_its_limit_stops_the_producer_and_names_its_stage(tmp_path: Path) -> None:
    clock = SteppingClock(step=1.0)
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.endswith("through the simulators and connectors"):
            clock.start()  # from the producer replay on, every reading of the clock is a second later

    stages = StageClock(progress, limit_seconds=5, clock=clock)
    config = load_config(ROOT / "config/features.yaml")
    # moto keeps its state per process: the events published before the stop go to a stream of this test's own,
    # so that a later replay in this process drains only its own records.
    config = config.model_copy(
        update={"kinesis": config.kinesis.model_copy(update={"stream_name": "trades-replay-time-limit"})}
    )
    with pytest.raises(TimeLimitError, match=r"time limit of 5 s passed during stage 'producer replay'"):
        run_replay(config, [RECORDING], tmp_path, progress=progress, clock=stages)
    assert not any("published" in line for line in lines)
    assert not (tmp_path / "summary.json").exists()


def test_the_command_exits_3_naming_the_stage_when_the_limit_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["replay", RECORDING, "--out", str(tmp_path), "--time-limit", "0.000001"]
    argv += ["--config", str(ROOT / "config/features.yaml")]
    assert cli.main(argv) == cli.EXIT_TIME_LIMIT
    error = capsys.readouterr().err
    assert "coattail replay replay: time limit of 1e-06 s passed during stage 'local stack'" in error
    assert "Raise --time-limit" in error


def test_the_time_limit_defaults_to_15_minutes_and_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.build_parser().parse_args(["demo"]).time_limit == 900.0
    assert cli.build_parser().parse_args(["replay", RECORDING, "--out", "o", "--time-limit", "30"]).time_limit == 30.0
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["demo", "--time-limit", "0"])
    assert "must be a positive number of seconds, got '0'" in capsys.readouterr().err


class _StuckRunner:
    """A runner whose drain reaches its time limit with two queries that read 10 of the published events."""

    def __init__(self) -> None:
        self.time_limit_seconds: float | None = None

    def run(self, *, drain: bool, handle_signals: bool, time_limit_seconds: float | None) -> None:
        assert drain
        assert not handle_signals
        self.time_limit_seconds = time_limit_seconds
        raise DrainTimeLimitError(
            "drain of coattail-trades did not finish in time",
            pending=["detector-whale"],
            rows_read={"ingest": 10, "detector-whale": 10},
        )


def test_a_stream_job_that_does_not_drain_in_time_is_stopped_and_named() -> None:
    clock = SteppingClock(step=1.0)
    stages = StageClock(lambda _: None, limit_seconds=30, clock=clock)
    stages.stage("stream job")
    clock.start()
    runner: Any = _StuckRunner()
    with pytest.raises(TimeLimitError) as failure:
        drain_replayed(runner, 500, stages)
    assert "during stage 'stream job'" in str(failure.value)
    assert "detector-whale still running" in str(failure.value)
    assert "queries had read {'ingest': 10, 'detector-whale': 10} of 500 published event(s)" in str(failure.value)
    assert runner.time_limit_seconds == 29.0  # the stage clock's remaining time: the runner stops its queries
