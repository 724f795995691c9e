"""``coattail-api``: run the API's Lambda handler over HTTP on this machine.

    coattail-api serve --local                       # moto's DynamoDB in-process, table created
    coattail-api serve --local --endpoint-url http://127.0.0.1:5000   # the pipeline's local stack
    coattail-api serve --port 9000 --config config/features.yaml     # the configured table (AWS)

The table name and AWS location come from the configuration (``dynamodb.table_name``,
``aws.region``, ``aws.endpoint_url``; see ``coattail_api.settings``). ``--local`` replaces
the endpoint: the given ``--endpoint-url``, or else a moto server started in this process
on 127.0.0.1 holding an empty alert table made by ``ensure_table``. Without
``COATTAIL_API_CURSOR_KEY``/``_PARAMETER`` the process signs cursors with a random key,
valid until it exits. ``COATTAIL_API_READ_BUDGET`` applies as on Lambda. Binds 127.0.0.1
only; ``--read-timeout`` bounds how long a client may take to send one request.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

from coattail_api.app import create_handler
from coattail_api.local import DEFAULT_PORT, DEFAULT_READ_TIMEOUT_S, LOOPBACK, LocalApiServer, checked_read_timeout
from coattail_api.settings import (
    CURSOR_KEY_PARAMETER_VARIABLE,
    CURSOR_KEY_VARIABLE,
    ApiSettings,
    cors_origins,
    cursor_key,
    read_budget,
    split_environment,
)
from coattail_framework.aws import aws_client
from coattail_framework.aws.alert_table import ensure_table
from coattail_framework.config import ConfigLoader
from coattail_framework.errors import CoattailError

LOG = logging.getLogger("coattail_api.cli")


def _read_timeout(text: str) -> float:
    """``--read-timeout``: seconds, as ``checked_read_timeout`` accepts them."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    try:
        return checked_read_timeout(seconds)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coattail-api", description="Coat Tail Capital alert API")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the Lambda handler over HTTP (API Gateway v2.0 events)")
    serve.add_argument("--local", action="store_true", help="use the local stack instead of the configured AWS")
    serve.add_argument("--endpoint-url", help="with --local: the local stack's AWS endpoint (default: start moto)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"on {LOOPBACK}; 0 = any free port")
    serve.add_argument(
        "--read-timeout",
        type=_read_timeout,
        default=DEFAULT_READ_TIMEOUT_S,
        help=f"seconds a client may take to send one request (default {DEFAULT_READ_TIMEOUT_S:g}); then 408",
    )
    serve.add_argument("--config", type=Path, help="default: $COATTAIL_CONFIG, else config/features.yaml")
    return parser


@contextmanager
def _moto_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 (free port) for the life of the block (coattail-devstack); yields its URL."""
    try:
        from coattail_devstack.localstack import moto_server
    except ImportError:
        raise CoattailError(
            "serve --local without --endpoint-url needs the local stack: pip install 'coattail-api[local]'"
        ) from None
    with moto_server() as endpoint_url:
        yield endpoint_url


def serve(arguments: argparse.Namespace) -> None:
    """Load settings, prepare the local stack if asked, and serve until interrupted."""
    if arguments.endpoint_url and not arguments.local:
        raise CoattailError("--endpoint-url is only used with --local; set aws.endpoint_url in the configuration")
    shared, api = split_environment(os.environ)
    config = ConfigLoader(arguments.config, environ=shared).load()
    if api.get(CURSOR_KEY_VARIABLE) or api.get(CURSOR_KEY_PARAMETER_VARIABLE):
        key = cursor_key(api, config)
    else:
        LOG.info("no %s: cursors are signed with a random key, valid until this server stops", CURSOR_KEY_VARIABLE)
        key = secrets.token_bytes(32)
    settings = ApiSettings.from_config(
        config, cursor_key=key, cors_allow_origins=cors_origins(api), read_budget=read_budget(api)
    )

    with ExitStack() as stack:
        endpoint = settings.endpoint_url
        own_moto = arguments.local and not arguments.endpoint_url
        if arguments.local:
            endpoint = arguments.endpoint_url or stack.enter_context(_moto_endpoint())
            settings = settings.model_copy(update={"endpoint_url": endpoint})
        # A local endpoint without credentials in the environment gets moto's dummy ones (aws_client).
        client = aws_client("dynamodb", region=settings.region, endpoint_url=endpoint)
        if own_moto:
            ensure_table(client, settings.table_name)
        server = LocalApiServer(
            create_handler(settings, dynamodb_client=client),
            port=arguments.port,
            region=settings.region,
            read_timeout=arguments.read_timeout,
        )
        LOG.info(
            "serving http://%s:%d/ (table %s at %s)",
            server.host,
            server.port,
            settings.table_name,
            endpoint or f"AWS {settings.region}",
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            LOG.info("stopping")
        finally:
            server.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coattail-api`` command; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arguments = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(arguments)
    except CoattailError as error:
        LOG.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
