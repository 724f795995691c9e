"""What a deployed platform tells the tools that run on it: the stack's outputs and SSM parameters.

The CDK app (``deploy/``, ``coattail_deploy``) creates the resources and publishes their
names twice: as CloudFormation outputs of its stack and as plain ``String`` SSM parameters
under the environment's deployment subtree, ``/coattail/<env>/deploy/``, a sibling of the
configuration subtree (``ssm.prefix``, ``/coattail/<env>/config/``) and of the secrets one.
``coattail-stream-job submit --stack NAME`` (or ``--deployment /coattail/<env>/deploy/``)
reads them, so a deploy followed by a submit needs no hand-copied ids. This module is the
one home of those names: the app writes with them, the readers read with them.

Runs in the CDK app (synth, an operator's machine or CI) and in the submit command.

Example::

    deployment = read_stack(aws_client("cloudformation", region="us-east-1"), "coattail-prod")
    deployment.job_environment()["COATTAIL_SSM__PREFIX"]  # '/coattail/prod/config/'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from coattail_framework.errors import ConfigError

DEPLOY_SEGMENT: Final = "deploy"
"""Path segment of the deployment subtree: ``/coattail/<env>/deploy/``."""


@dataclass(frozen=True)
class Field:
    """One published value: its output key, its SSM parameter below the subtree, its ``Deployment`` attribute."""

    output: str
    parameter: str
    attribute: str
    description: str


APPLICATION_ID: Final = Field(
    "EmrApplicationId", "emr-application-id", "application_id", "EMR Serverless application id of the stream job"
)
JOB_ROLE_ARN: Final = Field(
    "StreamJobRoleArn", "stream-job-role-arn", "job_role_arn", "execution role ARN of the stream job's runs"
)
BUCKET: Final = Field(
    "DataBucketName", "data-bucket", "bucket", "S3 bucket: artifacts, logs, checkpoints, raw zone, warehouse"
)
CONFIG_PREFIX: Final = Field(
    "SsmConfigPrefix", "config-prefix", "config_prefix", "SSM configuration subtree (ssm.prefix) of the stack"
)
REGION: Final = Field("Region", "region", "region", "AWS region of every resource of the stack")
STREAM_NAME: Final = Field("StreamName", "stream-name", "stream_name", "Kinesis trade stream (kinesis.stream_name)")
TABLE_NAME: Final = Field("AlertTableName", "alert-table", "table_name", "DynamoDB alert table (dynamodb.table_name)")
DATABASE: Final = Field(
    "GlueDatabaseName", "glue-database", "database", "Glue database of the Iceberg tables (iceberg.database)"
)

FIELDS: Final = (APPLICATION_ID, JOB_ROLE_ARN, BUCKET, CONFIG_PREFIX, REGION, STREAM_NAME, TABLE_NAME, DATABASE)
"""Every value the stack publishes as both an output and a parameter."""


def sibling_prefix(config_prefix: str, segment: str) -> str:
    """The subtree ``segment`` beside configuration subtree ``config_prefix``.

    ``/coattail/prod/config/``, ``deploy`` -> ``/coattail/prod/deploy/``: the configuration
    prefix's last segment replaced.
    """
    segments = [part for part in config_prefix.strip("/").split("/") if part]
    if not segments:
        raise ValueError(f"{config_prefix!r} has no segment to replace with {segment!r}")
    return "/" + "/".join([*segments[:-1], segment]) + "/"


def deployment_prefix(config_prefix: str) -> str:
    """The deployment subtree beside ``config_prefix``: ``/coattail/prod/config/`` -> ``/coattail/prod/deploy/``.

    Never under ``ssm.prefix``, where every parameter must be a configuration key.
    """
    return sibling_prefix(config_prefix, DEPLOY_SEGMENT)


COMPLETE_STATES: Final = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
"""Stack states whose outputs describe deployed resources."""


class DeploymentNotFoundError(ConfigError):
    """The stack or the deployment subtree is missing, or lacks some of ``FIELDS``; the message names which."""


@dataclass(frozen=True)
class Deployment:
    """The names one deployed platform publishes (``FIELDS``), read back from its stack or its parameters.

    ``application_id``: EMR Serverless application the stream job runs on; ``job_role_arn``: the
    job runs' execution role; ``bucket``: S3 bucket of artifacts, logs, checkpoints, raw zone and
    warehouse; ``config_prefix``: SSM configuration subtree the job reads (``ssm.prefix``,
    ``/coattail/<env>/config/``); ``region``: AWS region of every resource; ``stream_name``:
    Kinesis trade stream; ``table_name``: DynamoDB alert table; ``database``: Glue database of
    the Iceberg tables.
    """

    application_id: str
    job_role_arn: str
    bucket: str
    config_prefix: str
    region: str
    stream_name: str
    table_name: str
    database: str

    def job_environment(self) -> dict[str, str]:
        """The ``COATTAIL_*`` configuration overrides a job run on this deployment needs (loader spelling)."""
        return {
            "COATTAIL_SSM__ENABLED": "true",
            "COATTAIL_SSM__PREFIX": self.config_prefix,
            "COATTAIL_AWS__REGION": self.region,
            "COATTAIL_STORAGE__S3_BUCKET": self.bucket,
            "COATTAIL_ICEBERG__CATALOG_TYPE": "glue",
            "COATTAIL_KINESIS__STREAM_NAME": self.stream_name,
            "COATTAIL_DYNAMODB__TABLE_NAME": self.table_name,
            "COATTAIL_ICEBERG__DATABASE": self.database,
        }


def _deployment(values: Mapping[Field, str]) -> Deployment:
    return Deployment(**{published.attribute: values[published] for published in FIELDS})


def read_stack(cloudformation_client: Any, stack_name: str) -> Deployment:
    """The deployment published as the outputs of CloudFormation stack ``stack_name``.

    Raises ``DeploymentNotFoundError`` naming the stack and the missing output keys when the stack
    does not exist in the client's region, is not in one of ``COMPLETE_STATES``, or lacks outputs.
    """
    from botocore.exceptions import ClientError

    region = cloudformation_client.meta.region_name
    wanted = ", ".join(published.output for published in FIELDS)
    try:
        (stack,) = cloudformation_client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" not in error.response.get("Error", {}).get("Message", ""):
            raise
        raise DeploymentNotFoundError(
            f"CloudFormation stack {stack_name} does not exist in {region}: no outputs {wanted}; "
            "deploy it (deploy/, cdk deploy) or name the stack and region it was deployed as"
        ) from None
    status = stack["StackStatus"]
    if status not in COMPLETE_STATES:
        raise DeploymentNotFoundError(
            f"CloudFormation stack {stack_name} in {region} is {status}, not one of {', '.join(COMPLETE_STATES)}: "
            f"its outputs {wanted} cannot be read; wait for the deployment to finish or fix it"
        )
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    missing = [published.output for published in FIELDS if published.output not in outputs]
    if missing:
        raise DeploymentNotFoundError(
            f"CloudFormation stack {stack_name} in {region} lacks outputs {', '.join(missing)}; "
            "redeploy it with the current deploy/ app"
        )
    return _deployment({published: outputs[published.output] for published in FIELDS})


def read_parameters(ssm_client: Any, prefix: str) -> Deployment:
    """The deployment published as SSM parameters directly under ``prefix`` (``/coattail/<env>/deploy/``).

    Raises ``DeploymentNotFoundError`` naming the prefix and the missing parameters' full names.
    """
    subtree = "/" + "/".join(segment for segment in prefix.split("/") if segment) + "/"
    values: dict[str, str] = {}
    paginator = ssm_client.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=subtree.rstrip("/") or "/", Recursive=False, WithDecryption=False):
        for parameter in page["Parameters"]:
            values[parameter["Name"]] = parameter["Value"]
    missing = [subtree + published.parameter for published in FIELDS if subtree + published.parameter not in values]
    if missing:
        raise DeploymentNotFoundError(
            f"SSM deployment subtree {subtree} in {ssm_client.meta.region_name} lacks parameters "
            f"{', '.join(missing)}; deploy the stack (deploy/, cdk deploy) or name the subtree and region "
            "it was deployed to"
        )
    return _deployment({published: values[subtree + published.parameter] for published in FIELDS})
