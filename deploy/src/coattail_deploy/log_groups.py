"""CloudWatch log groups of the stack: one retention, encrypted with the environment's key.

Runs in the CDK app (synth).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from coattail_deploy.settings import LOG_RETENTION_DAYS, DeploySettings


def log_group(scope: Construct, name: str, settings: DeploySettings, key: kms.IKey) -> logs.LogGroup:
    """A log group keeping ``log_retention_days``, encrypted with ``key``."""
    return logs.LogGroup(
        scope,
        name,
        retention=retention(settings.log_retention_days),
        encryption_key=key,
        removal_policy=RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY,
    )


def retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs' retention member for ``days`` (``DeploySettings`` allows only those)."""
    return getattr(logs.RetentionDays, LOG_RETENTION_DAYS[days])  # type: ignore[no-any-return]
