"""What one deployment is: the platform's configuration plus the environment's settings (CDK context).

Runs in the CDK app (``cdk synth`` / ``cdk deploy``, on an operator's machine or CI).

Two sources, each with one job:

- **Names** (stream, table, bucket, database, SSM prefix, metric namespace, region) and
  what runs (venues) come from the platform's configuration, loaded like every service
  loads it: ``config/features.yaml`` < SSM (when ``ssm.enabled``) < ``COATTAIL_*``. So a
  bucket renamed with ``COATTAIL_STORAGE__S3_BUCKET`` is renamed in the stack too.
- **Environment settings** (account, sizes, alarm e-mail, EMR release and capacity) are CDK
  context under the key ``coattail``: defaults in ``deploy/cdk.json``, each overridable with
  ``-c coattail.<key>=<value>`` (dotted keys reach nested sections). An unknown key or a
  bad value fails the synth, naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from coattail_framework.config import ConfigLoader
from coattail_framework.config.model import CoattailConfig
from coattail_framework.errors import ConfigError

CONTEXT_KEY = "coattail"
"""The CDK context key holding ``DeploySettings``; ``coattail.<key>`` overrides one setting."""


LOG_RETENTION_DAYS = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}  # fmt: skip
"""The retentions CloudWatch Logs offers, in days, and their names in CDK's ``RetentionDays``."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmrSettings(_Section):
    """The stream job's EMR Serverless application."""

    release_label: str = "emr-spark-8.0.0"
    """EMR release: Spark 4.0.2, Iceberg 1.10.1, Python 3.11 (the archive's line, docs/DEPLOY.md)."""
    architecture: Literal["X86_64", "ARM64"] = "X86_64"
    """Must match the archive built by ``nox -s package-emr``."""
    max_cpu: str = "40 vCPU"
    max_memory: str = "160 GB"
    max_disk: str = "1000 GB"
    idle_timeout_minutes: int = Field(15, ge=1, le=10_080)
    """Auto-stop after this many idle minutes (a streaming run keeps the application busy)."""


class ProducerSettings(_Section):
    """The producer's ECS Fargate service."""

    cpu: int = Field(512, description="Fargate CPU units")
    memory_mib: int = 1024
    desired_count: Literal[0, 1] = 1
    """One producer publishes each trade once; 0 stops it. Two would publish every trade twice."""
    shutdown_deadline_seconds: int = Field(25, ge=1, le=110)
    """``run --shutdown-deadline``: the flush after SIGTERM; the container's stop timeout is this + 5 s."""
    nat_gateways: int = Field(1, ge=1, le=3)
    """NAT gateways of the producer's VPC: its private subnets reach the exchanges (internet) through them."""
    architecture: Literal["X86_64", "ARM64"] = "X86_64"
    availability_zones: list[str] | None = Field(None, min_length=1, max_length=3)
    """The VPC's zones; None = the region's ``a`` and ``b`` (named, so a synth never looks zones up in the account)."""


class ApiSettings(_Section):
    """The alert API's Lambda function and HTTP API."""

    memory_mib: int = Field(512, ge=128, le=10_240)
    timeout_seconds: int = Field(10, ge=1, le=29)
    """Within API Gateway's 30 s integration limit."""
    architecture: Literal["X86_64", "ARM64"] = "X86_64"
    throttle_rate_per_second: float = Field(50.0, gt=0)
    throttle_burst: int = Field(100, gt=0)
    reserved_concurrency: int | None = Field(None, ge=1)
    """Caps concurrent executions (and the table reads they make); None = the account's pool."""
    cors_allow_origins: str | None = None
    """``COATTAIL_API_CORS_ALLOW_ORIGINS`` of the function; None = no CORS headers."""


class AlarmSettings(_Section):
    """Where alarms go and when they fire (thresholds and their reasons: docs/DEPLOY.md)."""

    email: str | None = None
    """Subscribed to the alarm topic when set (the subscription must be confirmed from the mail)."""
    iterator_age_ms: int = Field(60_000, gt=0)
    dead_letter_ratio: float = Field(0.01, gt=0, le=1)
    ingest_batch_ms: int = Field(30_000, gt=0)
    api_p99_ms: int = Field(3_000, gt=0)


class DeploySettings(_Section):
    """The environment-specific half of a deployment (CDK context ``coattail``)."""

    environment: str = Field("prod", pattern=r"^[a-z][a-z0-9-]{0,15}$")
    """Names the stack (``CoatTail-<environment>``) and the SSM subtrees' ``<env>`` segment."""
    account: str | None = Field(None, pattern=r"^\d{12}$")
    """Target account; None = the CLI's credentials decide at deploy time (an environment-agnostic synth)."""
    region: str | None = None
    """Target region; None = the configuration's ``aws.region``."""
    config: str = "../config/features.yaml"
    """The platform configuration, relative to ``deploy/``."""
    kinesis_retention_hours: int = Field(24, ge=24, le=8_760)
    log_retention_days: int = 30
    log_expiry_days: int = Field(90, ge=1)
    """S3 lifecycle: EMR logs expire after this many days."""
    dead_letter_expiry_days: int = Field(30, ge=1)
    """S3 lifecycle: dead letters under ``raw/dlq/`` expire (after redrive or review) after this many days."""
    incomplete_upload_days: int = Field(7, ge=1)
    """S3 lifecycle: incomplete multipart uploads of checkpoints and the warehouse are aborted after this."""
    retain_data: bool = True
    """Keep the key, stream, table and bucket when the stack is deleted (False only for a test environment)."""
    emr: EmrSettings = Field(default_factory=EmrSettings)
    producer: ProducerSettings = Field(default_factory=ProducerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    alarms: AlarmSettings = Field(default_factory=AlarmSettings)

    @field_validator("account", mode="before")
    @classmethod
    def _account_is_text(cls, value: Any) -> Any:
        """``-c coattail.account=012345678901`` reaches the app as a number (the CLI parses JSON): keep it text."""
        return f"{value:012d}" if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch Logs keeps one of {sorted(LOG_RETENTION_DAYS)} days, not {value}")
        return value

    def config_path(self, repo_root: Path) -> Path:
        """The configuration file: ``config`` as given when absolute, else relative to ``<repo_root>/deploy``."""
        path = Path(self.config)
        return path if path.is_absolute() else (repo_root / "deploy" / path).resolve()

    @property
    def stack_name(self) -> str:
        """``CoatTail-<environment>``: the stack ``submit --stack`` reads."""
        return f"CoatTail-{self.environment}"


def _paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every setting's path: ``("api", "memory_mib")``; nested sections are walked."""
    paths = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(_paths(annotation, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


def _expand(context: Callable[[str], Any]) -> dict[str, Any]:
    """The ``coattail`` context tree with every ``coattail.<path>`` value (``-c`` on the CLI) put in, parsed as JSON."""
    tree: dict[str, Any] = json.loads(json.dumps(context(CONTEXT_KEY) or {}))
    if not isinstance(tree, dict):
        raise ConfigError(f"CDK context {CONTEXT_KEY} must be a mapping, got {type(tree).__name__}")
    for path in _paths(DeploySettings):
        value = context(".".join((CONTEXT_KEY, *path)))
        if value is None:
            continue
        node = tree
        for segment in path[:-1]:
            node = node.setdefault(segment, {})
        node[path[-1]] = _parsed(value)
    return tree


def _parsed(value: Any) -> Any:
    """A ``-c`` value: JSON when it parses (``1024``, ``true``, ``null``), else the string."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def deploy_settings(context: Callable[[str], Any]) -> DeploySettings:
    """The validated settings from the app's context (``app.node.try_get_context``); ``ConfigError`` names a bad key."""
    try:
        return DeploySettings.model_validate(_expand(context))
    except ValidationError as error:
        problems = "; ".join(
            f"{CONTEXT_KEY}.{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigError(f"CDK context: {problems}") from None


def platform_config(settings: DeploySettings, repo_root: Path) -> CoattailConfig:
    """The platform configuration the stack names its resources after (file < SSM < environment)."""
    return ConfigLoader(settings.config_path(repo_root)).load()
