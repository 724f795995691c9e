"""Permissions more than one service needs, granted one way: configuration overrides and metrics.

Runs in the CDK app (synth).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from coattail_framework.config.model import CoattailConfig


def parameter_arn(stack: Stack, name: str) -> str:
    """The ARN of SSM parameter (or path) ``name`` (a leading ``/`` or not)."""
    return f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter/{name.strip('/')}"


def read_config_overrides(principal: iam.IGrantable, stack: Stack, config: CoattailConfig) -> None:
    """``ssm:GetParametersByPath`` on the configuration subtree only: no secrets, no ``kms:Decrypt``."""
    prefix = config.ssm.prefix
    iam.Grant.add_to_principal(
        grantee=principal,
        actions=["ssm:GetParametersByPath"],
        resource_arns=[parameter_arn(stack, prefix), parameter_arn(stack, prefix) + "/*"],
    )


def publish_metrics(principal: iam.IGrantable, config: CoattailConfig) -> None:
    """``cloudwatch:PutMetricData`` in the platform's namespace only (the action has no resource type)."""
    iam.Grant.add_to_principal(
        grantee=principal,
        actions=["cloudwatch:PutMetricData"],
        resource_arns=["*"],
        conditions={"StringEquals": {"cloudwatch:namespace": config.metrics.namespace}},
    )
