"""``python -m coattail_stream_job.replay replay | demo`` (what ``nox -s replay`` / ``nox -s demo`` run).

    python -m coattail_stream_job.replay replay binance:tests/data/binance/ws/spot_btcusdt_20240808.gz --out out/
    python -m coattail_stream_job.replay demo --out demo-out/

Stage lines go to stdout as the run progresses. ``--time-limit SECONDS`` (default 900)
bounds the whole run: when it passes, the running stage is stopped (producer tasks
cancelled, Spark queries stopped after their batch) and the command exits 3 naming it.
Exit codes: 0 done, 2 configuration or replay error (the message names the file or key
and how to fix it), 3 the time limit passed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from coattail_framework.config import load_config
from coattail_framework.errors import CoattailError
from coattail_stream_job.arguments import positive_seconds

DEFAULT_DEMO_CONFIG = Path("config/demo.yaml")
DEFAULT_TIME_LIMIT_SECONDS = 900.0
"""The whole run's limit (``--time-limit``): 15 minutes, several times a demo's wall time on 2 cores."""
EXIT_REPLAY_ERROR = 2
EXIT_TIME_LIMIT = 3


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = argparse.ArgumentParser(prog="python -m coattail_stream_job.replay", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING", help="logging level of the libraries (default WARNING)")
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="replay recordings through the whole pipeline")
    replay.add_argument(
        "recordings", nargs="+", help="recording files (gzip or plain); prefix binance:, coinbase:, binance-usdm:"
    )
    replay.add_argument(
        "--out", type=Path, required=True, help="output folder (alerts.jsonl, summary.json, tables/*.parquet, iceberg/)"
    )
    replay.add_argument("--config", type=Path, default=None, help="features.yaml (default: config/features.yaml)")
    demo = commands.add_parser("demo", help="replay the bundled recordings, print a summary, write report.html")
    demo.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (default demo-out/)")
    demo.add_argument("--config", type=Path, default=DEFAULT_DEMO_CONFIG, help="default config/demo.yaml")
    demo.add_argument("--data", type=Path, default=Path("tests/data"), help="bundled recordings (default tests/data)")
    for command in (replay, demo):
        command.add_argument(
            "--time-limit",
            type=positive_seconds,
            default=DEFAULT_TIME_LIMIT_SECONDS,
            metavar="SECONDS",
            help=f"stop, exit {EXIT_TIME_LIMIT} if the whole run takes longer (default {DEFAULT_TIME_LIMIT_SECONDS:g})",
        )
    return parser


def _prepare(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ["TZ"] = "UTC"
    time.tzset()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit code."""
    args = build_parser().parse_args(argv)
    _prepare(args.log_level)
    from coattail_stream_job.replay import pipeline

    def progress(line: str) -> None:
        print(line, flush=True)  # noqa: T201 - the command's output

    clock = pipeline.StageClock(progress, limit_seconds=args.time_limit)
    try:
        config = load_config(args.config)
        source = str(args.config or "config/features.yaml")
        if args.command == "replay":
            pipeline.run_replay(config, args.recordings, args.out, config_path=source, progress=progress, clock=clock)
        else:
            pipeline.run_demo(config, args.data, args.out, config_path=source, progress=progress, clock=clock)
    except CoattailError as error:
        print(f"coattail replay {args.command}: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_TIME_LIMIT if isinstance(error, pipeline.TimeLimitError) else EXIT_REPLAY_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
