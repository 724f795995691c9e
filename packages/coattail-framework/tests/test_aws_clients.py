"""``aws_client``: a local endpoint works without AWS credentials; AWS itself keeps the default chain."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from coattail_devstack.testing.environment import without_aws_credentials
from coattail_framework.aws.clients import LOCAL_CREDENTIALS, aws_client, is_local_endpoint


class RecordingSession:
    """A stand-in for ``boto3.session.Session`` whose chain finds ``credentials``; records ``client`` calls."""

    def __init__(self, credentials: object | None) -> None:
        self.credentials = credentials
        self.calls: list[dict[str, Any]] = []

    def get_credentials(self) -> object | None:
        return self.credentials

    def client(self, service: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append({"service": service, **kwargs})
        return self.calls[-1]


def credentials_passed(client: dict[str, Any]) -> dict[str, str]:
    return {name: client[name] for name in ("aws_access_key_id", "aws_secret_access_key") if name in client}


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:5000", "http://localhost:4566", "http://[::1]:5000", "http://127.0.0.2:80"]
)
def test_a_local_endpoint_gets_dummy_credentials_when_the_chain_has_none(endpoint: str) -> None:
    client = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint, session=RecordingSession(None))

    assert credentials_passed(client) == LOCAL_CREDENTIALS


@pytest.mark.parametrize(
    "endpoint", [None, "https://vpce-0abc.kinesis.us-east-1.vpce.amazonaws.com", "http://moto:5000"]
)
def test_without_a_local_endpoint_the_default_chain_alone_decides(endpoint: str | None) -> None:
    session = RecordingSession(None)

    client = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint, session=session)

    assert credentials_passed(client) == {}
    assert client["endpoint_url"] == endpoint


def test_credentials_the_chain_finds_are_used_against_a_local_endpoint_too() -> None:
    client = aws_client(
        "dynamodb", region="us-east-1", endpoint_url="http://127.0.0.1:5000", session=RecordingSession(object())
    )

    assert credentials_passed(client) == {}


def test_credentials_given_by_the_caller_are_kept() -> None:
    given = {"aws_access_key_id": "mine", "aws_secret_access_key": "secret"}

    client = aws_client(
        "s3", region="us-east-1", endpoint_url="http://127.0.0.1:5000", session=RecordingSession(None), **given
    )

    assert credentials_passed(client) == given


def test_is_local_endpoint_knows_loopback_only() -> None:
    assert [
        is_local_endpoint(url) for url in ("http://127.0.0.1:1", "https://localhost", "http://10.0.0.1:5000", "")
    ] == [
        True,
        True,
        False,
        False,
    ]


def no_aws_environment(home: Path, metadata_service: str) -> dict[str, str]:
    """No AWS credentials; the EC2 metadata service on, at ``metadata_service`` (a counting stand-in on loopback)."""
    return without_aws_credentials(
        home, AWS_EC2_METADATA_DISABLED="false", AWS_EC2_METADATA_SERVICE_ENDPOINT=metadata_service
    )


class CountingMetadataService(http.server.BaseHTTPRequestHandler):
    """An EC2 metadata service that knows nothing (404) and counts the requests it gets."""

    requests: ClassVar[list[str]] = []

    def _answer(self) -> None:
        CountingMetadataService.requests.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = _answer  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def metadata_service() -> Iterator[str]:
    CountingMetadataService.requests.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingMetadataService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


LOCAL_CHILD = """
import sys
from coattail_framework.aws.clients import aws_client

kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=sys.argv[1])
kinesis.create_stream(StreamName="no-credentials", ShardCount=1)
print(kinesis.describe_stream_summary(StreamName="no-credentials")["StreamDescriptionSummary"]["StreamName"])
"""

AWS_CHILD = """
import boto3
import botocore.exceptions
from coattail_framework.aws.clients import aws_client

assert boto3.session.Session().get_credentials() is None, "the test's environment has credentials"
try:
    aws_client("kinesis", region="us-east-1").list_streams()  # signed before sent: nothing leaves the process
except botocore.exceptions.NoCredentialsError as error:
    print(type(error).__name__)
"""


def test_a_process_without_credentials_talks_to_moto_and_asks_no_metadata_service(
    moto_endpoint: str, metadata_service: str, tmp_path: Path
) -> None:
    def child(code: str, *arguments: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, *arguments],
            env=no_aws_environment(tmp_path, metadata_service),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert child(LOCAL_CHILD, moto_endpoint) == "no-credentials"
    assert CountingMetadataService.requests == []  # the local chain asked no metadata service

    assert child(AWS_CHILD) == "NoCredentialsError"  # no endpoint: nothing injected
    assert CountingMetadataService.requests  # the default chain for AWS did ask it (the stand-in is reached)
