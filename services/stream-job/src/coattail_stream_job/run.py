"""``coattail-stream-job run``: the streaming pipeline, Kinesis -> data quality -> detectors -> sinks.

    coattail-stream-job run --config config/features.yaml          # on EMR / against AWS
    coattail-stream-job run --local [--root .local-stack] [--drain]  # on this machine

Runs on the Spark driver. Loads the configuration (``--config``, else ``$COATTAIL_CONFIG``,
else ``config/features.yaml``, then SSM and ``COATTAIL_*`` overrides), discovers the
detector plugins from their entry points and runs ``PipelineRunner``: the ingest query
(``raw_trades`` and the dead-letter path) and one query per active detector (module
tables, DynamoDB and the Iceberg ``alerts`` table).

Without ``--local`` the job uses the cluster's SparkSession (EMR provides Spark) and AWS
as configured (an endpoint override only when ``aws.endpoint_url`` is set). With
``--local`` it first starts the embedded local stack (moto on 127.0.0.1, the stream, the
alert table and the bucket; SQLite Iceberg catalog, raw zone and checkpoints under
``--root``) and logs the ``COATTAIL_*`` variables that point a producer at it; then a
local[2] SparkSession. The stack comes first: Spark's Python workers inherit the
environment, including the stack's fake credentials, when the session starts.

``--local`` needs the ``local`` extra (``pip install 'coattail-stream-job[local]'``: the local
stack of coattail-devstack and PySpark); without it the command stops with that line. No AWS credentials are
needed: clients of a local endpoint sign with dummy ones (``coattail_framework.aws.clients``).

``--drain`` processes what the stream holds and stops. Otherwise the job runs until
SIGTERM or SIGINT, which stop every query after its current micro-batch. Either way the
totals (``PipelineStats.snapshot()``: input rows, quality counts, late rows, rows per
table, alerts per module/severity, dead letters) are printed to stdout as JSON.

Exit codes: 0 done (also after a graceful stop), 1 a streaming query failed, 2 bad
configuration or plugins.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig
    from coattail_framework.detector import BaseDetector

LOG = logging.getLogger(__name__)

DEFAULT_LOCAL_ROOT = Path(".local-stack")
APP_NAME = "coattail-stream-job"
EXIT_QUERY_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` arguments."""
    parser.add_argument("--config", help="configuration file (default $COATTAIL_CONFIG, else config/features.yaml)")
    parser.add_argument("--local", action="store_true", help="start the embedded local stack and a local[2] Spark")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help=f"with --local: folder for the Iceberg catalog, raw zone and checkpoints (default {DEFAULT_LOCAL_ROOT})",
    )
    parser.add_argument("--drain", action="store_true", help="process what the stream holds, then stop")


def main(args: argparse.Namespace) -> int:
    """Run the pipeline; print its totals as JSON; return the exit code (see the module docstring)."""
    from coattail_framework.config import ConfigLoader
    from coattail_framework.errors import ConfigError
    from coattail_framework.registry import ModuleRegistry
    from coattail_stream_job.local_extra import require_local_extra

    if args.root is not None and not args.local:
        raise ConfigError("--root only applies with --local (the folder of the embedded local stack)")
    if args.local:
        require_local_extra("run --local", spark=True)
    config = ConfigLoader(args.config).load()
    # Plugins and module settings are checked before anything starts: a bad value fails in a second.
    detectors = ModuleRegistry().discover().get_active_detectors(config)
    LOG.info("active modules: %s", ", ".join(d.module_name for d in detectors) or "none")
    if not args.local:
        return _run(config, detectors, drain=args.drain, local=False)

    from coattail_devstack.localstack import environment_overrides, start_local_stack

    root = args.root or DEFAULT_LOCAL_ROOT
    with start_local_stack(config, root) as stack:
        LOG.info("local stack: moto at %s, files under %s", stack.endpoint_url, root.resolve())
        LOG.info(
            "point a producer at it with: %s",
            " ".join(f"{name}={value}" for name, value in environment_overrides(stack.config).items()),
        )
        return _run(stack.config, detectors, drain=args.drain, local=True)


def _run(config: CoattailConfig, detectors: Sequence[BaseDetector[Any]], *, drain: bool, local: bool) -> int:
    from coattail_framework.pipeline import PipelineRunner
    from coattail_stream_job.session import job_session

    # The runner installs SIGTERM/SIGINT handlers; they are restored afterwards for in-process callers.
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    with job_session(APP_NAME, local=local) as spark:
        runner = PipelineRunner(spark, config, detectors=detectors)
        try:
            runner.run(drain=drain)
        except RuntimeError as failure:
            print(f"coattail-stream-job run: {failure}", file=sys.stderr)  # noqa: T201 - the command's error
            return EXIT_QUERY_FAILED
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            _print_summary(runner.stats.snapshot())
    return 0


def _print_summary(snapshot: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(snapshot, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()
