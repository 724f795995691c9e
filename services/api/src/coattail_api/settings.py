"""The API's settings: where the alert table is, who may call from a browser, the cursor key,
how much one request may read.

Loaded once per process (a Lambda cold start, or ``coattail-api serve``). The table and
the AWS location come from the shared configuration through ``ConfigLoader``
(``dynamodb.table_name``, ``aws.region``, ``aws.endpoint_url``). Settings only the API
has come from ``COATTAIL_API_*`` environment variables, which are kept away from
``ConfigLoader`` (its model has no ``api`` section, so it would reject them):

- ``COATTAIL_API_CORS_ALLOW_ORIGINS``: comma-separated origins allowed by CORS (``*`` for
  any); unset or empty disables CORS headers.
- ``COATTAIL_API_CURSOR_KEY``: the HMAC key that signs pagination cursors (at least 32
  characters), or
- ``COATTAIL_API_CURSOR_KEY_PARAMETER``: the name of an SSM SecureString holding it, in
  the environment's secrets subtree: ``/coattail/<env>/secrets/api/cursor-key``. It must
  not be under ``ssm.prefix`` (``/coattail/<env>/config/``), which every process that
  loads configuration reads as configuration keys; a name there, or a parameter that is
  not a SecureString, is refused at start.

Every instance serving the same API must share the cursor key, or a cursor issued by one
instance is rejected (400) by another.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretBytes

from coattail_framework.aws import aws_client
from coattail_framework.config import CoattailConfig, ConfigLoader
from coattail_framework.errors import ConfigError

API_ENV_PREFIX = "COATTAIL_API_"
CORS_VARIABLE = f"{API_ENV_PREFIX}CORS_ALLOW_ORIGINS"
CURSOR_KEY_VARIABLE = f"{API_ENV_PREFIX}CURSOR_KEY"
CURSOR_KEY_PARAMETER_VARIABLE = f"{API_ENV_PREFIX}CURSOR_KEY_PARAMETER"
READ_BUDGET_VARIABLE = f"{API_ENV_PREFIX}READ_BUDGET"
MIN_CURSOR_KEY_BYTES = 32
DEFAULT_READ_BUDGET = 1_000
"""Items a request may have DynamoDB evaluate: about 5 ``Query`` calls of 200, a few hundred ms."""
MAX_READ_BUDGET = 50_000


class ApiSettings(BaseModel):
    """Everything the handlers need, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    region: str
    endpoint_url: str | None = None
    cors_allow_origins: tuple[str, ...] = ()
    cursor_key: SecretBytes = Field(min_length=MIN_CURSOR_KEY_BYTES)
    read_budget: int = Field(default=DEFAULT_READ_BUDGET, ge=1, le=MAX_READ_BUDGET)

    @classmethod
    def from_config(
        cls,
        config: CoattailConfig,
        *,
        cursor_key: bytes,
        cors_allow_origins: tuple[str, ...] = (),
        read_budget: int = DEFAULT_READ_BUDGET,
    ) -> ApiSettings:
        """Settings for the table and AWS location named in ``config``."""
        return cls(
            table_name=config.dynamodb.table_name,
            region=config.aws.region,
            endpoint_url=config.aws.endpoint_url,
            cors_allow_origins=cors_allow_origins,
            cursor_key=SecretBytes(cursor_key),
            read_budget=read_budget,
        )


def split_environment(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``(for ConfigLoader, COATTAIL_API_* only)``."""
    shared = {name: value for name, value in environ.items() if not name.startswith(API_ENV_PREFIX)}
    api = {name: value for name, value in environ.items() if name.startswith(API_ENV_PREFIX)}
    return shared, api


def cors_origins(api_environ: Mapping[str, str]) -> tuple[str, ...]:
    """The CORS origins from ``COATTAIL_API_CORS_ALLOW_ORIGINS`` (empty: CORS off)."""
    raw = api_environ.get(CORS_VARIABLE, "")
    return tuple(origin.strip() for origin in raw.split(",") if origin.strip())


def read_budget(api_environ: Mapping[str, str]) -> int:
    """``COATTAIL_API_READ_BUDGET`` (unset: the default); raises ``ConfigError`` when out of range."""
    raw = api_environ.get(READ_BUDGET_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_READ_BUDGET
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= MAX_READ_BUDGET):
        raise ConfigError(f"{READ_BUDGET_VARIABLE}: must be a whole number from 1 to {MAX_READ_BUDGET}, got {raw!r}")
    return int(raw)


def cursor_key(api_environ: Mapping[str, str], config: CoattailConfig) -> bytes:
    """The cursor key from the environment or SSM; raises ``ConfigError`` naming both when absent.

    An SSM name under ``ssm.prefix`` or a parameter that is not a SecureString is refused
    (see the module docstring); the key itself never appears in an error.
    """
    direct = api_environ.get(CURSOR_KEY_VARIABLE)
    parameter = api_environ.get(CURSOR_KEY_PARAMETER_VARIABLE)
    if direct and parameter:
        raise ConfigError(f"set only one of {CURSOR_KEY_VARIABLE} and {CURSOR_KEY_PARAMETER_VARIABLE}, not both")
    if parameter:
        direct = _secure_string(parameter, config)
    if not direct:
        raise ConfigError(
            f"the API needs a cursor signing key: set {CURSOR_KEY_VARIABLE} (at least {MIN_CURSOR_KEY_BYTES} "
            f"characters) or {CURSOR_KEY_PARAMETER_VARIABLE} (an SSM SecureString name)"
        )
    key = direct.encode("utf-8")
    if len(key) < MIN_CURSOR_KEY_BYTES:
        raise ConfigError(f"{CURSOR_KEY_VARIABLE}: must be at least {MIN_CURSOR_KEY_BYTES} bytes, got {len(key)}")
    return key


def _secure_string(name: str, config: CoattailConfig) -> str:
    """The decrypted value of the SSM SecureString ``name``, outside the configuration subtree."""
    if name.startswith(config.ssm.prefix) or name == config.ssm.prefix.rstrip("/"):
        raise ConfigError(
            f"{CURSOR_KEY_PARAMETER_VARIABLE}: {name} is under ssm.prefix {config.ssm.prefix}, where every process "
            "reads parameters as configuration keys; put the key under /coattail/<env>/secrets/ "
            "(e.g. /coattail/prod/secrets/api/cursor-key)"
        )
    ssm = aws_client("ssm", region=config.aws.region, endpoint_url=config.aws.endpoint_url)
    found = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    if found["Type"] != "SecureString":
        raise ConfigError(
            f"{CURSOR_KEY_PARAMETER_VARIABLE}: SSM parameter {name} is a {found['Type']}; store the cursor key as a "
            "SecureString (aws ssm put-parameter --type SecureString)"
        )
    value: str = found["Value"]
    return value


def load_settings(environ: Mapping[str, str] | None = None, config_path: str | Path | None = None) -> ApiSettings:
    """Settings from the configuration layers and ``COATTAIL_API_*`` (see the module docstring)."""
    shared, api = split_environment(os.environ if environ is None else environ)
    config = ConfigLoader(config_path, environ=shared).load()
    return ApiSettings.from_config(
        config, cursor_key=cursor_key(api, config), cors_allow_origins=cors_origins(api), read_budget=read_budget(api)
    )
