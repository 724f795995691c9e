"""``submit`` against moto's EMR Serverless and S3 (in-process server on 127.0.0.1).

moto records the job run as started (jobDriver, configurationOverrides) and reports every
run as SUCCESS; ``--stack`` and ``--deployment`` read a real CloudFormation stack's outputs and
real SSM parameters created in the same server; a failed run is made by setting the run's state in moto's backend (moto
keeps it in this process), so ``--wait`` reads FAILED and its stateDetails over the wire.
The archive here is a stand-in file: tests/e2e/test_emr_archive.py builds and runs the real one.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.emrserverless.models import EMRServerlessBackend
from moto.server import ThreadedMotoServer

from coattail_devstack.testing.deployment import create_outputs_stack, put_deployment_parameters
from coattail_stream_job import submit
from coattail_stream_job.emr_entry import localize_config

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/coattail-stream-job"
CONFIG = """\
aws: {region: us-east-1}
kinesis: {stream_name: coattail-trades, source: %(source)s, efo_consumer_name: coattail-emr}
iceberg: {catalog_type: %(catalog)s, catalog_name: coattail, database: coattail}
storage: {s3_bucket: %(bucket)s}
"""


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def bucket(endpoint: str, request: pytest.FixtureRequest) -> str:
    # moto keeps its state per process: each test gets its own bucket.
    name = "artifacts-" + request.node.name.replace("_", "-")[:40]
    boto3.client("s3", region_name=REGION, endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def application_id(endpoint: str) -> str:
    emr = boto3.client("emr-serverless", region_name=REGION, endpoint_url=endpoint)
    # moto knows emr-N.N.0 release labels only, not emr-spark-8.0.0; the label plays no part in submit.
    return str(emr.create_application(name="coattail", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"])


@pytest.fixture
def files(tmp_path: Path, bucket: str) -> dict[str, Path]:
    archive = tmp_path / "stream-job-venv.tar.gz"
    archive.write_bytes(b"stand-in archive " * 1000)
    entry = tmp_path / "emr_entry.py"
    entry.write_text("print('entry')\n")
    config = tmp_path / "features.yaml"
    config.write_text(CONFIG % {"source": "coattail-kinesis", "catalog": "glue", "bucket": bucket})
    return {"archive": archive, "entry": entry, "config": config}


def _args(endpoint: str, application_id: str, files: dict[str, Path], *extra: str) -> argparse.Namespace:
    return _deployment_args(endpoint, files, "--application-id", application_id, "--execution-role-arn", ROLE, *extra)


def _key(path: Path) -> str:
    return f"jobs/stream/artifacts/{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}/{path.name}"


def _job_runs(endpoint: str, application_id: str) -> list[dict[str, Any]]:
    emr = boto3.client("emr-serverless", region_name=REGION, endpoint_url=endpoint)
    listed = emr.list_job_runs(applicationId=application_id)["jobRuns"]
    return [emr.get_job_run(applicationId=application_id, jobRunId=run["id"])["jobRun"] for run in listed]


def test_submit_uploads_the_artifacts_and_starts_the_run(
    endpoint: str, application_id: str, bucket: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(
        endpoint,
        application_id,
        files,
        "--env",
        "COATTAIL_FEATURE_TIER=medium",
        "--env",
        "COATTAIL_MODULES__WHALE__MIN_NOTIONAL_USD=250000",
        "--max-executors",
        "8",
        "--wait",
        "--poll-seconds",
        "0.01",
    )
    assert submit.main(args) == 0

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(_key(path) for path in files.values())
    archive_uri = f"s3://{bucket}/{_key(files['archive'])}"
    config_uri = f"s3://{bucket}/{_key(files['config'])}"
    downloaded = s3.get_object(Bucket=bucket, Key=_key(files["config"]))["Body"].read()
    assert downloaded == files["config"].read_bytes()

    (run,) = _job_runs(endpoint, application_id)
    assert run["name"] == "coattail-stream-job"
    assert run["executionRole"] == ROLE
    assert run["jobDriver"]["sparkSubmit"]["entryPoint"] == f"s3://{bucket}/{_key(files['entry'])}"
    assert run["jobDriver"]["sparkSubmit"]["entryPointArguments"] == ["--config", config_uri]
    environment = {
        "COATTAIL_FEATURE_TIER": "medium",
        "COATTAIL_MODULES__WHALE__MIN_NOTIONAL_USD": "250000",
        "COATTAIL_STORAGE__CHECKPOINT_ROOT": f"s3://{bucket}/checkpoints",
        "COATTAIL_STORAGE__RAW_ZONE": f"s3://{bucket}/raw",
    }
    expected = [
        f"--archives {archive_uri}#environment",
        "--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python",
        "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python",
        "--conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python",
        "--conf spark.jars=/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar",
        "--conf spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "--conf spark.sql.catalog.coattail=org.apache.iceberg.spark.SparkCatalog",
        "--conf spark.sql.catalog.coattail.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog",
        "--conf spark.sql.catalog.coattail.io-impl=org.apache.iceberg.aws.s3.S3FileIO",
        f"--conf spark.sql.catalog.coattail.warehouse=s3://{bucket}/warehouse",
        "--conf spark.driver.cores=4",
        "--conf spark.driver.memory=14g",
        "--conf spark.executor.cores=4",
        "--conf spark.executor.memory=14g",
        "--conf spark.dynamicAllocation.maxExecutors=8",
        "--conf spark.sql.session.timeZone=UTC",
        "--conf spark.sql.streaming.noDataMicroBatches.enabled=true",
        "--conf spark.sql.constraintPropagation.enabled=false",
        "--conf spark.python.daemon.module=coattail_framework.worker_daemon",
    ]
    for name, value in environment.items():
        expected += [
            f"--conf spark.emr-serverless.driverEnv.{name}={value}",
            f"--conf spark.executorEnv.{name}={value}",
        ]
    assert run["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"] == " ".join(expected)
    assert run["configurationOverrides"] == {
        "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": f"s3://{bucket}/jobs/stream/logs/"}}
    }
    out = capsys.readouterr().out
    assert f"job run {run['jobRunId']} started on application {application_id} (STREAMING)" in out
    assert f"#/serverless-applications/{application_id}/job-runs/{run['jobRunId']}" in out
    assert f"job run {run['jobRunId']} succeeded" in out


def test_the_request_streams_by_default_and_drains_as_a_batch(files: dict[str, Path], bucket: str) -> None:
    from coattail_framework.config import ConfigLoader

    config = ConfigLoader(files["config"], environ={}).load()
    common: dict[str, Any] = {
        "archive": files["archive"],
        "entry_point": files["entry"],
        "config_file": files["config"],
        "bucket": bucket,
        "prefix": "jobs/stream",
        "overrides": {},
    }
    streaming = submit.plan_job(config, **common).start_job_run_request("app", ROLE)
    batch = submit.plan_job(config, **common, drain=True).start_job_run_request("app", ROLE)
    assert (streaming["mode"], batch["mode"]) == ("STREAMING", "BATCH")
    assert streaming["jobDriver"]["sparkSubmit"]["entryPointArguments"][-1].endswith("features.yaml")
    assert batch["jobDriver"]["sparkSubmit"]["entryPointArguments"][-1] == "--drain"


def test_a_resubmission_uploads_nothing_again(
    endpoint: str, application_id: str, bucket: str, files: dict[str, Path]
) -> None:
    assert submit.main(_args(endpoint, application_id, files)) == 0
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    first = {item["Key"]: item["LastModified"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert submit.main(_args(endpoint, application_id, files)) == 0
    again = {item["Key"]: item["LastModified"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert again == first
    assert len(_job_runs(endpoint, application_id)) == 2


def test_a_failed_run_is_reported_with_its_state_details(
    endpoint: str,
    application_id: str,
    files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    original = EMRServerlessBackend.start_job_run

    def failing(self: EMRServerlessBackend, *args: Any, **kwargs: Any) -> Any:
        run = original(self, *args, **kwargs)
        run.state = "FAILED"
        run.state_details = "Job failed, ExitCode: 1. Last few exceptions: ModuleNotFoundError: No module named 'x'"
        return run

    monkeypatch.setattr(EMRServerlessBackend, "start_job_run", failing)
    args = _args(endpoint, application_id, files, "--wait", "--poll-seconds", "0.01")
    assert submit.main(args) == 1
    (run,) = _job_runs(endpoint, application_id)
    err = capsys.readouterr().err
    assert (
        f"job run {run['jobRunId']} ended FAILED: Job failed, ExitCode: 1. "
        "Last few exceptions: ModuleNotFoundError: No module named 'x'"
    ) in err


def test_wait_follows_the_states_until_the_end() -> None:
    class Emr:
        states = iter(["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "RUNNING", "CANCELLED"])

        def get_job_run(self, applicationId: str, jobRunId: str) -> dict[str, Any]:  # noqa: N803
            return {"jobRun": {"jobRunId": jobRunId, "state": next(self.states), "stateDetails": ""}}

    sleeps: list[float] = []
    run = submit.wait_for_run(Emr(), "app", "run-1", poll_seconds=5.0, sleep=sleeps.append)
    assert run["state"] == "CANCELLED"
    assert sleeps == [5.0] * 5


@pytest.mark.parametrize(
    ("catalog", "env", "message"),
    [
        ("sql", [], "iceberg.catalog_type is 'sql'"),
        ("glue", ["--env", "COATTAIL_AWS__ENDPOINT_URL=http://127.0.0.1:5000"], "aws.endpoint_url is"),
        ("glue", ["--env", "FEATURE_TIER=small"], "--env FEATURE_TIER=small: expected COATTAIL_"),
        ("glue", ["--env", "COATTAIL_DISABLED_MODULES=[whale, spread]"], "cannot contain blanks"),
        ("glue", ["--checkpoint-root", "/tmp/checkpoints"], "the checkpoint root must be an s3:// URI"),
    ],
)
def test_a_configuration_emr_cannot_run_is_refused_before_anything_is_uploaded(
    endpoint: str,
    application_id: str,
    bucket: str,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    catalog: str,
    env: list[str],
    message: str,
) -> None:
    files["config"].write_text(CONFIG % {"source": "coattail-kinesis", "catalog": catalog, "bucket": bucket})
    assert submit.main(_args(endpoint, application_id, files, *env)) == 2
    assert message in capsys.readouterr().err
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_the_platform_settings_are_the_frameworks() -> None:
    from coattail_framework.spark import PLATFORM_CONF

    assert submit.PLATFORM_CONF == PLATFORM_CONF


def test_the_emr_kinesis_source_adds_the_bundled_connector(files: dict[str, Path], bucket: str) -> None:
    from coattail_framework.config import ConfigLoader

    files["config"].write_text(CONFIG % {"source": "aws-kinesis", "catalog": "glue", "bucket": bucket})
    config = ConfigLoader(files["config"], environ={}).load()
    conf = submit.spark_conf(config, submit.Resources())
    assert conf["spark.jars"] == (
        "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar,"
        "/usr/share/aws/kinesis/spark-sql-kinesis/lib/spark-streaming-sql-kinesis-connector.jar"
    )


def test_the_entry_point_downloads_an_s3_config(
    endpoint: str, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    s3.put_object(Bucket=bucket, Key="jobs/stream/artifacts/abc/features.yaml", Body=b"feature_tier: large\n")
    local = tmp_path / "config"
    local.mkdir()
    arguments = ["--drain", "--config", f"s3://{bucket}/jobs/stream/artifacts/abc/features.yaml"]
    assert localize_config(arguments, local) == ["--drain", "--config", str(local / "features.yaml")]
    assert (local / "features.yaml").read_text() == "feature_tier: large\n"
    assert localize_config(["--config=conf/features.yaml"], local) == ["--config=conf/features.yaml"]


def _published(application_id: str, bucket: str, env: str) -> dict[str, str]:
    """Output key -> value of a deployment of environment ``env`` on ``application_id`` and ``bucket``."""
    return {
        "EmrApplicationId": application_id,
        "StreamJobRoleArn": f"arn:aws:iam::123456789012:role/coattail-{env}-stream-job",
        "DataBucketName": bucket,
        "SsmConfigPrefix": f"/coattail/{env}/config/",
        "Region": REGION,
        "StreamName": f"coattail-trades-{env}",
        "AlertTableName": f"coattail-alerts-{env}",
        "GlueDatabaseName": f"coattail_{env}",
    }


def _deployment_args(endpoint: str, files: dict[str, Path], *extra: str) -> argparse.Namespace:
    """Submit arguments without --application-id, --execution-role-arn or --bucket."""
    parser = argparse.ArgumentParser()
    submit.add_arguments(parser)
    return parser.parse_args(
        [
            "--endpoint-url",
            endpoint,
            "--archive",
            str(files["archive"]),
            "--entry-point",
            str(files["entry"]),
            "--config",
            str(files["config"]),
            "--prefix",
            "jobs/stream",
            *extra,
        ]
    )


def _environment_confs(run: dict[str, Any]) -> dict[str, str]:
    """The driver's ``COATTAIL_*`` variables of a started run, checked equal to the executors'."""
    parameters = run["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"].split(" --conf ")[1:]
    confs = dict(parameter.split("=", 1) for parameter in parameters)
    driver = "spark.emr-serverless.driverEnv."
    environment = {name[len(driver) :]: value for name, value in confs.items() if name.startswith(driver + "COATTAIL_")}
    assert environment == {
        name[len("spark.executorEnv.") :]: value
        for name, value in confs.items()
        if name.startswith("spark.executorEnv.COATTAIL_")
    }
    return environment


@pytest.mark.parametrize("source", ["stack", "deployment"])
def test_a_deployment_supplies_the_ids_and_the_jobs_configuration(
    endpoint: str,
    application_id: str,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    source: str,
) -> None:
    env = f"{source}-test"
    bucket = f"coattail-data-{env}"
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    s3.create_bucket(Bucket=bucket)
    published = _published(application_id, bucket, env)
    if source == "stack":
        create_outputs_stack(endpoint, f"coattail-{env}", published)
        where = ["--stack", f"coattail-{env}"]
        origin = f"deployment from CloudFormation stack coattail-{env} in {REGION}"
    else:
        put_deployment_parameters(endpoint, f"/coattail/{env}/deploy/", published)
        where = ["--deployment", f"/coattail/{env}/deploy/"]
        origin = f"deployment from SSM parameters under /coattail/{env}/deploy/ in {REGION}"
    # The file alone could not run on EMR (SQL catalog) and names another bucket: the deployment's overrides win.
    files["config"].write_text(CONFIG % {"source": "coattail-kinesis", "catalog": "sql", "bucket": "not-deployed"})

    args = _deployment_args(endpoint, files, *where, "--env", "COATTAIL_KINESIS__STREAM_NAME=coattail-trades-replay")
    assert submit.main(args) == 0

    (run,) = _job_runs(endpoint, application_id)
    assert run["executionRole"] == f"arn:aws:iam::123456789012:role/coattail-{env}-stream-job"
    assert run["jobDriver"]["sparkSubmit"]["entryPoint"] == f"s3://{bucket}/{_key(files['entry'])}"
    assert _environment_confs(run) == {
        "COATTAIL_SSM__ENABLED": "true",
        "COATTAIL_SSM__PREFIX": f"/coattail/{env}/config/",
        "COATTAIL_AWS__REGION": REGION,
        "COATTAIL_STORAGE__S3_BUCKET": bucket,
        "COATTAIL_ICEBERG__CATALOG_TYPE": "glue",
        "COATTAIL_KINESIS__STREAM_NAME": "coattail-trades-replay",
        "COATTAIL_DYNAMODB__TABLE_NAME": f"coattail-alerts-{env}",
        "COATTAIL_ICEBERG__DATABASE": f"coattail_{env}",
        "COATTAIL_STORAGE__CHECKPOINT_ROOT": f"s3://{bucket}/checkpoints",
        "COATTAIL_STORAGE__RAW_ZONE": f"s3://{bucket}/raw",
    }
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(_key(path) for path in files.values())
    out = capsys.readouterr().out
    assert out.startswith(origin + "\n")
    assert f"started on application {application_id} (STREAMING)" in out


def test_explicit_ids_win_over_the_deployments(
    endpoint: str, application_id: str, bucket: str, files: dict[str, Path]
) -> None:
    create_outputs_stack(endpoint, "coattail-explicit", _published("00not-this-one", "not-this-bucket", "explicit"))

    args = _deployment_args(
        endpoint,
        files,
        "--stack",
        "coattail-explicit",
        "--application-id",
        application_id,
        "--execution-role-arn",
        ROLE,
        "--bucket",
        bucket,
    )
    assert submit.main(args) == 0

    (run,) = _job_runs(endpoint, application_id)
    assert run["executionRole"] == ROLE
    assert run["jobDriver"]["sparkSubmit"]["entryPoint"] == f"s3://{bucket}/{_key(files['entry'])}"


def test_a_missing_stack_is_named_before_anything_is_uploaded(
    endpoint: str, bucket: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert submit.main(_deployment_args(endpoint, files, "--stack", "coattail-never-deployed")) == 2

    err = capsys.readouterr().err
    assert err.startswith("coattail-stream-job submit: CloudFormation stack coattail-never-deployed does not exist")
    assert "EmrApplicationId" in err
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_without_a_deployment_the_ids_are_required(
    endpoint: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert submit.main(_deployment_args(endpoint, files, "--execution-role-arn", ROLE)) == 2

    assert capsys.readouterr().err == (
        "coattail-stream-job submit: --application-id is required without --stack NAME or "
        "--deployment /coattail/<env>/deploy/, which read the ids the deployed stack published\n"
    )


def test_stack_and_deployment_are_exclusive(endpoint: str, files: dict[str, Path]) -> None:
    with pytest.raises(SystemExit) as exit_:
        _deployment_args(endpoint, files, "--stack", "coattail-prod", "--deployment", "/coattail/prod/deploy/")
    assert exit_.value.code == 2
