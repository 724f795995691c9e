"""The deployment a stack publishes, read back from its CloudFormation outputs and its SSM parameters.

Runs against the test kit's moto server (``moto_endpoint``): real stacks created from a template
and real parameters, read over the AWS wire protocol. moto keeps its state for the whole
session, so every test names its own stack and subtree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import boto3
import pytest

from coattail_devstack.testing.deployment import create_outputs_stack, put_deployment_parameters
from coattail_framework.aws.deployment import (
    FIELDS,
    Deployment,
    DeploymentNotFoundError,
    deployment_prefix,
    read_parameters,
    read_stack,
)
from coattail_framework.config import ConfigLoader

REGION = "us-east-1"
PUBLISHED = {
    "EmrApplicationId": "00fabc123",
    "StreamJobRoleArn": "arn:aws:iam::123456789012:role/coattail-stream-job",
    "DataBucketName": "coattail-data-prod",
    "SsmConfigPrefix": "/coattail/prod/config/",
    "Region": "eu-west-1",
    "StreamName": "coattail-trades-prod",
    "AlertTableName": "coattail-alerts-prod",
    "GlueDatabaseName": "coattail_prod",
}
"""Output key -> value of a complete deployment."""
EXPECTED = Deployment(
    application_id="00fabc123",
    job_role_arn="arn:aws:iam::123456789012:role/coattail-stream-job",
    bucket="coattail-data-prod",
    config_prefix="/coattail/prod/config/",
    region="eu-west-1",
    stream_name="coattail-trades-prod",
    table_name="coattail-alerts-prod",
    database="coattail_prod",
)


def _client(service: Literal["cloudformation", "ssm"], endpoint: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


def test_a_stacks_outputs_are_read_into_a_deployment(moto_endpoint: str) -> None:
    create_outputs_stack(moto_endpoint, "coattail-complete", PUBLISHED)

    assert read_stack(_client("cloudformation", moto_endpoint), "coattail-complete") == EXPECTED


def test_a_stack_that_does_not_exist_is_named_with_every_output_it_should_publish(moto_endpoint: str) -> None:
    with pytest.raises(DeploymentNotFoundError) as error:
        read_stack(_client("cloudformation", moto_endpoint), "coattail-never-deployed")

    assert str(error.value).startswith("CloudFormation stack coattail-never-deployed does not exist in us-east-1")
    assert ", ".join(PUBLISHED) in str(error.value)


def test_a_stack_without_some_outputs_is_named_with_the_missing_ones(moto_endpoint: str) -> None:
    partial = {key: value for key, value in PUBLISHED.items() if key not in ("StreamJobRoleArn", "GlueDatabaseName")}
    create_outputs_stack(moto_endpoint, "coattail-partial", partial)

    with pytest.raises(DeploymentNotFoundError) as error:
        read_stack(_client("cloudformation", moto_endpoint), "coattail-partial")

    assert str(error.value) == (
        "CloudFormation stack coattail-partial in us-east-1 lacks outputs StreamJobRoleArn, GlueDatabaseName; "
        "redeploy it with the current deploy/ app"
    )


def test_a_deleted_stack_is_refused_with_its_state(moto_endpoint: str) -> None:
    stack_id = create_outputs_stack(moto_endpoint, "coattail-deleted", PUBLISHED)
    _client("cloudformation", moto_endpoint).delete_stack(StackName="coattail-deleted")

    with pytest.raises(DeploymentNotFoundError) as error:
        read_stack(_client("cloudformation", moto_endpoint), stack_id)

    message = str(error.value)
    assert message.startswith(f"CloudFormation stack {stack_id} in us-east-1 is DELETE_COMPLETE, not one of ")
    assert ", ".join(PUBLISHED) in message


@pytest.fixture(scope="module")
def paged_subtree(moto_endpoint: str) -> str:
    """A complete deployment subtree of more than one page (moto returns 10 a page) with parameters to ignore."""
    subtree = "/coattail/paged/deploy/"
    put_deployment_parameters(moto_endpoint, subtree, PUBLISHED)
    ssm = _client("ssm", moto_endpoint)
    for index in range(5):
        ssm.put_parameter(Name=f"{subtree}unrelated-{index}", Value="ignored", Type="String")
    ssm.put_parameter(Name=f"{subtree}nested/emr-application-id", Value="not-this-one", Type="String")
    return subtree


@pytest.mark.parametrize("prefix", ["/coattail/paged/deploy/", "/coattail/paged/deploy", "coattail/paged/deploy/"])
def test_the_parameters_of_the_subtree_are_read_into_a_deployment_across_pages(
    moto_endpoint: str, paged_subtree: str, prefix: str
) -> None:
    assert read_parameters(_client("ssm", moto_endpoint), prefix) == EXPECTED


def test_missing_parameters_are_named_in_full(moto_endpoint: str) -> None:
    partial = {key: value for key, value in PUBLISHED.items() if key != "Region"}
    put_deployment_parameters(moto_endpoint, "/coattail/partial/deploy/", partial)

    with pytest.raises(DeploymentNotFoundError) as error:
        read_parameters(_client("ssm", moto_endpoint), "/coattail/partial/deploy/")

    assert str(error.value).startswith(
        "SSM deployment subtree /coattail/partial/deploy/ in us-east-1 "
        "lacks parameters /coattail/partial/deploy/region;"
    )


def test_an_empty_subtree_names_every_parameter(moto_endpoint: str) -> None:
    with pytest.raises(DeploymentNotFoundError) as error:
        read_parameters(_client("ssm", moto_endpoint), "/coattail/nowhere/deploy/")

    assert ", ".join(f"/coattail/nowhere/deploy/{published.parameter}" for published in FIELDS) in str(error.value)


def test_the_job_environment_configures_a_run_on_the_deployment(tmp_path: Path) -> None:
    config_file = tmp_path / "features.yaml"
    config_file.write_text("iceberg: {catalog_type: sql}\n")
    environment = EXPECTED.job_environment()

    config = ConfigLoader(config_file, environ={**environment, "COATTAIL_SSM__ENABLED": "false"}).load()

    assert environment["COATTAIL_SSM__ENABLED"] == "true"
    assert (config.ssm.prefix, config.aws.region, config.storage.s3_bucket) == (
        "/coattail/prod/config/",
        "eu-west-1",
        "coattail-data-prod",
    )
    assert (config.iceberg.catalog_type, config.iceberg.database) == ("glue", "coattail_prod")
    assert (config.kinesis.stream_name, config.dynamodb.table_name) == ("coattail-trades-prod", "coattail-alerts-prod")


@pytest.mark.parametrize(
    ("config_prefix", "expected"),
    [
        ("/coattail/prod/config/", "/coattail/prod/deploy/"),
        ("/coattail/staging/config", "/coattail/staging/deploy/"),
        ("/team//coattail/dev/config/", "/team/coattail/dev/deploy/"),
        ("/config/", "/deploy/"),
    ],
)
def test_the_deployment_subtree_is_the_configuration_subtrees_sibling(config_prefix: str, expected: str) -> None:
    assert deployment_prefix(config_prefix) == expected


def test_a_prefix_without_segments_has_no_sibling() -> None:
    with pytest.raises(ValueError, match="'/' has no segment to replace with 'deploy'"):
        deployment_prefix("/")
