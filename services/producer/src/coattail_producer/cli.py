"""``coattail-producer``: live mode (default) and ``replay``.

    coattail-producer [--config config/features.yaml] [run] [--health-port 8080]
    coattail-producer replay [--exchange binance] [--retime] [--speed 10] FILE [FILE...]

Live mode runs every enabled venue's connector until SIGTERM or SIGINT, then stops the
connectors, flushes the buffer and exits. Replay exits once every recording has been
served and published and prints its summary as JSON on stdout.

Exit codes: 0 clean (nothing dropped; replay: every frame served and every event
published); 1 the run finished but dropped or missed something (reported in the log
and, for replay, the summary); 2 configuration or usage error (the message says which
key or argument and how to fix it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from coattail_framework.aws.clients import aws_client
from coattail_framework.config.loader import ConfigLoader
from coattail_framework.config.model import CoattailConfig
from coattail_framework.errors import CoattailError
from coattail_producer.replay import replay
from coattail_producer.runner import Producer, build_connectors, connector_registry
from coattail_producer.settings import DEFAULT_SHUTDOWN_DEADLINE_SECONDS, ProducerSettings, PublisherSettings

LOG = logging.getLogger("coattail_producer")

EXIT_OK, EXIT_INCOMPLETE, EXIT_CONFIG = 0, 1, 2
REPLAY_FLUSH_DEADLINE_SECONDS = 30.0
"""``replay``'s default ``--shutdown-deadline``: a batch command, not stopped by an orchestrator,
so its final flush may take longer than the live default."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="features.yaml (default: $COATTAIL_CONFIG, else config/features.yaml)")
    common.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    common.add_argument("--linger-ms", type=float, default=50.0, help="max wait for a batch to fill (ms)")
    common.add_argument("--buffer-records", type=int, default=20_000, help="buffered records before connectors wait")
    common.add_argument("--metrics-interval", type=float, default=60.0, help="seconds between CloudWatch pushes")

    parser = argparse.ArgumentParser(
        prog="coattail-producer",
        description="Run the configured exchange connectors and publish their trades to Kinesis "
        "(`run`, the default) or replay recordings through the exchange simulators (`replay`).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common], help="live mode (the default)")
    run.add_argument("--health-host", default="127.0.0.1", help="interface of /healthz and /metrics")
    run.add_argument("--health-port", type=int, default=8080, help="port of /healthz and /metrics (0 = any)")
    run.add_argument("--health-interval", type=float, default=5.0, help="seconds between health checks")
    run.add_argument(
        "--shutdown-deadline",
        type=float,
        default=DEFAULT_SHUTDOWN_DEADLINE_SECONDS,
        help="seconds to stop and flush on SIGTERM (default: %(default)s, under docker stop's 10 s grace; "
        "raise it only with docker run --stop-timeout above it)",
    )
    rep = commands.add_parser("replay", parents=[common], help="serve recordings through the simulators")
    rep.add_argument("files", nargs="+", metavar="FILE", help="recording; prefix with the exchange: binance:FILE")
    rep.add_argument("--exchange", help="venue or connector of every untagged FILE (default: detected)")
    rep.add_argument("--retime", action="store_true", help="shift recorded times to now, keeping the gaps")
    rep.add_argument("--speed", type=float, help="pace by recorded receive times, X times real time")
    rep.add_argument("--drain-timeout", type=float, default=600.0, help="seconds allowed to serve every frame")
    rep.add_argument(
        "--shutdown-deadline",
        type=float,
        default=REPLAY_FLUSH_DEADLINE_SECONDS,
        help="seconds allowed for the final flush (default: %(default)s)",
    )
    rep.set_defaults(health_host="127.0.0.1", health_port=0, health_interval=5.0)
    return parser


def _settings(args: argparse.Namespace) -> ProducerSettings:
    return ProducerSettings(
        publisher=PublisherSettings(linger_seconds=args.linger_ms / 1000, buffer_records=args.buffer_records),
        health_host=args.health_host,
        health_port=args.health_port,
        health_interval_seconds=args.health_interval,
        metrics_interval_seconds=args.metrics_interval,
        shutdown_deadline_seconds=args.shutdown_deadline,
    )


def _clients(config: CoattailConfig) -> tuple[Any, Any | None]:
    kinesis = aws_client("kinesis", region=config.aws.region, endpoint_url=config.aws.endpoint_url)
    cloudwatch = (
        aws_client("cloudwatch", region=config.aws.region, endpoint_url=config.aws.endpoint_url)
        if config.metrics.enabled
        else None
    )
    return kinesis, cloudwatch


def _check_stream(kinesis: Any, config: CoattailConfig) -> None:
    """Fail fast, naming the key, when the configured stream does not exist."""
    try:
        kinesis.describe_stream_summary(StreamName=config.kinesis.stream_name)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise CoattailError(
                f"{config.source_of(('kinesis', 'stream_name'))}: kinesis.stream_name {config.kinesis.stream_name!r} "
                f"does not exist in {config.aws.region} (endpoint {config.aws.endpoint_url or 'AWS'}); "
                "create it or point kinesis.stream_name / aws.endpoint_url at an existing one"
            ) from None
        raise


async def _run_live(config: CoattailConfig, settings: ProducerSettings) -> int:
    kinesis, cloudwatch = _clients(config)
    await asyncio.to_thread(_check_stream, kinesis, config)
    connectors = build_connectors(config, connector_registry())
    producer = Producer(config, connectors, kinesis_client=kinesis, cloudwatch_client=cloudwatch, settings=settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    result = await producer.run(stop)
    return EXIT_OK if result.clean else EXIT_INCOMPLETE


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    LOG.info("producer: %s received; stopping", signal.Signals(signum).name)
    stop.set()


async def _run_replay(config: CoattailConfig, settings: ProducerSettings, args: argparse.Namespace) -> int:
    kinesis, cloudwatch = _clients(config)
    await asyncio.to_thread(_check_stream, kinesis, config)
    stats = await replay(
        config,
        args.files,
        exchange=args.exchange,
        retime=args.retime,
        speed=args.speed,
        settings=settings,
        kinesis_client=kinesis,
        cloudwatch_client=cloudwatch,
        drain_timeout=args.drain_timeout,
    )
    sys.stdout.write(json.dumps(stats.as_dict(), indent=2) + "\n")
    return EXIT_OK if stats.clean else EXIT_INCOMPLETE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coattail-producer`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not {"run", "replay", "-h", "--help"} & set(arguments):
        arguments.insert(0, "run")
    args = _parser().parse_args(arguments)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        settings = _settings(args)
        config = ConfigLoader(args.config).load()
        if args.command == "replay":
            return asyncio.run(_run_replay(config, settings, args))
        return asyncio.run(_run_live(config, settings))
    except (CoattailError, ValidationError) as error:
        LOG.error("%s", error)
        return EXIT_CONFIG
    except (BotoCoreError, ClientError) as error:
        LOG.error("AWS: %s (check aws.region, aws.endpoint_url and the credentials in the environment)", error)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
