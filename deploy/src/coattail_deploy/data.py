"""The data plane: the key, the trade stream, the alert table, the bucket, the Glue database, SSM and the cursor key.

Runs in the CDK app (synth). Every name comes from the platform configuration; every store
is encrypted with the environment's customer-managed KMS key (rotated yearly), and nothing
is public.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from coattail_deploy.settings import DeploySettings
from coattail_framework.aws.alert_table import TTL_ATTRIBUTE, table_definition
from coattail_framework.aws.deployment import sibling_prefix
from coattail_framework.config.model import SECRETS_SEGMENT, CoattailConfig

ARTIFACTS_PREFIX = "coattail/stream-job/artifacts/"
"""``coattail-stream-job submit``'s uploads (archive, entry point, configuration), content addressed."""
LOGS_PREFIX = "coattail/stream-job/logs/"
"""EMR Serverless driver and executor logs."""
CHECKPOINTS_PREFIX = "checkpoints/"
RAW_PREFIX = "raw/"
DLQ_PREFIX = "raw/dlq/"
WAREHOUSE_PREFIX = "warehouse/"
CURSOR_KEY_NAME = "api/cursor-key"
"""The API's cursor key, below the environment's secrets subtree."""
ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
"""DynamoDB's attribute type codes (``table_definition``) as CDK's."""
SSM_SECRETS_REFERENCE = "/aws/reference/secretsmanager/"
"""SSM's name for a Secrets Manager secret: ``GetParameter`` with decryption returns it as a SecureString."""


@dataclass(frozen=True)
class DataPlane:
    """The stores, for the constructs that read and write them."""

    key: kms.Key
    stream: kinesis.Stream
    table: dynamodb.Table
    bucket: s3.Bucket
    database_name: str
    config_prefix: str
    cursor_key: secretsmanager.Secret

    @property
    def cursor_key_parameter(self) -> str:
        """``COATTAIL_API_CURSOR_KEY_PARAMETER``: the secret through SSM (the API reads SecureStrings)."""
        return SSM_SECRETS_REFERENCE + cursor_key_secret_name(self.config_prefix)

    def objects_arn(self, prefix: str) -> str:
        """The ARN of every object under ``prefix`` of the data bucket."""
        return self.bucket.arn_for_objects(prefix + "*")


def cursor_key_secret_name(config_prefix: str) -> str:
    """The cursor key's secret: ``coattail/<env>/secrets/api/cursor-key`` (the secrets subtree, no leading slash)."""
    return sibling_prefix(config_prefix, SECRETS_SEGMENT).lstrip("/") + CURSOR_KEY_NAME


def build_data_plane(scope: Construct, settings: DeploySettings, config: CoattailConfig) -> DataPlane:
    """Create the stores under ``scope``."""
    retain = RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY
    key = kms.Key(
        scope,
        "Key",
        alias=f"alias/coattail-{settings.environment}",
        description=f"Coat Tail Capital {settings.environment}: stream, table, bucket, secrets, logs, alarms",
        enable_key_rotation=True,
        removal_policy=retain,
    )
    _let_services_use(key)
    on_demand = config.kinesis.capacity_mode == "on-demand"
    stream = kinesis.Stream(
        scope,
        "TradeStream",
        stream_name=config.kinesis.stream_name,
        encryption=kinesis.StreamEncryption.KMS,
        encryption_key=key,
        retention_period=Duration.hours(settings.kinesis_retention_hours),
        stream_mode=kinesis.StreamMode.ON_DEMAND if on_demand else kinesis.StreamMode.PROVISIONED,
        shard_count=None if on_demand else config.kinesis.shard_count,
        removal_policy=retain,
    )
    table = _alert_table(scope, config, key, retain)
    bucket = _bucket(scope, settings, config, key, retain)
    database = glue.CfnDatabase(
        scope,
        "Database",
        catalog_id=Stack.of(scope).account,
        database_input=glue.CfnDatabase.DatabaseInputProperty(
            name=config.iceberg.database,
            description="Coat Tail Capital Iceberg tables (created by the stream job on first write)",
            location_uri=bucket.s3_url_for_object(WAREHOUSE_PREFIX.rstrip("/")),
        ),
    )
    database.apply_removal_policy(retain)
    _config_overrides(scope, config, bucket)
    cursor_key = secretsmanager.Secret(
        scope,
        "ApiCursorKey",
        secret_name=cursor_key_secret_name(config.ssm.prefix),
        description="HMAC key of the alert API's pagination cursors (64 characters, generated)",
        encryption_key=key,
        generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        removal_policy=retain,
    )
    return DataPlane(
        key=key,
        stream=stream,
        table=table,
        bucket=bucket,
        database_name=config.iceberg.database,
        config_prefix=config.ssm.prefix,
        cursor_key=cursor_key,
    )


def _let_services_use(key: kms.Key) -> None:
    """Key policy: CloudWatch Logs (the log groups) and CloudWatch (alarms to the encrypted topic) may use the key."""
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsEncryptsLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
                }
            },
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )


def _alert_table(scope: Construct, config: CoattailConfig, key: kms.Key, retain: RemovalPolicy) -> dynamodb.Table:
    """The alert table exactly as ``table_definition`` has it, plus TTL, SSE-KMS and point-in-time recovery."""
    definition = table_definition(config.dynamodb.table_name)
    types = {a["AttributeName"]: ATTRIBUTE_TYPES[a["AttributeType"]] for a in definition["AttributeDefinitions"]}
    (partition,) = [k["AttributeName"] for k in definition["KeySchema"] if k["KeyType"] == "HASH"]
    table = dynamodb.Table(
        scope,
        "AlertTable",
        table_name=definition["TableName"],
        partition_key=dynamodb.Attribute(name=partition, type=types[partition]),
        billing_mode=dynamodb.BillingMode(definition["BillingMode"]),
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=TTL_ATTRIBUTE,
        deletion_protection=retain == RemovalPolicy.RETAIN,
        removal_policy=retain,
    )
    for index in definition["GlobalSecondaryIndexes"]:
        keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        table.add_global_secondary_index(
            index_name=index["IndexName"],
            partition_key=dynamodb.Attribute(name=keys["HASH"], type=types[keys["HASH"]]),
            sort_key=dynamodb.Attribute(name=keys["RANGE"], type=types[keys["RANGE"]]),
            projection_type=dynamodb.ProjectionType(index["Projection"]["ProjectionType"]),
        )
    return table


def _bucket(
    scope: Construct, settings: DeploySettings, config: CoattailConfig, key: kms.Key, retain: RemovalPolicy
) -> s3.Bucket:
    """The data bucket: private, SSE-KMS, TLS only, access-logged, with lifecycle rules per prefix."""
    access_logs = s3.Bucket(
        scope,
        "AccessLogBucket",
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,  # S3 server access logging cannot write to SSE-KMS buckets
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(settings.log_expiry_days))],
        removal_policy=retain,
    )
    return s3.Bucket(
        scope,
        "DataBucket",
        bucket_name=config.storage.s3_bucket,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="data-bucket/",
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-dead-letters", prefix=DLQ_PREFIX, expiration=Duration.days(settings.dead_letter_expiry_days)
            ),
            s3.LifecycleRule(
                id="expire-job-logs", prefix=LOGS_PREFIX, expiration=Duration.days(settings.log_expiry_days)
            ),
            s3.LifecycleRule(
                id="abort-checkpoint-uploads",
                prefix=CHECKPOINTS_PREFIX,
                abort_incomplete_multipart_upload_after=Duration.days(settings.incomplete_upload_days),
            ),
            s3.LifecycleRule(
                id="abort-warehouse-uploads",
                prefix=WAREHOUSE_PREFIX,
                abort_incomplete_multipart_upload_after=Duration.days(settings.incomplete_upload_days),
            ),
        ],
        removal_policy=retain,
    )


def config_overrides(config: CoattailConfig, bucket_name: str) -> dict[str, str]:
    """The configuration keys the deployment decides, as SSM parameter names below ``ssm.prefix`` and values.

    The stores' names as the stack created them (from the configuration it was synthesized
    with, environment overrides included) and where the job keeps its data: every process
    started with ``ssm.enabled: true`` and this prefix then runs on the deployed stores, whatever
    its own file says (file < these parameters < ``COATTAIL_*``).
    """
    bucket = f"s3://{bucket_name}/"
    return {
        "aws/region": config.aws.region,
        "kinesis/stream_name": config.kinesis.stream_name,
        "dynamodb/table_name": config.dynamodb.table_name,
        "iceberg/database": config.iceberg.database,
        "storage/s3_bucket": bucket_name,
        "storage/raw_zone": bucket + RAW_PREFIX.rstrip("/"),
        "storage/checkpoint_root": bucket + CHECKPOINTS_PREFIX.rstrip("/"),
        "iceberg/catalog_type": "glue",
        "iceberg/warehouse": bucket + WAREHOUSE_PREFIX.rstrip("/"),
    }


def _config_overrides(scope: Construct, config: CoattailConfig, bucket: s3.Bucket) -> None:
    for name, value in config_overrides(config, config.storage.s3_bucket).items():
        ssm.StringParameter(
            scope,
            "Config-" + name.replace("/", "-"),
            parameter_name=config.ssm.prefix + name,
            string_value=value,
            description=f"Configuration override set by the stack: {name.replace('/', '.')}",
        )
