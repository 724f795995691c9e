"""``coattail-stream-job``: one command, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``main(args) -> int`` (the
exit code); it is imported only when its subcommand runs, so ``submit`` and
``redrive-dlq`` need no PySpark.

    coattail-stream-job run --local                # the pipeline on the embedded local stack
    coattail-stream-job run --config s3-config.yaml   # on EMR / against AWS
    coattail-stream-job reprocess --as-of-snapshot 123456789
    coattail-stream-job load-history --symbol BTCUSDT --start 2024-08-08T23:54:00Z --end 2024-08-09T00:05:00Z
    coattail-stream-job submit --archive dist/stream-job-venv.tar.gz --wait
    coattail-stream-job redrive-dlq --reason validity_json --date 2024-08-08 --dry-run
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from coattail_framework.errors import CoattailError

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("coattail_stream_job.run", "run the streaming pipeline (Kinesis -> detectors -> sinks)"),
    "reprocess": ("coattail_stream_job.reprocess", "re-run detectors over an Iceberg snapshot of raw_trades"),
    "load-history": ("coattail_stream_job.history.cli", "load a venue's trade history into the raw zone"),
    "submit": ("coattail_stream_job.submit", "upload the job and start it on EMR Serverless"),
    "redrive-dlq": ("coattail_stream_job.redrive", "put one reason's and date's dead letters back into the stream"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand's arguments."""
    parser = argparse.ArgumentParser(prog="coattail-stream-job", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module, summary) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        code: int = module.main(args)
    except CoattailError as error:
        print(f"coattail-stream-job {args.command}: {error}", file=sys.stderr)  # noqa: T201
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
