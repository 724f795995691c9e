"""The API in the deployed SSM layout (docs/DEPLOY.md): configuration by path, the cursor key by name.

moto's SSM on 127.0.0.1 holds one environment's parameters: ``/coattail/<env>/config/...``
(String) and ``/coattail/<env>/secrets/api/cursor-key`` (SecureString). Each test uses its
own environment name, so tests sharing the session's moto server never see each other's.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from coattail_api.settings import load_settings
from coattail_framework.aws import aws_client
from coattail_framework.errors import ConfigError

REGION = "us-east-1"


def _environment(moto_endpoint: str, tmp_path: Path, parameters: list[tuple[str, str, str]]) -> Path:
    """Put ``parameters`` (name, value, type) into moto's SSM; returns a config file with SSM enabled."""
    ssm = aws_client("ssm", region=REGION, endpoint_url=moto_endpoint)
    for name, value, kind in parameters:
        ssm.put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)
    path = tmp_path / "features.yaml"
    path.write_text(f"aws: {{region: {REGION}, endpoint_url: '{moto_endpoint}'}}\ndynamodb: {{table_name: alerts}}\n")
    return path


def test_the_api_reads_its_configuration_by_path_and_its_key_from_the_secrets_subtree(
    moto_endpoint: str, tmp_path: Path
) -> None:
    env = f"prod-{uuid.uuid4().hex[:8]}"
    key = "c" * 48
    config = _environment(
        moto_endpoint,
        tmp_path,
        [
            (f"/coattail/{env}/config/dynamodb/table_name", "coattail-alerts-live", "String"),
            (f"/coattail/{env}/config/dynamodb/ttl_days", "45", "String"),
            (f"/coattail/{env}/secrets/api/cursor-key", key, "SecureString"),
        ],
    )
    environ = {
        "COATTAIL_SSM__ENABLED": "true",
        "COATTAIL_SSM__PREFIX": f"/coattail/{env}/config/",
        "COATTAIL_API_CURSOR_KEY_PARAMETER": f"/coattail/{env}/secrets/api/cursor-key",
    }

    settings = load_settings(environ, config)

    assert settings.table_name == "coattail-alerts-live"
    assert settings.cursor_key.get_secret_value() == key.encode()


def test_a_cursor_key_under_the_config_prefix_is_refused(moto_endpoint: str, tmp_path: Path) -> None:
    env = f"prod-{uuid.uuid4().hex[:8]}"
    config = _environment(moto_endpoint, tmp_path, [])
    environ = {
        "COATTAIL_SSM__PREFIX": f"/coattail/{env}/config/",
        "COATTAIL_API_CURSOR_KEY_PARAMETER": f"/coattail/{env}/config/api/cursor-key",
    }

    with pytest.raises(ConfigError) as error:
        load_settings(environ, config)

    assert str(error.value) == (
        f"COATTAIL_API_CURSOR_KEY_PARAMETER: /coattail/{env}/config/api/cursor-key is under ssm.prefix "
        f"/coattail/{env}/config/, where every process reads parameters as configuration keys; put the key under "
        "/coattail/<env>/secrets/ (e.g. /coattail/prod/secrets/api/cursor-key)"
    )


def test_a_cursor_key_stored_as_a_plain_string_is_refused_without_showing_it(
    moto_endpoint: str, tmp_path: Path
) -> None:
    env = f"prod-{uuid.uuid4().hex[:8]}"
    key = "p" * 48
    name = f"/coattail/{env}/secrets/api/cursor-key"
    config = _environment(moto_endpoint, tmp_path, [(name, key, "String")])

    with pytest.raises(ConfigError) as error:
        load_settings({"COATTAIL_API_CURSOR_KEY_PARAMETER": name}, config)

    assert str(error.value) == (
        f"COATTAIL_API_CURSOR_KEY_PARAMETER: SSM parameter {name} is a String; store the cursor key as a "
        "SecureString (aws ssm put-parameter --type SecureString)"
    )
    assert key not in str(error.value)


def test_the_stacks_cursor_key_is_read_through_ssms_secrets_manager_reference(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """The deploy's secret (ADR-040): a Secrets Manager secret, read as ``/aws/reference/secretsmanager/<name>``."""
    env = f"prod-{uuid.uuid4().hex[:8]}"
    key = "k" * 64
    secrets = aws_client("secretsmanager", region=REGION, endpoint_url=moto_endpoint)
    secrets.create_secret(Name=f"coattail/{env}/secrets/api/cursor-key", SecretString=key)
    config = _environment(moto_endpoint, tmp_path, [])
    environ = {
        "COATTAIL_API_CURSOR_KEY_PARAMETER": f"/aws/reference/secretsmanager/coattail/{env}/secrets/api/cursor-key",
    }

    settings = load_settings(environ, config)

    assert settings.cursor_key.get_secret_value() == key.encode()
