"""Fixtures of the sink tests: a configuration on the shared moto server with its own table and catalog.

``spark``, ``aws_env`` and ``moto_endpoint`` come from ``coattail_devstack.testing.fixtures``,
the test kit's pytest plugin (loaded through its ``pytest11`` entry point).
The fake credentials go into the environment at import, before the shared SparkSession
starts, because its Python workers (which write to DynamoDB) inherit the environment of
that moment.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from coattail_devstack.testing.fixtures import FAKE_AWS_ENV
from coattail_framework.aws import alert_table
from coattail_framework.aws.clients import aws_client
from coattail_framework.config.model import (
    AwsConfig,
    CoattailConfig,
    DynamoDBConfig,
    IcebergConfig,
    StorageConfig,
)

os.environ.update(FAKE_AWS_ENV)


@pytest.fixture
def sink_config(tmp_path: Path, moto_endpoint: str) -> CoattailConfig:
    """Config on moto with a fresh DynamoDB alert table and a fresh SQLite catalog under ``tmp_path``."""
    config = CoattailConfig(
        aws=AwsConfig(endpoint_url=moto_endpoint),
        dynamodb=DynamoDBConfig(table_name=f"alerts-{uuid.uuid4().hex[:8]}", ttl_days=30),
        iceberg=IcebergConfig(uri=f"sqlite:///{tmp_path}/iceberg/catalog.db", warehouse=str(tmp_path / "warehouse")),
        storage=StorageConfig(raw_zone=str(tmp_path / "raw"), checkpoint_root=str(tmp_path / "checkpoints")),
    )
    alert_table.ensure_table(dynamodb_client(config), config.dynamodb.table_name)
    return config


@pytest.fixture
def stored_alerts(sink_config: CoattailConfig) -> Callable[[], dict[str, dict[str, Any]]]:
    """Reads every item of the test's alert table, deserialized, keyed by ``alert_id``."""
    client = dynamodb_client(sink_config)
    deserializer = TypeDeserializer()

    def read() -> dict[str, dict[str, Any]]:
        items = client.scan(TableName=sink_config.dynamodb.table_name, ConsistentRead=True)["Items"]
        plain = [{name: deserializer.deserialize(value) for name, value in item.items()} for item in items]
        return {item["alert_id"]: item for item in plain}

    return read


def dynamodb_client(config: CoattailConfig) -> Any:
    """A driver-side DynamoDB client of ``config``."""
    return aws_client("dynamodb", region=config.aws.region, endpoint_url=config.aws.endpoint_url)
