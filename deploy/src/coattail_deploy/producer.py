"""The producer as an ECS Fargate service: exchange websockets -> Kinesis, one task at a time.

Runs in the CDK app (synth). The image is ``services/producer/Dockerfile`` built from the
repository root (``.dockerignore`` lists what it copies); ``cdk deploy`` builds and pushes it.
The task reads its configuration overrides from SSM, publishes to the stream and pushes
metrics; its container health check is the image's (``/healthz`` on 127.0.0.1:8080).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from coattail_deploy.data import DataPlane
from coattail_deploy.grants import publish_metrics, read_config_overrides
from coattail_deploy.log_groups import log_group
from coattail_deploy.settings import DeploySettings
from coattail_framework.config.model import CoattailConfig

STOP_MARGIN_SECONDS = 5
"""Between the flush deadline and SIGKILL: a call in flight at the deadline, the last metrics push, the exit."""
HEALTH_CHECK = (
    "import sys, urllib.request; "
    "sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
)
"""The image's HEALTHCHECK: the producer's health endpoint, inside the container."""


@dataclass(frozen=True)
class Producer:
    """The service and its cluster (for alarms on running tasks)."""

    cluster: ecs.Cluster
    service: ecs.FargateService
    log_group: logs.LogGroup


def build_producer(
    scope: Construct, settings: DeploySettings, config: CoattailConfig, data: DataPlane, repo_root: Path
) -> Producer:
    """Create the VPC, cluster, task definition and service."""
    vpc = ec2.Vpc(
        scope,
        "ProducerVpc",
        max_azs=2,
        nat_gateways=settings.producer.nat_gateways,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
            ec2.SubnetConfiguration(name="producer", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24),
        ],
        flow_logs={
            "rejected": ec2.FlowLogOptions(
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                    log_group(scope, "VpcFlowLogs", settings, data.key)
                ),
                traffic_type=ec2.FlowLogTrafficType.REJECT,
            )
        },
    )
    Validations.of(vpc).acknowledge(
        Acknowledgment(
            id="CloudFormation-Validate::W3010",
            reason="The zones are named on purpose (producer.availability_zones): a synth never looks them up.",
        )
    )
    cluster = ecs.Cluster(scope, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
    architecture = settings.producer.architecture
    task = ecs.FargateTaskDefinition(
        scope,
        "ProducerTask",
        cpu=settings.producer.cpu,
        memory_limit_mib=settings.producer.memory_mib,
        runtime_platform=ecs.RuntimePlatform(
            operating_system_family=ecs.OperatingSystemFamily.LINUX,
            cpu_architecture=ecs.CpuArchitecture.ARM64 if architecture == "ARM64" else ecs.CpuArchitecture.X86_64,
        ),
    )
    logs_ = log_group(scope, "ProducerLogs", settings, data.key)
    deadline = settings.producer.shutdown_deadline_seconds
    task.add_container(
        "producer",
        image=ecs.ContainerImage.from_asset(
            str(repo_root),
            file="services/producer/Dockerfile",
            platform=ecr_assets.Platform.LINUX_ARM64 if architecture == "ARM64" else ecr_assets.Platform.LINUX_AMD64,
        ),
        command=["run", "--shutdown-deadline", str(deadline)],
        environment={
            "COATTAIL_SSM__ENABLED": "true",
            "COATTAIL_SSM__PREFIX": config.ssm.prefix,
            "COATTAIL_AWS__REGION": Stack.of(scope).region,
        },
        stop_timeout=Duration.seconds(deadline + STOP_MARGIN_SECONDS),
        health_check=ecs.HealthCheck(
            command=["CMD", "python", "-c", HEALTH_CHECK],
            interval=Duration.seconds(15),
            timeout=Duration.seconds(3),
            start_period=Duration.seconds(30),
            retries=3,
        ),
        logging=ecs.LogDriver.aws_logs(stream_prefix="producer", log_group=logs_),
        readonly_root_filesystem=True,
    )
    task.add_to_task_role_policy(
        iam.PolicyStatement(
            sid="PublishTrades",
            actions=["kinesis:PutRecords", "kinesis:DescribeStreamSummary", "kinesis:ListShards"],
            resources=[data.stream.stream_arn],
        )
    )
    task.add_to_task_role_policy(
        iam.PolicyStatement(sid="EncryptTrades", actions=["kms:GenerateDataKey"], resources=[data.key.key_arn])
    )
    read_config_overrides(task.task_role, Stack.of(scope), config)
    publish_metrics(task.task_role, config)
    service = ecs.FargateService(
        scope,
        "ProducerService",
        cluster=cluster,
        task_definition=task,
        desired_count=settings.producer.desired_count,
        # One producer at a time: two would publish every trade twice. A deploy stops the old
        # task (it flushes within its deadline) before the new one starts.
        min_healthy_percent=0,
        max_healthy_percent=100,
        circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        assign_public_ip=False,
    )
    return Producer(cluster=cluster, service=service, log_group=logs_)
