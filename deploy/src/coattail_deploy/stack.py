"""``CoatTail-<environment>``: the whole platform in one stack.

Runs in the CDK app (synth). Composes the data plane, the stream job's EMR application,
the producer's Fargate service, the API and the alarms, then publishes what the tools
need (``coattail_framework.aws.deployment``) as outputs and SSM parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from coattail_deploy.api import build_api
from coattail_deploy.data import build_data_plane
from coattail_deploy.nag import suppress
from coattail_deploy.observability import build_observability
from coattail_deploy.producer import build_producer
from coattail_deploy.settings import DeploySettings
from coattail_deploy.stream_job import build_stream_job
from coattail_framework.aws import deployment
from coattail_framework.config.model import CoattailConfig


class CoatTailStack(Stack):
    """Every AWS resource of one environment."""

    def __init__(
        self,
        scope: Construct,
        settings: DeploySettings,
        config: CoattailConfig,
        repo_root: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, settings.stack_name, **kwargs)
        self._zones = settings.producer.availability_zones or [f"{self.region}{zone}" for zone in "ab"]
        data = build_data_plane(self, settings, config)
        job = build_stream_job(self, settings, config, data)
        producer = build_producer(self, settings, config, data, repo_root)
        api = build_api(self, settings, config, data, repo_root)
        topic, alarms, dashboard = build_observability(self, settings, config, data, producer, api)
        published = {
            deployment.APPLICATION_ID: job.application.attr_application_id,
            deployment.JOB_ROLE_ARN: job.role.role_arn,
            deployment.BUCKET: data.bucket.bucket_name,
            deployment.CONFIG_PREFIX: config.ssm.prefix,
            deployment.REGION: self.region,
            deployment.STREAM_NAME: data.stream.stream_name,
            deployment.TABLE_NAME: data.table.table_name,
            deployment.DATABASE: data.database_name,
        }
        assert set(published) == set(deployment.FIELDS), "every deployment field is published"
        subtree = deployment.deployment_prefix(config.ssm.prefix)
        for field, value in published.items():
            CfnOutput(self, field.output, value=value, description=field.description)
            ssm.StringParameter(
                self,
                f"Deploy-{field.parameter}",
                parameter_name=subtree + field.parameter,
                string_value=value,
                description=field.description,
            )
        CfnOutput(self, "ApiUrl", value=api.http_api.api_endpoint, description="The alert API (SigV4-signed GETs)")
        CfnOutput(self, "ApiReaderPolicyArn", value=api.readers.managed_policy_arn, description="Attach to API callers")
        CfnOutput(
            self, "SubmitterPolicyArn", value=job.submitter.managed_policy_arn, description="Attach to submitters"
        )
        CfnOutput(self, "AlarmTopicArn", value=topic.topic_arn, description="Every alarm notifies this topic")
        CfnOutput(self, "DashboardName", value=dashboard.dashboard_name, description="CloudWatch dashboard")
        CfnOutput(self, "ProducerServiceName", value=producer.service.service_name, description="ECS service")
        CfnOutput(self, "AlarmCount", value=str(len(alarms)), description="Alarms with the topic as action")
        suppress(self, config)

    @property
    def availability_zones(self) -> list[str]:
        """The producer VPC's zones (``producer.availability_zones``), named: a synth never looks them up."""
        return self._zones
