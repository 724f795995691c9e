"""cdk-nag: every AwsSolutions finding the stack accepts, with its reason.

Runs in the CDK app (synth). A finding not accepted here fails the synth (``app.py``). Each
acceptance names the rule, the construct and, for a wildcard (``AwsSolutions-IAM5``), the
exact wildcard it accepts (a pattern only where CloudFormation's logical id carries a hash),
so a new wildcard in the same policy is still an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Stack, Token
from cdk_nag import NagPackSuppression, NagSuppressions

from coattail_deploy.data import ARTIFACTS_PREFIX, CHECKPOINTS_PREFIX, LOGS_PREFIX, RAW_PREFIX, WAREHOUSE_PREFIX
from coattail_framework.config.model import CoattailConfig

PUT_METRIC_DATA = (
    "cloudwatch:PutMetricData has no resource type, so its resource is *; the statement is limited by the "
    "condition cloudwatch:namespace = the platform's namespace."
)
"""Why ``Resource::*`` is accepted wherever a service publishes metrics."""


@dataclass(frozen=True)
class Acceptance:
    """One accepted finding: the construct path below the stack, the rule, the reason, the exact wildcards."""

    path: str
    rule: str
    reason: str
    applies_to: tuple[str, ...] = ()


PARTITION = "(?:<AWS::Partition>|aws[a-z-]*)"
"""The partition as cdk-nag shows it: the pseudo-parameter, or the literal a region-specific synth resolves."""


def _arn(service: str, region: str, account: str, resource: str) -> str:
    """The cdk-nag finding of wildcard ``resource`` of ``service`` in this region and account, any partition."""
    head = f"Resource::arn:{PARTITION}:{service}:{re.escape(region)}:{re.escape(account)}:"
    return "regex:/^" + head + re.escape(resource).replace("/", "\\/") + "$/"


def _bucket_objects(prefix: str) -> str:
    """The cdk-nag finding of an object-prefix wildcard in the data bucket (its logical id carries a hash)."""
    return "regex:/^Resource::<DataBucket[0-9A-F]{8}\\.Arn>\\/" + re.escape(prefix).replace("/", "\\/") + "\\*$/"


def acceptances(stack: Stack, config: CoattailConfig) -> list[Acceptance]:
    """Every accepted finding of ``stack``."""
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    prefix = config.ssm.prefix.strip("/")
    ssm_subtree = _arn("ssm", region, account, f"parameter/{prefix}/*")
    consumer = config.kinesis.efo_consumer_name
    efo = (
        (f"regex:/^Resource::<TradeStream[0-9A-F]{{8}}\\.Arn>\\/consumer\\/{re.escape(consumer)}:\\*$/",)
        if consumer
        else ()
    )
    return [
        Acceptance(
            "StreamJobRole/DefaultPolicy/Resource",
            "AwsSolutions-IAM5",
            "The job owns these prefixes of its bucket and creates its objects under them (checkpoints, raw zone and "
            "dead letters, Iceberg data and metadata, its logs) and reads the artifacts submit uploads: object names "
            "are not known in advance. The Glue tables are the job's own, created on first write in its database. The "
            "configuration subtree is read by path. The enhanced fan-out consumer's ARN ends with its creation "
            "time, known only once EMR's connector registers it. " + PUT_METRIC_DATA,
            (
                *(_bucket_objects(p) for p in (CHECKPOINTS_PREFIX, RAW_PREFIX, WAREHOUSE_PREFIX, ARTIFACTS_PREFIX)),
                _bucket_objects(LOGS_PREFIX),
                _arn("glue", region, account, f"table/{config.iceberg.database}/*"),
                ssm_subtree,
                "Resource::*",
                *efo,
            ),
        ),
        Acceptance(
            "SubmitterPolicy/Resource",
            "AwsSolutions-IAM5",
            "Submit uploads content-addressed artifacts under the artifacts prefix (names are SHA-256 digests) and "
            "follows the runs it starts, whose ids EMR assigns.",
            (_bucket_objects(ARTIFACTS_PREFIX), "Resource::<StreamJobApplication.Arn>/jobruns/*"),
        ),
        Acceptance(
            "ProducerTask/TaskRole/DefaultPolicy/Resource",
            "AwsSolutions-IAM5",
            "The producer reads the configuration subtree by path. " + PUT_METRIC_DATA,
            (ssm_subtree, "Resource::*"),
        ),
        Acceptance(
            "ProducerTask/ExecutionRole/DefaultPolicy/Resource",
            "AwsSolutions-IAM5",
            "ECS pulls the image with ecr:GetAuthorizationToken, which has no resource type (CDK's execution role); "
            "the pull itself is limited to the asset repository.",
            ("Resource::*",),
        ),
        Acceptance(
            "ApiReaderPolicy/Resource",
            "AwsSolutions-IAM5",
            "Callers may GET every route of this API's default stage (the function answers unknown paths with 404); "
            "the API id and stage are fixed, only the path is open.",
            (
                f"regex:/^Resource::arn:{PARTITION}:execute-api:{re.escape(region)}:{re.escape(account)}:"
                "<HttpApi[0-9A-F]{8}>\\/\\$default\\/GET\\/\\*$/",
            ),
        ),
        Acceptance(
            "ProducerTask/Resource",
            "AwsSolutions-ECS2",
            "The environment holds only non-secret settings (SSM prefix, region, ssm.enabled); the producer needs no "
            "secret (exchange feeds are public; AWS credentials come from the task role).",
        ),
        Acceptance(
            "ApiCursorKey/Resource",
            "AwsSolutions-SMG4",
            "The cursor key signs pagination cursors that live for one listing; rotating it (update the secret, "
            "docs/DEPLOY.md) only makes open cursors invalid, so it is rotated by hand, not by a rotation function.",
        ),
        Acceptance(
            "ApiFunction/Resource",
            "AwsSolutions-L1",
            "The platform runs Python 3.11 everywhere (EMR Serverless emr-spark-8.0.0's Python, the lock resolved "
            "for 3.11, CI on 3.11); the API moves with the platform, not alone.",
        ),
        Acceptance(
            "TradeStream/Resource",
            "AwsSolutions-KDS3",
            "One customer-managed key encrypts every store of the environment (stream, table, bucket, secret, logs, "
            "alarm topic): its key policy and CloudTrail record who decrypts trades; the per-request KMS cost is "
            "accepted (producer batches of up to 500 records per PutRecords).",
        ),
    ]


def suppress(stack: Stack, config: CoattailConfig) -> None:
    """Register every acceptance on ``stack``'s constructs."""
    for acceptance in acceptances(stack, config):
        reason = NagPackSuppression(
            id=acceptance.rule,
            reason=acceptance.reason,
            applies_to=[_applies(entry) for entry in acceptance.applies_to] or None,
        )
        NagSuppressions.add_resource_suppressions_by_path(stack, f"/{stack.stack_name}/{acceptance.path}", [reason])


def _applies(entry: str) -> str | dict[str, str]:
    """A finding string, or ``{"regex": ...}`` for entries written ``regex:/.../``."""
    return {"regex": entry.removeprefix("regex:")} if entry.startswith("regex:") else entry
