"""pytest plugin: ``spark`` (session-scoped local SparkSession), ``moto_endpoint``, ``aws_env``.

Enable with ``pytest_plugins = ["coattail_framework.testing.fixtures"]`` in a conftest.
Fixtures run in the pytest process (the Spark driver). The moto server binds 127.0.0.1
on a free port and speaks the real AWS wire protocol; ``aws_env`` sets fake credentials
so the default provider chain never reaches real ones.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from coattail_framework.spark import local_session

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def spark(aws_env: dict[str, str]) -> Iterator[SparkSession]:
    """One local[2] SparkSession for the whole test run (UTC; Python time zone UTC too).

    Fake AWS credentials are in the environment before Spark starts, so Python workers
    (which inherit the environment of the JVM) can reach moto through the default chain.
    """
    os.environ["TZ"] = "UTC"
    time.tzset()
    session = local_session("coattail-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def aws_env() -> Iterator[dict[str, str]]:
    """Fake AWS credentials in the environment for the whole run."""
    previous = {key: os.environ.get(key) for key in FAKE_AWS_ENV}
    os.environ.update(FAKE_AWS_ENV)
    yield dict(FAKE_AWS_ENV)
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto_endpoint(aws_env: dict[str, str]) -> Iterator[str]:
    """An in-process moto server on 127.0.0.1 (free port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
