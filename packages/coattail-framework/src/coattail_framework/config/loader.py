"""Load the configuration: defaults < ``config/features.yaml`` < SSM parameters < environment.

Runs once at start in whichever process needs configuration (producer, stream-job driver,
API). Later layers override earlier ones key by key:

1. defaults of ``CoattailConfig``;
2. the YAML file (``--config``, else ``$COATTAIL_CONFIG``, else ``config/features.yaml``);
3. when ``ssm.enabled``: every SSM parameter under ``ssm.prefix`` (the environment's
   configuration subtree, ``/coattail/<env>/config/``); the name below the prefix is the
   key path (``/coattail/prod/config/modules/<module>/<key>`` sets
   ``modules.<module>.<key>``). Configuration parameters are plain ``String``s,
   read without decryption: a ``SecureString`` under the prefix is refused, naming it,
   because secrets live in the sibling subtree ``/coattail/<env>/secrets/``, which the
   producer and the stream job have no permission to read (see ``SsmConfig``);
4. environment variables ``COATTAIL_<KEY>__<KEY>...`` (``COATTAIL_KINESIS__STREAM_NAME``);
   a segment matches an existing key ignoring case and ``-``/``_``.

SSM and environment values are parsed as YAML scalars (``30`` is a number, ``true`` a
boolean, ``[a, b]`` a list). A bad value or an unknown key fails here, naming the key path
and its source (the SSM parameter's full name).

Example::

    config = ConfigLoader("config/features.yaml").load()
    config.active_modules  # installed detectors of config.feature_tier, by declared tier
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from coattail_framework.config.model import SECRETS_SEGMENT, CoattailConfig, SsmConfig, key_source
from coattail_framework.errors import ConfigError

LOG = logging.getLogger(__name__)

ENV_PREFIX = "COATTAIL_"
CONFIG_PATH_VARIABLE = "COATTAIL_CONFIG"
DEFAULT_CONFIG_PATH = Path("config/features.yaml")
_NOT_KEYS = {CONFIG_PATH_VARIABLE}
SECURE_STRING = "SecureString"

Tree = dict[str, Any]
Sources = dict[tuple[str, ...], str]
SsmClientFactory = Callable[[str, str | None], Any]


def _default_ssm_client(region: str, endpoint_url: str | None) -> Any:
    from coattail_framework.aws.clients import aws_client

    return aws_client("ssm", region=region, endpoint_url=endpoint_url)


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _normal(key: str) -> str:
    return key.lower().replace("-", "_")


def _set(tree: Tree, path: list[str], value: Any) -> tuple[str, ...]:
    """Set ``value`` at ``path``, matching existing keys loosely; returns the real path."""
    node = tree
    real: list[str] = []
    for index, segment in enumerate(path):
        match = next((key for key in node if _normal(key) == _normal(segment)), None)
        key = match if match is not None else segment.lower()
        real.append(key)
        if index == len(path) - 1:
            node[key] = value
        else:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
    return tuple(real)


class ConfigLoader:
    """Merges the configuration layers and validates the result."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        ssm_client_factory: SsmClientFactory = _default_ssm_client,
    ) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._path = Path(path or self._environ.get(CONFIG_PATH_VARIABLE) or DEFAULT_CONFIG_PATH)
        self._ssm_client_factory = ssm_client_factory

    @property
    def path(self) -> Path:
        """The YAML file this loader reads."""
        return self._path

    def load(self) -> CoattailConfig:
        """Read, merge and validate; raises ``ConfigError`` naming the key and its source."""
        tree, sources = self._read_yaml()
        env_overrides = self._env_overrides()
        ssm_settings = self._peek_ssm_settings(tree, env_overrides)
        if ssm_settings is not None:
            self._apply(tree, sources, self._ssm_overrides(*ssm_settings))
        self._apply(tree, sources, env_overrides)
        try:
            config = CoattailConfig.model_validate(tree)
        except ValidationError as error:
            raise ConfigError.from_validation(error, source=lambda p: key_source(sources, p)) from None
        return config.with_sources(sources)

    def _read_yaml(self) -> tuple[Tree, Sources]:
        if not self._path.is_file():
            raise ConfigError(
                f"{self._path}: configuration file not found; pass --config or set {CONFIG_PATH_VARIABLE}"
            )
        try:
            loaded = yaml.safe_load(self._path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise ConfigError(f"{self._path}: not valid YAML: {error}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{self._path}: the top level must be a mapping, got {type(loaded).__name__}")
        return loaded, {(): str(self._path)}

    def _env_overrides(self) -> list[tuple[list[str], Any, str]]:
        overrides = []
        for name, value in sorted(self._environ.items()):
            if not name.startswith(ENV_PREFIX) or name in _NOT_KEYS:
                continue
            path = [segment for segment in name[len(ENV_PREFIX) :].split("__") if segment]
            if path:
                overrides.append((path, _parse_scalar(value), f"environment {name}"))
        return overrides

    def _peek_ssm_settings(
        self, tree: Tree, env_overrides: list[tuple[list[str], Any, str]]
    ) -> tuple[str, str, str | None] | None:
        """SSM's own settings (enabled, prefix) and AWS location, from YAML and environment."""
        probe = copy.deepcopy(tree)
        for path, value, _ in env_overrides:
            if _normal(path[0]) in ("ssm", "aws"):
                _set(probe, path, value)
        aws = probe.get("aws") or {}
        try:
            ssm = SsmConfig.model_validate(probe.get("ssm") or {})
        except ValidationError as error:
            origin = f"{self._path} or {ENV_PREFIX}SSM__* environment"
            raise ConfigError.from_validation(error, prefix=("ssm",), source=lambda _: origin) from None
        if not ssm.enabled:
            return None
        return ssm.prefix, str(aws.get("region", "us-east-1")), aws.get("endpoint_url")

    def _ssm_overrides(self, prefix: str, region: str, endpoint_url: str | None) -> list[tuple[list[str], Any, str]]:
        """Every parameter under ``prefix`` as a key override; refuses a ``SecureString`` (see module docstring)."""
        client = self._ssm_client_factory(region, endpoint_url)
        paginator = client.get_paginator("get_parameters_by_path")
        overrides = []
        for page in paginator.paginate(Path=prefix.rstrip("/") or "/", Recursive=True, WithDecryption=False):
            for parameter in page["Parameters"]:
                name: str = parameter["Name"]
                if parameter.get("Type") == SECURE_STRING:
                    raise ConfigError(
                        f"SSM parameter {name}: a SecureString under ssm.prefix {prefix}; configuration "
                        f"parameters are plain String values, secrets belong under /coattail/<env>/{SECRETS_SEGMENT}/ "
                        "(read by name by the service that needs them): move it there or store it as a String"
                    )
                path = [segment for segment in name[len(prefix) :].split("/") if segment]
                if path:
                    overrides.append((path, _parse_scalar(parameter["Value"]), f"SSM parameter {name}"))
        LOG.info("config: %d override(s) from SSM under %s", len(overrides), prefix)
        return overrides

    @staticmethod
    def _apply(tree: Tree, sources: Sources, overrides: list[tuple[list[str], Any, str]]) -> None:
        for path, value, origin in overrides:
            sources[_set(tree, path, value)] = origin


def load_config(path: str | Path | None = None) -> CoattailConfig:
    """Load the configuration with the default layers (see the module docstring)."""
    return ConfigLoader(path).load()
