"""The stream job's compute: the EMR Serverless application, its execution role and the submitter's policy.

Runs in the CDK app (synth). ``coattail-stream-job submit`` starts runs on the application
with the role (``docs/DEPLOY.md``); the role holds exactly what a run reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_emrserverless as emr
from aws_cdk import aws_iam as iam
from constructs import Construct

from coattail_deploy.data import (
    ARTIFACTS_PREFIX,
    CHECKPOINTS_PREFIX,
    LOGS_PREFIX,
    RAW_PREFIX,
    WAREHOUSE_PREFIX,
    DataPlane,
)
from coattail_deploy.grants import publish_metrics, read_config_overrides
from coattail_deploy.settings import DeploySettings
from coattail_framework.config.model import CoattailConfig

EMR_SERVICE = "emr-serverless.amazonaws.com"


@dataclass(frozen=True)
class StreamJob:
    """The application and the role its runs assume."""

    application: emr.CfnApplication
    role: iam.Role
    submitter: iam.ManagedPolicy


def build_stream_job(scope: Construct, settings: DeploySettings, config: CoattailConfig, data: DataPlane) -> StreamJob:
    """Create the application, the job role (least privilege) and the policy of whoever submits runs."""
    application = emr.CfnApplication(
        scope,
        "StreamJobApplication",
        name=f"coattail-{settings.environment}",
        release_label=settings.emr.release_label,
        type="SPARK",
        architecture=settings.emr.architecture,
        maximum_capacity=emr.CfnApplication.MaximumAllowedResourcesProperty(
            cpu=settings.emr.max_cpu, memory=settings.emr.max_memory, disk=settings.emr.max_disk
        ),
        auto_start_configuration=emr.CfnApplication.AutoStartConfigurationProperty(enabled=True),
        auto_stop_configuration=emr.CfnApplication.AutoStopConfigurationProperty(
            enabled=True, idle_timeout_minutes=settings.emr.idle_timeout_minutes
        ),
    )
    stack = Stack.of(scope)
    role = iam.Role(
        scope,
        "StreamJobRole",
        description="Execution role of the stream job's EMR Serverless runs",
        assumed_by=iam.ServicePrincipal(EMR_SERVICE).with_conditions(
            {
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": application.attr_arn},
            }
        ),
    )
    _grant_job(role, stack, config, data)
    return StreamJob(application=application, role=role, submitter=_submitter(scope, application, role, data))


def _grant_job(role: iam.Role, stack: Stack, config: CoattailConfig, data: DataPlane) -> None:
    """What a run does: read the stream, put alerts, use its S3 prefixes and Glue tables, read SSM, publish metrics."""
    data.stream.grant_read(role)
    role.add_to_policy(
        iam.PolicyStatement(
            sid="EnhancedFanOutRegistration",
            actions=["kinesis:RegisterStreamConsumer", "kinesis:ListStreamConsumers"],
            resources=[data.stream.stream_arn],
        )
    )
    if config.kinesis.efo_consumer_name:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EnhancedFanOutConsumer",
                actions=["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"],
                resources=[f"{data.stream.stream_arn}/consumer/{config.kinesis.efo_consumer_name}:*"],
            )
        )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteAlerts",
            actions=["dynamodb:PutItem", "dynamodb:DescribeTable"],
            resources=[data.table.table_arn],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="UseTheKey",
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[data.key.key_arn],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ReadJobArtifacts", actions=["s3:GetObject"], resources=[data.objects_arn(ARTIFACTS_PREFIX)]
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(sid="WriteJobLogs", actions=["s3:PutObject"], resources=[data.objects_arn(LOGS_PREFIX)])
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="CheckpointsRawZoneAndWarehouse",
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            resources=[data.objects_arn(prefix) for prefix in (CHECKPOINTS_PREFIX, RAW_PREFIX, WAREHOUSE_PREFIX)],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ListOwnPrefixes",
            actions=["s3:ListBucket"],
            resources=[data.bucket.bucket_arn],
            conditions={
                "StringLike": {
                    "s3:prefix": [
                        *(p.rstrip("/") for p in (CHECKPOINTS_PREFIX, RAW_PREFIX, WAREHOUSE_PREFIX)),
                        *(p + "*" for p in (CHECKPOINTS_PREFIX, RAW_PREFIX, WAREHOUSE_PREFIX, ARTIFACTS_PREFIX)),
                    ]
                }
            },
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(sid="BucketLocation", actions=["s3:GetBucketLocation"], resources=[data.bucket.bucket_arn])
    )
    glue = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
    role.add_to_policy(
        iam.PolicyStatement(
            sid="IcebergTablesInGlue",
            actions=[
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:CreateTable",
                "glue:UpdateTable",
            ],
            resources=[
                f"{glue}:catalog",
                f"{glue}:database/{data.database_name}",
                f"{glue}:table/{data.database_name}/*",
            ],
        )
    )
    read_config_overrides(role, stack, config)
    publish_metrics(role, config)


def _submitter(scope: Construct, application: emr.CfnApplication, role: iam.Role, data: DataPlane) -> iam.ManagedPolicy:
    """``coattail-stream-job submit``: start and follow runs, pass the job role, upload artifacts, read the stack."""
    stack = Stack.of(scope)
    return iam.ManagedPolicy(
        scope,
        "SubmitterPolicy",
        description="Attach to the operator or CI role that runs coattail-stream-job submit",
        statements=[
            iam.PolicyStatement(
                sid="StartTheStreamJob", actions=["emr-serverless:StartJobRun"], resources=[application.attr_arn]
            ),
            iam.PolicyStatement(
                sid="FollowItsRuns",
                actions=[
                    "emr-serverless:GetJobRun",
                    "emr-serverless:CancelJobRun",
                    "emr-serverless:GetDashboardForJobRun",
                ],
                resources=[f"{application.attr_arn}/jobruns/*"],
            ),
            iam.PolicyStatement(
                sid="PassTheJobRole",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": EMR_SERVICE}},
            ),
            iam.PolicyStatement(
                sid="UploadArtifacts",
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[data.objects_arn(ARTIFACTS_PREFIX)],
            ),
            iam.PolicyStatement(
                sid="SeeWhatIsUploaded",
                actions=["s3:ListBucket"],
                resources=[data.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ARTIFACTS_PREFIX + "*"}},
            ),
            iam.PolicyStatement(
                sid="EncryptArtifacts",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[data.key.key_arn],
            ),
            iam.PolicyStatement(
                sid="ReadTheStackOutputs", actions=["cloudformation:DescribeStacks"], resources=[stack.stack_id]
            ),
        ],
    )
