"""The embedded local AWS stack: moto on 127.0.0.1 with the stream, table and bucket created."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from coattail_devstack.localstack import FAKE_CREDENTIALS, start_local_stack
from coattail_devstack.testing.commands import console_script, running, stop
from coattail_framework.aws.clients import aws_client
from coattail_framework.config.model import CoattailConfig, DynamoDBConfig, KinesisConfig, StorageConfig

DEVSTACK = console_script("coattail-devstack")


def test_stack_creates_resources_and_points_config_at_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FAKE_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    given = CoattailConfig(
        kinesis=KinesisConfig(stream_name="trades-test", shard_count=2),
        dynamodb=DynamoDBConfig(table_name="alerts-test"),
        storage=StorageConfig(s3_bucket="coattail-test-data"),
    )

    with start_local_stack(given, tmp_path) as stack:
        assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
        config = stack.config
        endpoint = urlparse(stack.endpoint_url)
        assert (endpoint.scheme, endpoint.hostname) == ("http", "127.0.0.1")
        assert endpoint.port is not None
        assert config.aws.endpoint_url == stack.endpoint_url
        root = tmp_path.resolve()
        assert (config.iceberg.catalog_type, config.iceberg.uri, config.iceberg.warehouse) == (
            "sql",
            f"sqlite:///{root}/iceberg/catalog.db",
            f"{root}/iceberg/warehouse",
        )
        assert (config.storage.raw_zone, config.storage.checkpoint_root) == (f"{root}/raw", f"{root}/checkpoints")
        assert config.model_dump(exclude={"aws", "iceberg", "storage"}) == given.model_dump(
            exclude={"aws", "iceberg", "storage"}
        )
        assert config.storage.s3_bucket == "coattail-test-data"

        clients = {
            service: aws_client(service, region=config.aws.region, endpoint_url=stack.endpoint_url)
            for service in ("kinesis", "dynamodb", "s3", "ssm", "cloudwatch")
        }
        stream = clients["kinesis"].describe_stream_summary(StreamName="trades-test")["StreamDescriptionSummary"]
        assert (stream["StreamStatus"], stream["OpenShardCount"]) == ("ACTIVE", 2)
        table = clients["dynamodb"].describe_table(TableName="alerts-test")["Table"]
        assert table["KeySchema"] == [{"AttributeName": "alert_id", "KeyType": "HASH"}]
        assert {index["IndexName"]: index["KeySchema"] for index in table["GlobalSecondaryIndexes"]} == {
            name: [
                {"AttributeName": key, "KeyType": "HASH"},
                {"AttributeName": "detected_at", "KeyType": "RANGE"},
            ]
            for name, key in (("by_symbol", "symbol"), ("by_type", "alert_type"), ("by_module", "module_id"))
        }
        ttl = clients["dynamodb"].describe_time_to_live(TableName="alerts-test")["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl_epoch")
        # moto's state is shared by every server in this process: other tests' buckets may be listed too.
        assert "coattail-test-data" in [b["Name"] for b in clients["s3"].list_buckets()["Buckets"]]
        clients["ssm"].put_parameter(Name="/coattail/feature_tier", Value="medium", Type="String")
        assert clients["ssm"].get_parameter(Name="/coattail/feature_tier")["Parameter"]["Value"] == "medium"
        namespace = "CoatTailLocalStackTest"
        clients["cloudwatch"].put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "alerts", "Value": 1}])
        assert [m["MetricName"] for m in clients["cloudwatch"].list_metrics(Namespace=namespace)["Metrics"]] == [
            "alerts"
        ]

    stack.stop()
    assert "AWS_ACCESS_KEY_ID" not in os.environ


@pytest.mark.parametrize(
    ("command", "number"),
    [
        ([str(DEVSTACK), "localstack"], signal.SIGINT),
        ([str(DEVSTACK), "localstack"], signal.SIGTERM),
        ([sys.executable, "-m", "coattail_devstack.localstack"], signal.SIGINT),
    ],
    ids=["command-ctrl-c", "command-sigterm", "module-ctrl-c"],
)
def test_command_prints_the_endpoint_and_stops_on_a_signal(
    tmp_path: Path, command: list[str], number: signal.Signals
) -> None:
    features = tmp_path / "features.yaml"
    features.write_text("kinesis: {stream_name: cli-trades, shard_count: 1}\n")
    command = [*command, "--root", str(tmp_path), "--config", str(features)]
    with running(command) as process:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(7)]
        code, errors = stop(process, number)
    assert code == 0, errors
    exports = dict(line.removeprefix("export ").strip().split("=", 1) for line in lines[1:])
    assert urlparse(exports["COATTAIL_AWS__ENDPOINT_URL"]).hostname == "127.0.0.1"
    assert exports["COATTAIL_ICEBERG__URI"] == f"sqlite:///{tmp_path.resolve()}/iceberg/catalog.db"
    assert exports["COATTAIL_STORAGE__CHECKPOINT_ROOT"] == f"{tmp_path.resolve()}/checkpoints"
