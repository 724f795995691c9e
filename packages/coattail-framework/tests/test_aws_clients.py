"""``aws_client``: a local endpoint works without AWS credentials; AWS itself keeps the default chain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def no_aws_environment(home: Path) -> dict[str, str]:
    """This environment without any ``AWS_*`` variable, and a HOME with no ``.aws`` folder."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "COATTAIL_"))}
    return environ | {"HOME": str(home)}


CHILD = """
import sys
import boto3
from coattail_framework.aws.clients import aws_client

endpoint = sys.argv[1]
assert boto3.session.Session().get_credentials() is None, "the test's environment has credentials"
kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=endpoint)
kinesis.create_stream(StreamName="no-credentials", ShardCount=1)
print(kinesis.list_streams()["StreamNames"])
aws = aws_client("kinesis", region="us-east-1")
print(aws._request_signer._credentials)
"""


def test_a_process_without_credentials_talks_to_moto_and_not_to_aws(moto_endpoint: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, moto_endpoint],
        env=no_aws_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    streams, aws_credentials = done.stdout.splitlines()
    assert "no-credentials" in streams
    assert aws_credentials == "None"  # no endpoint: nothing injected, boto3 would raise NoCredentialsError
