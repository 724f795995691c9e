"""The synthesized stack: what issue 23's done-when names, names from the configuration, cdk-nag failing the synth.

Synthesizes the real app in this process (no CDK CLI, no AWS account; the API's bundling is
skipped, its asset is the source directory) and asserts the CloudFormation it produced.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from coattail_deploy.app import build, cdk_json_context, synthesis_errors
from coattail_deploy.nag import acceptances
from coattail_framework.aws import deployment
from coattail_framework.aws.alert_table import INDEXES, TTL_ATTRIBUTE
from coattail_framework.errors import ConfigError
from coattail_framework.metrics import QUERY_FAILURES_METRIC

SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}
REPO_ROOT = Path(__file__).resolve().parents[2]


def synthesize(tmp: Path, **coattail: Any) -> tuple[App, Any, dict[str, Any]]:
    """The app with ``coattail`` context (``coattail.<key>`` entries as ``dotted``), its assembly and template."""
    dotted = coattail.pop("dotted", {})
    app = App(outdir=str(tmp), context={**cdk_json_context(REPO_ROOT), **SKIP_BUNDLING, "coattail": coattail, **dotted})
    stack = build(app, REPO_ROOT)
    assembly = app.synth()
    return app, assembly, assembly.get_stack_by_name(stack.stack_name).template


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, Any]]:
    out = tmp_path_factory.mktemp("cdk.out")
    _, assembly, template = synthesize(out, account="123456789012", region="us-east-1")
    return out, assembly, template


@pytest.fixture(scope="module")
def template(synthesized: tuple[Path, Any, dict[str, Any]]) -> Template:
    return Template.from_json(synthesized[2])


def resources(template: Template, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = template.find_resources(kind)
    return found


def test_the_stream_is_encrypted_with_the_key_and_sized_by_the_configuration(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "Name": "coattail-trades",
            "ShardCount": 2,
            "RetentionPeriodHours": 24,
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},
            "StreamEncryption": {
                "EncryptionType": "KMS",
                "KeyId": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]},
            },
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_the_alert_table_is_the_frameworks_with_sse_pitr_and_ttl(template: Template) -> None:
    (table,) = resources(template, "AWS::DynamoDB::Table").values()
    properties = table["Properties"]
    assert properties["TableName"] == "coattail-alerts"
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["SSESpecification"]["SSEType"] == "KMS"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    indexes = {index["IndexName"]: index for index in properties["GlobalSecondaryIndexes"]}
    assert sorted(indexes) == sorted(INDEXES)
    for name, partition in INDEXES.items():
        assert indexes[name]["KeySchema"][0] == {"AttributeName": partition, "KeyType": "HASH"}
    assert properties["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_the_data_bucket_is_private_encrypted_tls_only_and_expires_what_it_should(template: Template) -> None:
    buckets = resources(template, "AWS::S3::Bucket")
    (data,) = [b for b in buckets.values() if b["Properties"].get("BucketName") == "coattail-data"]
    properties = data["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["BucketKeyEnabled"] is True
    prefixes = {r.get("Prefix"): r for r in properties["LifecycleConfiguration"]["Rules"]}
    assert prefixes["raw/dlq/"]["ExpirationInDays"] == 30
    assert prefixes["coattail/stream-job/logs/"]["ExpirationInDays"] == 90
    assert "ExpirationInDays" not in prefixes["checkpoints/"], "checkpoints never expire"
    for bucket in buckets.values():  # the access-log bucket too
        assert bucket["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    policies = resources(template, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_the_emr_application_comes_from_the_context(tmp_path: Path, template: Template) -> None:
    template.has_resource_properties(
        "AWS::EMRServerless::Application",
        {
            "Type": "SPARK",
            "ReleaseLabel": "emr-spark-8.0.0",
            "Architecture": "X86_64",
            "MaximumCapacity": {"Cpu": "40 vCPU", "Memory": "160 GB", "Disk": "1000 GB"},
            "AutoStopConfiguration": {"Enabled": True, "IdleTimeoutMinutes": 15},
        },
    )
    dotted = {"coattail.emr.architecture": "ARM64", "coattail.emr.max_cpu": "8 vCPU"}
    _, _, changed = synthesize(tmp_path, dotted=dotted)
    Template.from_json(changed).has_resource_properties(
        "AWS::EMRServerless::Application",
        {"Architecture": "ARM64", "MaximumCapacity": Match.object_like({"Cpu": "8 vCPU"})},
    )


def test_every_route_of_the_http_api_requires_iam_authorization(template: Template) -> None:
    routes = resources(template, "AWS::ApiGatewayV2::Route")
    assert routes, "the API has routes"
    for route in routes.values():
        assert route["Properties"]["AuthorizationType"] == "AWS_IAM", route
    (stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["DefaultRouteSettings"]["ThrottlingRateLimit"] == 50
    assert stage["Properties"]["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 100
    assert "$context.identity.userArn" in stage["Properties"]["AccessLogSettings"]["Format"]
    (integration,) = resources(template, "AWS::ApiGatewayV2::Integration").values()
    function_id = _api_function(template)[0]
    assert function_id in str(integration["Properties"]["IntegrationUri"])


def test_the_functions_role_reads_the_table_and_writes_nothing(template: Template) -> None:
    function = _api_function(template)[1]
    assert function["Properties"]["Handler"] == "coattail_api.app.handler"
    assert function["Properties"]["Runtime"] == "python3.11"
    environment = function["Properties"]["Environment"]["Variables"]
    assert environment["COATTAIL_API_CURSOR_KEY_PARAMETER"] == (
        "/aws/reference/secretsmanager/coattail/prod/secrets/api/cursor-key"
    )
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [
        p for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    actions = {action for statement in statements for action in _listed(statement["Action"])}
    assert actions == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "ssm:GetParameter",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_at_least_six_alarms_notify_the_encrypted_topic(template: Template) -> None:
    (topic_id, topic), *_ = resources(template, "AWS::SNS::Topic").items()
    assert "KmsMasterKeyId" in topic["Properties"]
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 6
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}], alarm["Properties"]["AlarmName"]
        assert len(alarm["Properties"]["AlarmDescription"]) > 40
    names = {alarm["Properties"]["AlarmName"] for alarm in alarms.values()}
    for watched in ("kinesis-iterator-age", "producer-unhealthy-binance", "producer-put-failures", "dead-letter-rate"):
        assert f"coattail-prod-{watched}" in names
    for watched in ("stream-job-query-failures", "stream-job-lag", "dynamodb-throttles", "dynamodb-system-errors"):
        assert f"coattail-prod-{watched}" in names
    assert {"coattail-prod-api-errors", "coattail-prod-api-latency"} <= names
    failures = [a for a in alarms.values() if a["Properties"].get("MetricName") == QUERY_FAILURES_METRIC]
    assert failures
    assert failures[0]["Properties"]["Namespace"] == "CoatTail"
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_every_deployment_field_is_an_output_and_a_parameter(template: Template) -> None:
    outputs = template.find_outputs("*")
    parameters = {
        p["Properties"]["Name"]: p["Properties"]["Value"] for p in resources(template, "AWS::SSM::Parameter").values()
    }
    for field in deployment.FIELDS:
        assert field.output in outputs
        assert parameters["/coattail/prod/deploy/" + field.parameter] == outputs[field.output]["Value"]
    assert parameters["/coattail/prod/config/iceberg/catalog_type"] == "glue"
    assert parameters["/coattail/prod/config/storage/checkpoint_root"] == "s3://coattail-data/checkpoints"


def test_names_follow_the_configurations_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COATTAIL_KINESIS__STREAM_NAME", "trades-staging")
    monkeypatch.setenv("COATTAIL_KINESIS__CAPACITY_MODE", "on-demand")
    _, _, changed = synthesize(tmp_path)
    stream = Template.from_json(changed).find_resources("AWS::Kinesis::Stream")
    (properties,) = [s["Properties"] for s in stream.values()]
    assert properties["Name"] == "trades-staging"
    assert properties["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert "ShardCount" not in properties


def test_a_bad_context_value_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"coattail\.api\.memory_mib"):
        synthesize(tmp_path, dotted={"coattail.api.memory_mib": "64"})
    with pytest.raises(ConfigError, match=r"coattail\.producr"):
        synthesize(tmp_path, producr={"cpu": 256})


def test_cdk_nag_accepts_only_what_nag_lists_and_each_acceptance_is_used(
    synthesized: tuple[Path, Any, dict[str, Any]],
) -> None:
    out, assembly, _ = synthesized
    assert synthesis_errors(assembly) == []
    (report,) = out.glob("AwsSolutions-*-NagReport.csv")
    rows = list(csv.DictReader(report.open()))
    assert [r for r in rows if r["Compliance"] == "Non-Compliant"] == []
    suppressed = {(r["Rule ID"], r["Resource ID"].split("/", 1)[1]) for r in rows if r["Compliance"] == "Suppressed"}
    stack = assembly.stacks[0]
    for acceptance in acceptances(_stack_like(stack), _config()):
        assert (acceptance.rule, acceptance.path) in suppressed, f"{acceptance.rule} on {acceptance.path} is stale"
        assert len(acceptance.reason) > 60


def test_an_unaccepted_finding_fails_the_synth(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path), context={**cdk_json_context(REPO_ROOT), **SKIP_BUNDLING, "coattail": {}})
    stack = build(app, REPO_ROOT)
    sns.Topic(stack, "Unencrypted")  # publishers may use plain HTTP: AwsSolutions-SNS3
    # cdk.json's @aws-cdk/core:annotationsInValidationReport: an error annotation fails the synth itself.
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*AwsSolutions-SNS3.*CoatTail-prod/Unencrypted/"):
        app.synth()


def _api_function(template: Template) -> tuple[str, dict[str, Any]]:
    """The API's function (logical id, resource): the one whose handler is the API's (CDK adds its own helpers)."""
    functions = resources(template, "AWS::Lambda::Function").items()
    (found,) = [(id_, f) for id_, f in functions if f["Properties"].get("Handler") == "coattail_api.app.handler"]
    return found


def _listed(action: str | list[str]) -> list[str]:
    return [action] if isinstance(action, str) else action


class _stack_like:  # noqa: N801 - a stand-in with the attributes ``acceptances`` reads
    def __init__(self, artifact: Any) -> None:
        self.region = artifact.environment.region
        self.account = artifact.environment.account
        self.stack_name = artifact.stack_name


def _config() -> Any:
    from coattail_framework.config import ConfigLoader

    return ConfigLoader(REPO_ROOT / "config" / "features.yaml").load()


def test_docs_deploy_lists_every_alarm_and_no_other(template: Template) -> None:
    doc = (REPO_ROOT / "docs" / "DEPLOY.md").read_text()
    section = doc[doc.index("## 4. The dashboard and the alarms") : doc.index("## 5. Roll back")]
    documented = set(re.findall(r"^\| `([a-z0-9<>-]+)`", section, flags=re.M))
    names = {a["Properties"]["AlarmName"] for a in resources(template, "AWS::CloudWatch::Alarm").values()}
    deployed = {
        re.sub(r"^producer-unhealthy-.*", "producer-unhealthy-<venue>", n.removeprefix("coattail-prod-")) for n in names
    }
    assert documented == deployed


def _ssm_grants(template: Template, role_prefix: str) -> set[tuple[str, str]]:
    """(action, resource) of every SSM statement of the policies attached to the role whose logical id starts so."""
    grants = set()
    for policy in resources(template, "AWS::IAM::Policy").values():
        if not any(ref["Ref"].startswith(role_prefix) for ref in policy["Properties"]["Roles"]):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in _listed(statement["Action"]):
                if action.startswith("ssm:"):
                    targets = (
                        statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                    )
                    grants |= {(action, _arn_text(target)) for target in targets}
    return grants


def test_configuration_goes_to_every_role_and_the_cursor_key_to_the_api_only(template: Template) -> None:
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/"
    config_read = {
        ("ssm:GetParametersByPath", arn + "coattail/prod/config"),
        ("ssm:GetParametersByPath", arn + "coattail/prod/config/*"),
    }
    assert _ssm_grants(template, "ProducerTaskTaskRole") == config_read
    assert _ssm_grants(template, "StreamJobRole") == config_read
    assert _ssm_grants(template, "ApiFunctionRole") == {
        ("ssm:GetParameter", arn + "aws/reference/secretsmanager/coattail/prod/secrets/api/cursor-key")
    }


def _arn_text(target: str | dict[str, Any]) -> str:
    """An ARN of the template as text: a ``Fn::Join`` with the partition pseudo-parameter reads as ``aws``."""
    if isinstance(target, str):
        return target
    parts = target["Fn::Join"][1]
    return "".join("aws" if part == {"Ref": "AWS::Partition"} else part for part in parts)


def test_an_enhanced_fan_out_consumer_gets_its_own_grant_and_passes_cdk_nag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COATTAIL_KINESIS__EFO_CONSUMER_NAME", "coattail-emr")
    _, assembly, changed = synthesize(tmp_path)
    assert synthesis_errors(assembly) == []
    statements = [
        statement
        for policy in Template.from_json(changed).find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "EnhancedFanOutConsumer"
    ]
    assert len(statements) == 1
    assert "/consumer/coattail-emr:*" in json.dumps(statements[0]["Resource"])


def test_the_producer_alarms_watch_metrics_the_producer_publishes(template: Template) -> None:
    """Names and dimensions as the producer's CloudWatch emitter builds them, for the venues the stack watches."""
    from datetime import UTC, datetime

    from coattail_framework.connector import ConnectorStats
    from coattail_producer.metrics import CloudWatchEmitter, VenueMetrics, collect
    from coattail_producer.publisher import LatencyWindow, PublisherStats

    venues = {venue: VenueMetrics(0, 0, True, ConnectorStats()) for venue in _config().enabled_exchanges}
    samples = collect(PublisherStats(), 0, venues)
    data = CloudWatchEmitter(None, "CoatTail").metric_data(samples, LatencyWindow(), datetime.now(UTC))
    published = {(d["MetricName"], tuple(sorted((x["Name"], x["Value"]) for x in d["Dimensions"]))) for d, _ in data}
    watched = set()
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        dimensions = tuple(sorted((d["Name"], d["Value"]) for d in properties.get("Dimensions", [])))
        if ("Service", "coattail-producer") in dimensions:
            watched.add((properties["MetricName"], dimensions))
    assert {name for name, _ in watched} == {"ConnectorHealthy", "EventsDropped", "PutRecordsFailedCalls"}
    assert watched <= published, sorted(watched - published)
