"""The embedded local AWS stack: moto in-process, with the project's resources created.

``start_local_stack`` starts moto's server on 127.0.0.1 (a free port) in a thread of the
calling process. It serves Kinesis, DynamoDB, S3, SSM and CloudWatch over the real AWS
wire protocol, so the same boto3 code runs here and on AWS. It creates the trade stream
(``kinesis.stream_name``, ``kinesis.shard_count``; waits until ACTIVE), the alert table
(key, indexes and TTL, ``aws.alert_table``) and the data bucket (``storage.s3_bucket``),
and returns a configuration pointing at all of it: ``aws.endpoint_url`` = the server,
the Iceberg SQLite catalog and warehouse under ``root/iceberg``, raw zone and checkpoints
under ``root``. Fake AWS credentials are put in the environment only when
``AWS_ACCESS_KEY_ID`` is not set, and removed again by ``stop()``.

Example::

    with start_local_stack(config, Path(".local-stack")) as stack:
        router = AlertRouter.from_config(stack.config)

``moto_server`` is the bare server (no resources) for a block: the test fixtures and the
API's ``serve --local`` use it.

From a shell (runs until Ctrl-C)::

    coattail-devstack localstack --root .local-stack --config config/features.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from coattail_framework.aws import alert_table
from coattail_framework.aws.clients import aws_client
from coattail_framework.config.model import CoattailConfig

HOST = "127.0.0.1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
"""Set only when the environment has no credentials; moto accepts any."""

log = logging.getLogger(__name__)


class LocalStack:
    """A running moto server and the configuration that points at it (context manager)."""

    def __init__(self, server: Any, config: CoattailConfig, endpoint_url: str, credentials_set: list[str]) -> None:
        self._server = server
        self.config = config
        self.endpoint_url = endpoint_url
        self._credentials_set = credentials_set
        self._stopped = False
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Stop the server and remove the fake credentials this stack set (idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._server.stop()
            for name in self._credentials_set:
                os.environ.pop(name, None)

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def local_config(config: CoattailConfig, root: Path, endpoint_url: str) -> CoattailConfig:
    """``config`` pointed at ``endpoint_url``, with the SQLite catalog and files under ``root``."""
    root = root.resolve()
    return config.model_copy(
        update={
            "aws": config.aws.model_copy(update={"endpoint_url": endpoint_url}),
            "iceberg": config.iceberg.model_copy(
                update={
                    "catalog_type": "sql",
                    "uri": f"sqlite:///{root / 'iceberg' / 'catalog.db'}",
                    "warehouse": str(root / "iceberg" / "warehouse"),
                }
            ),
            "storage": config.storage.model_copy(
                update={"raw_zone": str(root / "raw"), "checkpoint_root": str(root / "checkpoints")}
            ),
        }
    )


def environment_overrides(config: CoattailConfig) -> dict[str, str]:
    """``COATTAIL_*`` variables that point another process's configuration at this stack."""
    return {
        "COATTAIL_AWS__ENDPOINT_URL": str(config.aws.endpoint_url),
        "COATTAIL_ICEBERG__CATALOG_TYPE": config.iceberg.catalog_type,
        "COATTAIL_ICEBERG__URI": config.iceberg.uri,
        "COATTAIL_ICEBERG__WAREHOUSE": config.iceberg.warehouse,
        "COATTAIL_STORAGE__RAW_ZONE": config.storage.raw_zone,
        "COATTAIL_STORAGE__CHECKPOINT_ROOT": config.storage.checkpoint_root,
    }


def _set_fake_credentials() -> list[str]:
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return []
    for name, value in FAKE_CREDENTIALS.items():
        os.environ[name] = value
    return list(FAKE_CREDENTIALS)


def create_resources(config: CoattailConfig) -> None:
    """Create the stream (waits ACTIVE), the alert table and the bucket at ``aws.endpoint_url`` (idempotent)."""
    region, endpoint = config.aws.region, config.aws.endpoint_url
    kinesis = aws_client("kinesis", region=region, endpoint_url=endpoint)
    try:
        kinesis.create_stream(StreamName=config.kinesis.stream_name, ShardCount=config.kinesis.shard_count)
    except kinesis.exceptions.ResourceInUseException:
        log.info("Kinesis stream %s already exists", config.kinesis.stream_name)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=config.kinesis.stream_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    alert_table.ensure_table(aws_client("dynamodb", region=region, endpoint_url=endpoint), config.dynamodb.table_name)
    s3 = aws_client("s3", region=region, endpoint_url=endpoint)
    bucket: dict[str, Any] = {"Bucket": config.storage.s3_bucket}
    if region != "us-east-1":
        bucket["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        log.info("S3 bucket %s already exists", config.storage.s3_bucket)


def _started_moto() -> tuple[Any, str]:
    """A started moto server on 127.0.0.1 (free port), its Kinesis shards indexed, and its URL."""
    from moto.server import ThreadedMotoServer

    from coattail_devstack.moto_kinesis import index_moto_kinesis_shards

    index_moto_kinesis_shards()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=HOST, port=0)
    with contextlib.redirect_stdout(sys.stderr):  # moto announces itself on stdout, which the command keeps for exports
        server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto on 127.0.0.1 (free port) for the life of the block, no resources created; yields its URL."""
    server, endpoint_url = _started_moto()
    try:
        yield endpoint_url
    finally:
        server.stop()


def start_local_stack(config: CoattailConfig, root: Path) -> LocalStack:
    """Start moto on 127.0.0.1 (free port), create the resources, return the running stack."""
    credentials_set = _set_fake_credentials()
    server, endpoint_url = _started_moto()
    stack = LocalStack(server, local_config(config, root, endpoint_url), endpoint_url, credentials_set)
    try:
        create_resources(stack.config)
    except BaseException:
        stack.stop()
        raise
    return stack


DESCRIPTION = "Run the embedded local AWS stack (moto on 127.0.0.1) until Ctrl-C or SIGTERM."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (``--root``, ``--config``) on ``parser``."""
    parser.add_argument(
        "--root", type=Path, default=Path(".local-stack"), help="folder for catalog, raw zone, checkpoints"
    )
    parser.add_argument("--config", type=Path, default=None, help="features.yaml (default: the loader's default)")


def run(args: argparse.Namespace) -> int:
    """Start the stack from parsed ``args``, print the exports, and serve until SIGINT or SIGTERM; 0."""
    from coattail_framework.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    stopping = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopping.set())
    with start_local_stack(load_config(args.config), args.root) as stack:
        _announce(stack)
        stopping.wait()
    log.info("stopped")
    return 0


def _announce(stack: LocalStack) -> None:
    """Log what runs where; print the ``export`` lines that point other processes at it."""
    config = stack.config
    log.info("moto serving Kinesis, DynamoDB, S3, SSM and CloudWatch at %s", stack.endpoint_url)
    log.info(
        "stream %s (%d shards), table %s, bucket %s, Iceberg catalog %s",
        config.kinesis.stream_name,
        config.kinesis.shard_count,
        config.dynamodb.table_name,
        config.storage.s3_bucket,
        config.iceberg.uri,
    )
    lines = [f"export {name}={value}" for name, value in environment_overrides(config).items()]
    sys.stdout.write("\n".join(["# point clients at the stack (Ctrl-C stops it):", *lines]) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """``python -m coattail_devstack.localstack`` (as ``coattail-devstack localstack``)."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
