"""pytest plugin: ``spark`` (session-scoped local SparkSession), ``moto_endpoint``, ``aws_env``.

Registered through the ``pytest11`` entry point of ``coattail-devstack``, so every suite in a
venv with the test kit has these fixtures without importing them (``pytest_plugins =
["coattail_devstack.testing.fixtures"]`` in a top-level conftest still works: it is the same
plugin). Fixtures run in the pytest process (the Spark driver). PySpark is imported by the
``spark`` fixture only, so suites without Spark (connectors, the producer) load this plugin
without it. The moto server binds 127.0.0.1 on a free port and speaks the real AWS wire
protocol; ``aws_env`` sets fake credentials so the default provider chain never reaches real ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

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
    Needs PySpark (``coattail-devstack[spark]``).
    """
    from coattail_framework.spark import local_session

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
    from coattail_devstack.localstack import moto_server

    with moto_server() as endpoint_url:
        yield endpoint_url
