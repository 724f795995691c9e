"""The alert API: a Lambda function behind an HTTP API whose every route requires IAM (SigV4) authorization.

Runs in the CDK app (synth). ADR-040 records why IAM authorization: callers sign with their
own AWS credentials, and the stack's ``ApiReaderPolicy`` is what an operator attaches to a
caller's role. Every path reaches the function through the ``$default`` route, so paths the
function does not serve are its own 404s, behind the same authorizer. Throttling and access
logs are on the stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from coattail_deploy.bundling import api_code
from coattail_deploy.data import DataPlane
from coattail_deploy.grants import parameter_arn
from coattail_deploy.log_groups import log_group
from coattail_deploy.settings import DeploySettings
from coattail_framework.aws.alert_table import INDEXES
from coattail_framework.config.model import CoattailConfig

HANDLER = "coattail_api.app.handler"
CONFIG_IN_BUNDLE = "/var/task/config/features.yaml"
"""Where the bundle carries the platform configuration (``COATTAIL_CONFIG`` of the function)."""
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.userArn",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "authorizerError": "$context.authorizer.error",
}
"""One JSON line per request: who called (the signing principal), what, and how it ended."""


@dataclass(frozen=True)
class Api:
    """The function and the HTTP API in front of it."""

    function: lambda_.Function
    http_api: apigw.HttpApi
    stage: apigw.HttpStage
    readers: iam.ManagedPolicy


def build_api(
    scope: Construct, settings: DeploySettings, config: CoattailConfig, data: DataPlane, repo_root: Path
) -> Api:
    """Create the function (read only on the table), the authorized HTTP API and the readers' policy."""
    stack = Stack.of(scope)
    function_logs = log_group(scope, "ApiFunctionLogs", settings, data.key)
    role = iam.Role(
        scope,
        "ApiFunctionRole",
        description="The alert API's function: read only on the alert table, its cursor key, its own logs",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[function_logs.log_group_arn],
        )
    )
    function = lambda_.Function(
        scope,
        "ApiFunction",
        description="Coat Tail Capital alert API (read only over the alert table)",
        runtime=lambda_.Runtime.PYTHON_3_11,
        architecture=lambda_.Architecture.ARM_64
        if settings.api.architecture == "ARM64"
        else lambda_.Architecture.X86_64,
        handler=HANDLER,
        code=api_code(repo_root, config_path=settings.config_path(repo_root), architecture=settings.api.architecture),
        memory_size=settings.api.memory_mib,
        timeout=Duration.seconds(settings.api.timeout_seconds),
        reserved_concurrent_executions=settings.api.reserved_concurrency,
        environment={
            "COATTAIL_CONFIG": CONFIG_IN_BUNDLE,
            "COATTAIL_AWS__REGION": stack.region,
            "COATTAIL_DYNAMODB__TABLE_NAME": config.dynamodb.table_name,
            "COATTAIL_API_CURSOR_KEY_PARAMETER": data.cursor_key_parameter,
            **(
                {"COATTAIL_API_CORS_ALLOW_ORIGINS": settings.api.cors_allow_origins}
                if settings.api.cors_allow_origins
                else {}
            ),
        },
        role=role,
        log_group=function_logs,
        environment_encryption=data.key,
    )
    _grant_reads(function, stack, data)
    http_api = apigw.HttpApi(
        scope,
        "HttpApi",
        api_name=f"coattail-{settings.environment}",
        description="Coat Tail Capital alert API: every route requires SigV4 (IAM) authorization",
        default_integration=integrations.HttpLambdaIntegration("ApiIntegration", function),
        default_authorizer=authorizers.HttpIamAuthorizer(),
        create_default_stage=False,
    )
    stage = apigw.HttpStage(
        scope,
        "ApiStage",
        http_api=http_api,
        stage_name="$default",
        auto_deploy=True,
        throttle=apigw.ThrottleSettings(
            rate_limit=settings.api.throttle_rate_per_second, burst_limit=settings.api.throttle_burst
        ),
        detailed_metrics_enabled=True,
    )
    access_logs = log_group(scope, "ApiAccessLogs", settings, data.key)
    cfn_stage = stage.node.default_child
    assert isinstance(cfn_stage, apigw.CfnStage)
    cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
        destination_arn=access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":"))
    )
    readers = iam.ManagedPolicy(
        scope,
        "ApiReaderPolicy",
        description="Attach to a role or user that may call the alert API (SigV4-signed GET requests)",
        statements=[
            iam.PolicyStatement(
                sid="CallTheAlertApi",
                actions=["execute-api:Invoke"],
                resources=[
                    stack.format_arn(service="execute-api", resource=http_api.api_id, resource_name="$default/GET/*")
                ],
            )
        ],
    )
    return Api(function=function, http_api=http_api, stage=stage, readers=readers)


def _grant_reads(function: lambda_.Function, stack: Stack, data: DataPlane) -> None:
    """Read only: ``GetItem`` on the table, ``Query`` on its indexes, the cursor key."""
    function.add_to_role_policy(
        iam.PolicyStatement(sid="ReadOneAlert", actions=["dynamodb:GetItem"], resources=[data.table.table_arn])
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            sid="QueryAlertIndexes",
            actions=["dynamodb:Query"],
            resources=[f"{data.table.table_arn}/index/{index}" for index in INDEXES],
        )
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            sid="CursorKeyThroughSsm",
            actions=["ssm:GetParameter"],
            resources=[parameter_arn(stack, data.cursor_key_parameter)],
        )
    )
    data.cursor_key.grant_read(function)
    data.key.grant_decrypt(function)
