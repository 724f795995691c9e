"""``coattail-stream-job submit``: upload the job and start it on EMR Serverless.

Runs on an operator's machine or in CI, never on EMR. It loads the configuration the job
will run with (the ``--config`` file plus ``--env COATTAIL_...`` overrides), checks it
fits EMR (Glue catalog, no endpoint override), uploads the venv archive, the entry point
and the configuration file to ``s3://<bucket>/<prefix>/artifacts/<sha256>/`` (content
addressed: a running job's files are never overwritten; an upload already there is
skipped) and calls ``emr-serverless start_job_run`` with:

- the archive as ``--archives ...#environment`` and ``./environment/bin/python`` as the
  driver's and executors' Python;
- Spark's Iceberg runtime and a Glue ``SparkCatalog`` named ``iceberg.catalog_name``
  (warehouse ``iceberg.warehouse``, else ``s3://<storage.s3_bucket>/warehouse``);
- EMR's bundled Kinesis connector jar when ``kinesis.source`` is ``aws-kinesis``;
- every ``--env`` override, plus the S3 checkpoint root and raw zone, as driver and
  executor environment variables (``COATTAIL_*`` config keys);
- driver/executor cores and memory and the executor ceiling.

With ``--stack NAME`` (the stack's CloudFormation outputs) or ``--deployment PREFIX`` (the SSM
parameters under ``/coattail/<env>/deploy/``), read in ``--region`` (else ``aws.region``), the
deployment supplies the application id, execution role, bucket and region (explicit flags
still win) and its ``COATTAIL_*`` overrides (``Deployment.job_environment``: SSM configuration
subtree, Glue catalog, stream, table, database), under the ``--env`` pairs, which win.

It prints the job run id and where to watch it; ``--wait`` follows the run until it ends
and exits non-zero, with EMR's ``stateDetails``, when it did not succeed.

    coattail-stream-job submit --archive dist/stream-job-venv.tar.gz --entry-point dist/emr_entry.py \\
        --config config/features.yaml --application-id 00fabc123 \\
        --execution-role-arn arn:aws:iam::123456789012:role/coattail-stream-job \\
        --env COATTAIL_ICEBERG__CATALOG_TYPE=glue --wait
    coattail-stream-job submit --stack coattail-prod --region eu-west-1 --wait
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coattail_framework.aws.deployment import Deployment
    from coattail_framework.config.model import CoattailConfig

log = logging.getLogger(__name__)

ENVIRONMENT_ALIAS = "environment"
JOB_PYTHON = f"./{ENVIRONMENT_ALIAS}/bin/python"
ICEBERG_RUNTIME_JAR = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
KINESIS_CONNECTOR_JAR = "/usr/share/aws/kinesis/spark-sql-kinesis/lib/spark-streaming-sql-kinesis-connector.jar"
"""EMR's bundled spark-sql-kinesis-connector (format ``aws-kinesis``), EMR 7.1.0 and later."""
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
PLATFORM_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.streaming.noDataMicroBatches.enabled": "true",
    "spark.sql.constraintPropagation.enabled": "false",
    "spark.python.daemon.module": "coattail_framework.worker_daemon",
}
"""``coattail_framework.spark.PLATFORM_CONF``, restated here because that module imports PySpark,
which the machine running ``submit`` need not have (a test keeps the two equal)."""
TERMINAL_STATES = ("SUCCESS", "FAILED", "CANCELLED")
DEFAULT_PREFIX = "coattail/stream-job"
_ENV_NAME = re.compile(r"^COATTAIL_[A-Z0-9_]+$")
_UNSAFE = re.compile(r"[\s'\"\\]")
"""EMR splits ``sparkSubmitParameters`` on whitespace: values cannot hold blanks or quotes."""


class SubmitError(Exception):
    """The job cannot be submitted as asked; the message says what to change."""


@dataclass(frozen=True)
class Resources:
    """Spark sizing of the job run (memory as Spark reads it, e.g. ``14g``)."""

    driver_cores: int = 4
    driver_memory: str = "14g"
    executor_cores: int = 4
    executor_memory: str = "14g"
    max_executors: int = 4


@dataclass(frozen=True)
class JobPlan:
    """Everything ``start_job_run`` is called with, derived from arguments and configuration."""

    archive_uri: str
    entry_point_uri: str
    config_uri: str
    spark_conf: dict[str, str]
    environment: dict[str, str]
    entry_point_arguments: list[str]
    mode: str
    log_uri: str
    name: str
    uploads: dict[str, Path] = field(default_factory=dict)
    """S3 URI -> local file."""

    @property
    def spark_submit_parameters(self) -> str:
        """The ``sparkSubmitParameters`` string: the archive, then every ``--conf``."""
        confs = {**self.spark_conf}
        for name, value in self.environment.items():
            confs[f"spark.emr-serverless.driverEnv.{name}"] = value
            confs[f"spark.executorEnv.{name}"] = value
        return " ".join(
            [f"--archives {self.archive_uri}#{ENVIRONMENT_ALIAS}"] + [f"--conf {k}={v}" for k, v in confs.items()]
        )

    def start_job_run_request(self, application_id: str, execution_role_arn: str) -> dict[str, Any]:
        """The keyword arguments of boto3's ``start_job_run``."""
        return {
            "applicationId": application_id,
            "executionRoleArn": execution_role_arn,
            "name": self.name,
            "mode": self.mode,
            "jobDriver": {
                "sparkSubmit": {
                    "entryPoint": self.entry_point_uri,
                    "entryPointArguments": self.entry_point_arguments,
                    "sparkSubmitParameters": self.spark_submit_parameters,
                }
            },
            "configurationOverrides": {
                "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": self.log_uri}}
            },
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``submit`` arguments (cheap: no AWS or Spark import)."""
    where = parser.add_argument_group("where")
    deployed = where.add_mutually_exclusive_group()
    deployed.add_argument("--stack", metavar="NAME", help="read the ids below from this CloudFormation stack's outputs")
    deployed.add_argument(
        "--deployment", metavar="PREFIX", help="read them from the SSM parameters under PREFIX (/coattail/ENV/deploy/)"
    )
    where.add_argument("--application-id", help="EMR Serverless application id (default: the deployment's)")
    where.add_argument("--execution-role-arn", help="the job's IAM role (docs/DEPLOY.md; default: the deployment's)")
    where.add_argument("--bucket", help="S3 bucket for artifacts and logs (default: deployment's, storage.s3_bucket)")
    where.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"S3 key prefix (default {DEFAULT_PREFIX})")
    where.add_argument("--region", help="AWS region of the application (default: deployment's, else aws.region)")
    where.add_argument("--endpoint-url", help="AWS endpoint for every client of this command (tests); default AWS")
    what = parser.add_argument_group("what")
    what.add_argument("--archive", type=Path, default=Path("dist/stream-job-venv.tar.gz"), help="nox -s package-emr")
    what.add_argument("--entry-point", type=Path, default=Path("dist/emr_entry.py"), help="the entry point script")
    what.add_argument("--config", type=Path, help="configuration file the job runs with (loader default)")
    what.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="COATTAIL_KEY=VALUE",
        help="configuration override passed to the driver and executors (repeatable)",
    )
    what.add_argument("--checkpoint-root", help="s3:// checkpoint root (default: storage.checkpoint_root if s3://)")
    what.add_argument("--drain", action="store_true", help="batch run: process what is in the stream, then stop")
    what.add_argument("--name", default="coattail-stream-job", help="job run name")
    sizing = parser.add_argument_group("resources")
    defaults = Resources()
    sizing.add_argument("--driver-cores", type=int, default=defaults.driver_cores)
    sizing.add_argument("--driver-memory", default=defaults.driver_memory)
    sizing.add_argument("--executor-cores", type=int, default=defaults.executor_cores)
    sizing.add_argument("--executor-memory", default=defaults.executor_memory)
    sizing.add_argument("--max-executors", type=int, default=defaults.max_executors)
    follow = parser.add_argument_group("follow")
    follow.add_argument("--wait", action="store_true", help="follow the run until it ends; non-zero unless SUCCESS")
    follow.add_argument("--poll-seconds", type=float, default=30.0, help="get_job_run interval with --wait")


def parse_environment(pairs: Sequence[str]) -> dict[str, str]:
    """``COATTAIL_KEY=VALUE`` pairs as a mapping; raises naming a malformed pair."""
    environment: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not _ENV_NAME.match(name) or name == "COATTAIL_CONFIG":
            raise SubmitError(
                f"--env {pair}: expected COATTAIL_<KEY>__<KEY>=VALUE naming a configuration key "
                "(COATTAIL_CONFIG is set by submit from --config)"
            )
        environment[name] = value
    return environment


def _require_s3(value: str, what: str) -> str:
    if not value.startswith("s3://"):
        raise SubmitError(f"{what} must be an s3:// URI on EMR, got {value!r}")
    return value.rstrip("/")


def _check_safe(name: str, value: str) -> None:
    if _UNSAFE.search(value):
        raise SubmitError(
            f"{name}={value!r}: EMR splits sparkSubmitParameters on blanks, so values cannot contain blanks, "
            "quotes or backslashes; write YAML lists without spaces ([a,b]) or set the key in the config file"
        )


def job_environment(
    config: CoattailConfig, overrides: Mapping[str, str], checkpoint_root: str | None
) -> dict[str, str]:
    """The ``COATTAIL_*`` variables of the run: ``overrides`` plus S3 storage locations.

    The checkpoint root is ``checkpoint_root``, else ``storage.checkpoint_root`` when it is
    already on S3, else ``s3://<storage.s3_bucket>/checkpoints``; the raw zone likewise
    (``s3://<storage.s3_bucket>/raw``).
    """
    storage = config.storage
    bucket = f"s3://{storage.s3_bucket}"
    checkpoints = checkpoint_root or (
        storage.checkpoint_root if storage.checkpoint_root.startswith("s3://") else f"{bucket}/checkpoints"
    )
    raw_zone = storage.raw_zone if storage.raw_zone.startswith("s3://") else f"{bucket}/raw"
    environment = {
        **overrides,
        "COATTAIL_STORAGE__CHECKPOINT_ROOT": _require_s3(checkpoints, "the checkpoint root"),
        "COATTAIL_STORAGE__RAW_ZONE": _require_s3(raw_zone, "storage.raw_zone"),
    }
    for name, value in environment.items():
        _check_safe(name, value)
    return environment


def spark_conf(config: CoattailConfig, resources: Resources) -> dict[str, str]:
    """Spark properties of the run: the job's Python, Iceberg on Glue, the Kinesis jar, sizing, UTC.

    Raises ``SubmitError`` when the configuration cannot run on EMR.
    """
    if config.aws.endpoint_url is not None:
        raise SubmitError(
            f"aws.endpoint_url is {config.aws.endpoint_url!r} ({config.source_of(('aws', 'endpoint_url'))}); "
            "on EMR every client must talk to AWS: unset it"
        )
    iceberg = config.iceberg
    if iceberg.catalog_type != "glue":
        raise SubmitError(
            f"iceberg.catalog_type is {iceberg.catalog_type!r} ({config.source_of(('iceberg', 'catalog_type'))}); "
            "the job on EMR needs the Glue catalog: set it to glue in the config or pass "
            "--env COATTAIL_ICEBERG__CATALOG_TYPE=glue"
        )
    warehouse = (
        iceberg.warehouse if iceberg.warehouse.startswith("s3://") else f"s3://{config.storage.s3_bucket}/warehouse"
    )
    catalog = f"spark.sql.catalog.{iceberg.catalog_name}"
    jars = [ICEBERG_RUNTIME_JAR]
    if config.kinesis.source == "aws-kinesis":
        jars.append(KINESIS_CONNECTOR_JAR)
    conf = {
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": JOB_PYTHON,
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": JOB_PYTHON,
        "spark.executorEnv.PYSPARK_PYTHON": JOB_PYTHON,
        "spark.jars": ",".join(jars),
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        f"{catalog}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        f"{catalog}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{catalog}.warehouse": warehouse,
        "spark.driver.cores": str(resources.driver_cores),
        "spark.driver.memory": resources.driver_memory,
        "spark.executor.cores": str(resources.executor_cores),
        "spark.executor.memory": resources.executor_memory,
        "spark.dynamicAllocation.maxExecutors": str(resources.max_executors),
        **PLATFORM_CONF,
    }
    for name, value in conf.items():
        _check_safe(name, value)
    return conf


def content_key(prefix: str, path: Path) -> str:
    """``<prefix>/artifacts/<sha256 of the file, 16 hex>/<file name>``."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return f"{prefix.strip('/')}/artifacts/{digest.hexdigest()[:16]}/{path.name}"


def plan_job(
    config: CoattailConfig,
    *,
    archive: Path,
    entry_point: Path,
    config_file: Path,
    bucket: str,
    prefix: str,
    overrides: Mapping[str, str],
    checkpoint_root: str | None = None,
    resources: Resources | None = None,
    drain: bool = False,
    name: str = "coattail-stream-job",
) -> JobPlan:
    """The job run for ``config``: S3 locations of the uploads and every start_job_run argument."""
    for path, what in ((archive, "--archive (build it: nox -s package-emr)"), (entry_point, "--entry-point")):
        if not path.is_file():
            raise SubmitError(f"{what}: {path} does not exist")
    uploads = {f"s3://{bucket}/{content_key(prefix, path)}": path for path in (archive, entry_point, config_file)}
    archive_uri, entry_point_uri, config_uri = uploads
    arguments = ["--config", config_uri] + (["--drain"] if drain else [])
    return JobPlan(
        archive_uri=archive_uri,
        entry_point_uri=entry_point_uri,
        config_uri=config_uri,
        spark_conf=spark_conf(config, resources or Resources()),
        environment=job_environment(config, overrides, checkpoint_root),
        entry_point_arguments=arguments,
        mode="BATCH" if drain else "STREAMING",
        log_uri=f"s3://{bucket}/{prefix.strip('/')}/logs/",
        name=name,
        uploads=uploads,
    )


def upload(s3: Any, uploads: Mapping[str, Path]) -> None:
    """Upload each file to its S3 URI unless that (content-addressed) object already exists."""
    from botocore.exceptions import ClientError

    for uri, path in uploads.items():
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        try:
            s3.head_object(Bucket=bucket, Key=key)
            log.info("%s already uploaded", uri)
            continue
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        log.info("uploading %s (%.1f MB) to %s", path, path.stat().st_size / 1e6, uri)
        s3.upload_file(str(path), bucket, key)


def wait_for_run(
    emr: Any,
    application_id: str,
    job_run_id: str,
    *,
    poll_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll ``get_job_run`` until the run reaches a terminal state; returns the final job run."""
    last_state = None
    while True:
        run: dict[str, Any] = emr.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]
        state = run["state"]
        if state != last_state:
            log.info(
                "job run %s: %s%s", job_run_id, state, f" ({run['stateDetails']})" if run.get("stateDetails") else ""
            )
            last_state = state
        if state in TERMINAL_STATES:
            return run
        sleep(poll_seconds)


def console_url(region: str, application_id: str, job_run_id: str) -> str:
    """The EMR Serverless console page of the job run (EMR Studio)."""
    return (
        f"https://{region}.console.aws.amazon.com/emr/home?region={region}"
        f"#/serverless-applications/{application_id}/job-runs/{job_run_id}"
    )


def _load_config(path: Path | None, overrides: Mapping[str, str]) -> tuple[CoattailConfig, Path]:
    """The configuration the job will see (file + overrides; SSM is read by the job, not here)."""
    from coattail_framework.config import ConfigLoader
    from coattail_framework.config.loader import CONFIG_PATH_VARIABLE

    default = os.environ.get(CONFIG_PATH_VARIABLE)
    loader = ConfigLoader(path or default, environ={**overrides, "COATTAIL_SSM__ENABLED": "false"})
    return loader.load(), loader.path


def _read_deployment(args: argparse.Namespace, region: str) -> Deployment:
    """The deployment ``--stack`` or ``--deployment`` names, read in ``region``; prints where it came from."""
    from coattail_framework.aws.clients import aws_client
    from coattail_framework.aws.deployment import read_parameters, read_stack

    if args.stack:
        cloudformation = aws_client("cloudformation", region=region, endpoint_url=args.endpoint_url)
        deployment, source = read_stack(cloudformation, args.stack), f"CloudFormation stack {args.stack}"
    else:
        ssm = aws_client("ssm", region=region, endpoint_url=args.endpoint_url)
        deployment, source = read_parameters(ssm, args.deployment), f"SSM parameters under {args.deployment}"
    print(f"deployment from {source} in {region}")  # noqa: T201
    return deployment


def _deployment_overrides(args: argparse.Namespace) -> tuple[dict[str, str], Deployment | None]:
    """The run's ``COATTAIL_*`` overrides: the deployment's (``--stack``/``--deployment``) under the ``--env`` pairs."""
    overrides = parse_environment(args.env)
    if not (args.stack or args.deployment):
        return overrides, None
    deployment = _read_deployment(args, args.region or _load_config(args.config, overrides)[0].aws.region)
    return {**deployment.job_environment(), **overrides}, deployment


def _run_identity(args: argparse.Namespace, deployment: Deployment | None) -> tuple[str, str]:
    """The EMR application id and execution role ARN: the flags, else the deployment's."""
    if deployment is not None:
        return args.application_id or deployment.application_id, args.execution_role_arn or deployment.job_role_arn
    flags = {"--application-id": args.application_id, "--execution-role-arn": args.execution_role_arn}
    missing = [flag for flag, value in flags.items() if not value]
    if missing:
        raise SubmitError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required without --stack NAME or "
            "--deployment /coattail/<env>/deploy/, which read the ids the deployed stack published"
        )
    return args.application_id, args.execution_role_arn


def main(args: argparse.Namespace) -> int:
    """Upload and start the job run; with ``--wait``, 0 only if it ends in SUCCESS."""
    from coattail_framework.aws.clients import aws_client
    from coattail_framework.aws.deployment import DeploymentNotFoundError

    try:
        overrides, deployment = _deployment_overrides(args)
        application_id, execution_role_arn = _run_identity(args, deployment)
        config, config_file = _load_config(args.config, overrides)
        # A deployment's bucket and region reach these through its overrides.
        bucket = args.bucket or config.storage.s3_bucket
        region = args.region or config.aws.region
        plan = plan_job(
            config,
            archive=args.archive,
            entry_point=args.entry_point,
            config_file=config_file,
            bucket=bucket,
            prefix=args.prefix,
            overrides=overrides,
            checkpoint_root=args.checkpoint_root,
            resources=Resources(
                args.driver_cores, args.driver_memory, args.executor_cores, args.executor_memory, args.max_executors
            ),
            drain=args.drain,
            name=args.name,
        )
    except (SubmitError, DeploymentNotFoundError) as error:
        print(f"coattail-stream-job submit: {error}", file=sys.stderr)  # noqa: T201
        return 2
    upload(aws_client("s3", region=region, endpoint_url=args.endpoint_url), plan.uploads)
    emr = aws_client("emr-serverless", region=region, endpoint_url=args.endpoint_url)
    started = emr.start_job_run(**plan.start_job_run_request(application_id, execution_role_arn))
    job_run_id: str = started["jobRunId"]
    print(f"job run {job_run_id} started on application {application_id} ({plan.mode})")  # noqa: T201
    print(f"console   {console_url(region, application_id, job_run_id)}")  # noqa: T201
    print(f"logs      {plan.log_uri}applications/{application_id}/jobs/{job_run_id}/")  # noqa: T201
    print(  # noqa: T201
        f"spark UI  aws emr-serverless get-dashboard-for-job-run --region {region} "
        f"--application-id {application_id} --job-run-id {job_run_id}"
    )
    if not args.wait:
        return 0
    try:
        run = wait_for_run(emr, application_id, job_run_id, poll_seconds=args.poll_seconds)
    except KeyboardInterrupt:
        print(f"stopped following job run {job_run_id}; it keeps running on EMR", file=sys.stderr)  # noqa: T201
        return 130
    if run["state"] == "SUCCESS":
        print(f"job run {job_run_id} succeeded")  # noqa: T201
        return 0
    details = run.get("stateDetails") or "no details given"
    print(f"job run {job_run_id} ended {run['state']}: {details}", file=sys.stderr)  # noqa: T201
    return 1
