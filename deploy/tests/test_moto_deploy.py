"""The synthesized stack deployed into moto's CloudFormation, then a small replay through what it created.

Runs in the pytest process: the CDK app is synthesized here (``CoatTail-test``, no Lambda
bundling), the resource types moto's CloudFormation can create are kept (``MOTO_TYPES``;
whatever needs a dropped resource is dropped with it), and the stack is created in the
session's moto server on 127.0.0.1 (``moto_endpoint``). The replay then runs on the names
the stack published as outputs and on the configuration overrides it wrote to SSM: the
producer replays 30 s of the bundled Binance BTCUSDT recording (567 trades, the slice and
whale orders of ``services/stream-job/tests/test_run.py``) through the simulator and the
connector into the stack's stream; the stream job drains it into the stack's alert table
and an Iceberg warehouse in the stack's bucket (Glue catalog, moto's Glue).

What moto 5.2.6 does not give this test, so it is not asserted here (``test_synth.py``
asserts it on the template):

- no EMR Serverless, Glue database, CloudWatch alarm, bucket policy, secret or topic policy
  in its CloudFormation: the EMR application and the stream job's role (its trust policy
  names the application) are dropped, so ``read_stack`` lacks ``EmrApplicationId`` and
  ``StreamJobRoleArn``; the job creates the Glue database on its first write;
- its CloudFormation ignores the stream's ``StreamEncryption``, the table's
  ``TimeToLiveSpecification`` and ``PointInTimeRecoverySpecification`` (and reads
  ``SSESpecification`` under the API's key ``Enabled``, not CloudFormation's ``SSEEnabled``),
  and the bucket's ``PublicAccessBlockConfiguration``: each is asserted only when moto reports it;
- ``DescribeKey`` fails on a key its CloudFormation created (the key policy is kept as a dict):
  the key's ARN comes from ``ListKeys``;
- Spark writes checkpoints and dead letters through Hadoop's file system, which has no
  ``s3a`` here (no hadoop-aws jar, no Maven): those two stay in a local folder, overriding
  the stack's ``storage/checkpoint_root`` and ``storage/raw_zone`` parameters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import boto3
import pytest
from aws_cdk import App

from coattail_connector_binance.normalize import normalize_message
from coattail_deploy.app import build, cdk_json_context
from coattail_deploy.data import config_overrides
from coattail_framework.alerts import make_alert_id
from coattail_framework.aws import deployment
from coattail_framework.aws.alert_table import INDEXES
from coattail_framework.config import ConfigLoader
from coattail_framework.config.model import CoattailConfig
from coattail_framework.events import TradeEvent
from coattail_framework.metrics import QUERY_FAILURES_METRIC
from coattail_framework.pipeline import PipelineRunner
from coattail_framework.recordings import read_recording
from coattail_producer.replay import replay
from coattail_stream_job.replay.pipeline import StageClock, drain_replayed, read_alert_items, read_tables, replay_config

LOG = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
FEATURES = REPO_ROOT / "config" / "features.yaml"
RECORDING = REPO_ROOT / "tests" / "data" / "binance" / "ws" / "spot_btcusdt_20240808.gz"
SLICE = (datetime(2024, 8, 8, 23, 57, 10, tzinfo=UTC), datetime(2024, 8, 8, 23, 57, 40, tzinfo=UTC))
"""Trade times replayed: 567 trades, four whale orders (``services/stream-job/tests/test_run.py``)."""
STACK_NAME = "CoatTail-test"
CONTEXT = {"coattail": {"environment": "test", "retain_data": False}, "aws:cdk:bundling-stacks": []}
"""A test environment (its own stack name, nothing retained); no Lambda bundling (the API is not deployed)."""
PRODUCER_LIMIT_S = 60.0
"""The producer replay's bound: every frame served and published (a few seconds here)."""
DRAIN_LIMIT_S = 150.0
"""The stream job's bound: every query has read the 567 records and closed its final watermark."""
NOT_IN_MOTO = "not deployed: moto has no EMR Serverless"

MOTO_TYPES: Final = frozenset(
    {
        "AWS::KMS::Key",
        "AWS::KMS::Alias",
        "AWS::Kinesis::Stream",
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::SSM::Parameter",
        "AWS::SNS::Topic",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Dashboard",
    }
)
"""The stack's resource types moto's CloudFormation creates (moto 5.2.6, ``moto.cloudformation.parsing``).

Its CloudFormation has no AWS::Glue::Database, AWS::CloudWatch::Alarm, AWS::S3::BucketPolicy,
AWS::SNS::TopicPolicy, AWS::SecretsManager::Secret or AWS::EMRServerless::Application; the
VPC, ECS, Lambda and API Gateway resources are left out as well: nothing here runs on them.
"""

_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)[.}]")
"""``${LogicalId}`` or ``${LogicalId.Attribute}`` in an ``Fn::Sub`` string."""


def references(node: Any) -> set[str]:
    """Every name ``node`` refers to with ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub`` (logical ids and pseudo parameters)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
                found |= set(_SUB_REFERENCE.findall(text)) - set(variables)
                found |= references(variables)
            else:
                found |= references(value)
    return found


def for_moto(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``template`` with the ``MOTO_TYPES`` resources only, and the dropped resources' types by logical id.

    A kept resource whose properties refer to a dropped one is dropped too (repeated until
    none does), as is every output that refers to one; a ``DependsOn`` on a dropped resource
    is removed (it only ordered the creation). The parameters and rules go: they check the
    CDK bootstrap version, which moto has not.
    """
    resources: dict[str, Any] = template["Resources"]
    kept = {name for name, resource in resources.items() if resource["Type"] in MOTO_TYPES}
    while needing := {
        name for name in kept if references(resources[name].get("Properties", {})) & (resources.keys() - kept)
    }:
        kept -= needing
    dropped = {name: resources[name]["Type"] for name in resources.keys() - kept}

    def without_dropped_dependencies(resource: dict[str, Any]) -> dict[str, Any]:
        depends = resource.get("DependsOn", [])
        remaining = [name for name in ([depends] if isinstance(depends, str) else depends) if name in kept]
        pruned = {key: value for key, value in resource.items() if key != "DependsOn"}
        return pruned | ({"DependsOn": remaining} if remaining else {})

    rest = {key: value for key, value in template.items() if key not in ("Parameters", "Rules", "Resources", "Outputs")}
    outputs = {
        key: output for key, output in template.get("Outputs", {}).items() if not references(output) & dropped.keys()
    }
    resources_kept = {name: without_dropped_dependencies(resources[name]) for name in sorted(kept)}
    return rest | {"Resources": resources_kept, "Outputs": outputs}, dropped


def replayed_slice(target: Path) -> list[TradeEvent]:
    """Write the recording's frames whose trades fall in ``SLICE`` to ``target`` (same line format); their trades."""
    lines, trades = [], []
    for message in read_recording(RECORDING):
        received = datetime.fromtimestamp((message.received_ns or 0) / 1e9, tz=UTC)
        found = [
            t
            for t in normalize_message(json.loads(message.payload), received_at=received)
            if SLICE[0] <= t.timestamp < SLICE[1]
        ]
        if found:
            lines.append(f"{message.received_ns} {message.payload}")
            trades.extend(found)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return trades


def whale_alert_id(order_time: str, side: str, first_trade_id: str) -> str:
    """MOD-002's alert id of the Binance BTCUSDT order of ``first_trade_id`` (``coattail_framework.alerts``)."""
    at = datetime.fromisoformat(order_time)
    micros = int(at.timestamp()) * 1_000_000 + at.microsecond
    return make_alert_id("MOD-002", "binance", "BTCUSDT", side, str(micros), first_trade_id, "")


EXPECTED_WHALES = {
    whale_alert_id("2024-08-08T23:57:18.615+00:00", "sell", "3735686520"): ("medium", 153_436),
    whale_alert_id("2024-08-08T23:57:24.706+00:00", "buy", "3735686645"): ("medium", 148_765),
    whale_alert_id("2024-08-08T23:57:24.707+00:00", "buy", "3735686674"): ("medium", 139_706),
    whale_alert_id("2024-08-08T23:57:33.859+00:00", "sell", "3735686822"): ("high", 617_310),
}
"""The slice's whale orders as ``test_run.py`` rebuilds them from the fills: alert id -> (severity, notional USDT)."""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``CoatTail-test`` synthesized from the real app and the repository's configuration."""
    app = App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context={**cdk_json_context(REPO_ROOT), **CONTEXT})
    stack = build(app, REPO_ROOT)
    assert stack.stack_name == STACK_NAME
    synthesized: dict[str, Any] = app.synth().get_stack_by_name(STACK_NAME).template
    return synthesized


@pytest.fixture(scope="module")
def configuration() -> CoattailConfig:
    """The configuration the app named the resources after (the file alone)."""
    return ConfigLoader(FEATURES, environ={}).load()


@pytest.fixture(scope="module")
def outputs(template: dict[str, Any], moto_endpoint: str) -> Iterator[dict[str, str]]:
    """The stack created in moto (CREATE_COMPLETE): its outputs by key. Deleted afterwards."""
    cloudformation = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto_endpoint)
    kept, _ = for_moto(template)
    cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(kept))
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=STACK_NAME, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    (stack,) = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"]
    yield {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
    cloudformation.delete_stack(StackName=STACK_NAME)


def stack_resources(endpoint: str, kind: str) -> list[str]:
    """The physical ids of the stack's resources of type ``kind``."""
    cloudformation = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=endpoint)
    summaries = cloudformation.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
    return [summary["PhysicalResourceId"] for summary in summaries if summary["ResourceType"] == kind]


PUBLIC_ACCESS_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def public_access_block(s3: Any, bucket: str) -> dict[str, bool] | None:
    """The bucket's public access block settings; None when it has none."""
    try:
        settings: dict[str, bool] = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchPublicAccessBlockConfiguration":
            raise
        return None
    return settings


def test_moto_keeps_the_stream_table_bucket_roles_and_parameters(
    template: dict[str, Any], configuration: CoattailConfig
) -> None:
    kept, dropped = for_moto(template)

    kinds = Counter(resource["Type"] for resource in kept["Resources"].values())
    assert (kinds["AWS::Kinesis::Stream"], kinds["AWS::DynamoDB::Table"], kinds["AWS::KMS::Key"]) == (1, 1, 1)
    buckets = [r["Properties"].get("BucketName") for r in kept["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    assert configuration.storage.s3_bucket in buckets
    assert kinds["AWS::IAM::Role"] >= 1
    assert kinds["AWS::SSM::Parameter"] >= len(config_overrides(configuration, configuration.storage.s3_bucket))
    assert "AWS::EMRServerless::Application" in dropped.values()
    assert not {"Parameters", "Rules"} & kept.keys()
    names = set(kept["Resources"])
    for resource in kept["Resources"].values():
        assert references(resource) - names <= {"AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackName"}
    for output in kept["Outputs"].values():
        assert references(output) <= names | {"AWS::Region"}


def test_the_stack_creates_the_stream_table_bucket_roles_and_configuration(
    outputs: dict[str, str], configuration: CoattailConfig, moto_endpoint: str
) -> None:
    aws = {"region_name": "us-east-1", "endpoint_url": moto_endpoint}
    (key_id,) = stack_resources(moto_endpoint, "AWS::KMS::Key")
    # ListKeys: moto 5.2.6 keeps a CloudFormation key's KeyPolicy as a dict, on which DescribeKey fails.
    (key_arn,) = [k["KeyArn"] for k in boto3.client("kms", **aws).list_keys()["Keys"] if k["KeyId"] == key_id]

    stream = boto3.client("kinesis", **aws).describe_stream_summary(StreamName=outputs["StreamName"])
    summary = stream["StreamDescriptionSummary"]
    assert (summary["StreamName"], summary["StreamStatus"]) == (configuration.kinesis.stream_name, "ACTIVE")
    assert (summary["OpenShardCount"], summary["RetentionPeriodHours"]) == (configuration.kinesis.shard_count, 24)
    if summary.get("EncryptionType", "NONE") != "NONE":  # moto 5.2.6's CloudFormation ignores StreamEncryption
        assert (summary["EncryptionType"], summary["KeyId"]) == ("KMS", key_arn)

    dynamodb = boto3.client("dynamodb", **aws)
    table = dynamodb.describe_table(TableName=outputs["AlertTableName"])["Table"]
    assert table["TableName"] == configuration.dynamodb.table_name
    assert table["KeySchema"] == [{"AttributeName": "alert_id", "KeyType": "HASH"}]
    indexes = {index["IndexName"]: index["KeySchema"][0]["AttributeName"] for index in table["GlobalSecondaryIndexes"]}
    assert indexes == INDEXES
    if "SSEDescription" in table:  # read under the API's key (Enabled), not CloudFormation's (SSEEnabled)
        assert (table["SSEDescription"]["SSEType"], table["SSEDescription"]["KMSMasterKeyArn"]) == ("KMS", key_arn)
    ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    if ttl["TimeToLiveStatus"] != "DISABLED":  # moto 5.2.6's CloudFormation ignores it, and PITR
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl_epoch")

    s3 = boto3.client("s3", **aws)
    bucket = outputs["DataBucketName"]
    assert bucket == configuration.storage.s3_bucket
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    if (blocked := public_access_block(s3, bucket)) is not None:  # moto 5.2.6's CloudFormation ignores it
        assert blocked == dict.fromkeys(PUBLIC_ACCESS_SETTINGS, True)

    roles = stack_resources(moto_endpoint, "AWS::IAM::Role")
    iam = boto3.client("iam", **aws)
    assert roles
    assert all(iam.get_role(RoleName=role)["Role"]["RoleName"] == role for role in roles)

    prefix = outputs["SsmConfigPrefix"]
    assert prefix == configuration.ssm.prefix
    pages = boto3.client("ssm", **aws).get_paginator("get_parameters_by_path").paginate(Path=prefix, Recursive=True)
    parameters = {p["Name"].removeprefix(prefix): p["Value"] for page in pages for p in page["Parameters"]}
    assert parameters == config_overrides(configuration, bucket)
    assert (parameters["iceberg/catalog_type"], parameters["storage/s3_bucket"]) == ("glue", "coattail-data")


def test_read_stack_names_the_outputs_lost_with_emr_serverless(outputs: dict[str, str], moto_endpoint: str) -> None:
    cloudformation = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto_endpoint)
    with pytest.raises(deployment.DeploymentNotFoundError, match=r"lacks outputs EmrApplicationId, StreamJobRoleArn;"):
        deployment.read_stack(cloudformation, STACK_NAME)
    published = {field.output for field in deployment.FIELDS}
    assert published - outputs.keys() == {deployment.APPLICATION_ID.output, deployment.JOB_ROLE_ARN.output}


def test_a_replay_runs_on_the_stream_table_and_bucket_the_stack_published(
    outputs: dict[str, str],
    template: dict[str, Any],
    configuration: CoattailConfig,
    moto_endpoint: str,
    spark: Any,
    tmp_path: Path,
) -> None:
    published = deployment.Deployment(
        application_id=NOT_IN_MOTO,
        job_role_arn=NOT_IN_MOTO,
        bucket=outputs[deployment.BUCKET.output],
        config_prefix=outputs[deployment.CONFIG_PREFIX.output],
        region=outputs[deployment.REGION.output],
        stream_name=outputs[deployment.STREAM_NAME.output],
        table_name=outputs[deployment.TABLE_NAME.output],
        database=outputs[deployment.DATABASE.output],
    )
    # What a job submitted on this deployment gets, on moto; Spark's checkpoints and dead letters stay local (no s3a).
    environ = published.job_environment() | {
        "COATTAIL_AWS__ENDPOINT_URL": moto_endpoint,
        "COATTAIL_STORAGE__CHECKPOINT_ROOT": str(tmp_path / "checkpoints"),
        "COATTAIL_STORAGE__RAW_ZONE": str(tmp_path / "raw"),
    }
    config = ConfigLoader(FEATURES, environ=environ).load()
    assert config.iceberg.warehouse == f"s3://{published.bucket}/warehouse"  # the stack's SSM parameter
    trades = replayed_slice(tmp_path / "slice.txt")
    assert len(trades) == 567

    recording = f"binance:{tmp_path / 'slice.txt'}"
    producer = asyncio.run(replay(replay_config(config, ["binance"]), [recording], drain_timeout=PRODUCER_LIMIT_S))
    assert (producer.clean, producer.published) == (True, len(trades))
    job_config = replay_config(config, ["binance"], producer.published)
    runner = PipelineRunner(spark, job_config)
    totals = drain_replayed(runner, producer.published, StageClock(LOG.info, limit_seconds=DRAIN_LIMIT_S))

    assert totals["input_rows"]["ingest"] == len(trades)
    assert (totals["quality"].get("invalid", 0), totals["dead_letters"]) == (0, {})
    tables = {name: table.to_pylist() for name, table in read_tables(job_config).items()}
    assert sorted(row["event_id"] for row in tables["raw_trades"]) == sorted(t.event_id for t in trades)
    assert (len(tables["whale_trades"]), sorted(row["alert_id"] for row in tables["alerts"])) == (
        4,
        sorted(EXPECTED_WHALES),
    )
    alerts = read_alert_items(job_config)
    assert {
        a["alert_id"]: (a["severity"], round(json.loads(a["details"])["notional"])) for a in alerts
    } == EXPECTED_WHALES
    assert {a["module_id"] for a in alerts} == {"MOD-002"}

    aws = {"region_name": published.region, "endpoint_url": moto_endpoint}
    glue_table = boto3.client("glue", **aws).get_table(DatabaseName=published.database, Name="raw_trades")["Table"]
    assert glue_table["Parameters"]["metadata_location"].startswith(f"s3://{published.bucket}/warehouse/")
    s3 = boto3.client("s3", **aws)
    prefix = f"warehouse/{published.database}.db/raw_trades/data/"
    files = [o["Key"] for o in s3.list_objects_v2(Bucket=published.bucket, Prefix=prefix).get("Contents", [])]
    assert files, f"no raw_trades data file under s3://{published.bucket}/{prefix}"
    head = s3.head_object(Bucket=published.bucket, Key=files[0])
    (key_id,) = stack_resources(moto_endpoint, "AWS::KMS::Key")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"].rpartition("/")[2]) == ("aws:kms", key_id)
    assert_the_alarms_watch_published_metrics(template, configuration, moto_endpoint)


def watched_metrics(template: dict[str, Any], namespace: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(metric name, dimensions) of every alarm of ``template`` on ``namespace``, math expressions' inputs included."""
    watched = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarm = resource["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
        stats += [alarm] if "MetricName" in alarm else []
        for metric in stats:
            if metric.get("Namespace") == namespace:
                dimensions = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
                watched.add((metric["MetricName"], dimensions))
    return watched


def assert_the_alarms_watch_published_metrics(
    template: dict[str, Any], configuration: CoattailConfig, moto_endpoint: str
) -> None:
    """After a replay: the stream job's metrics the alarms watch are ones it really published to CloudWatch."""
    namespace = configuration.metrics.namespace
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto_endpoint)
    pages = cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace)
    published = {
        (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
        for page in pages
        for m in page["Metrics"]
    }
    stream_job = {
        (name, dimensions)
        for name, dimensions in watched_metrics(template, namespace)
        if ("Service", "coattail-producer") not in dimensions  # the producer's: its own tests
        and name != QUERY_FAILURES_METRIC  # published only when a query fails
    }
    assert stream_job == {
        ("batch_duration", (("query", "ingest"),)),
        ("dq_invalid", (("query", "ingest"),)),
        ("dq_total", (("query", "ingest"),)),
    }
    assert stream_job <= published, sorted(stream_job - published)
