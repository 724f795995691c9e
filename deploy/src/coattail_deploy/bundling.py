"""The API's Lambda bundle: coattail-api, the sibling distributions it needs and the lock's third-party wheels.

Runs in the CDK app, at synth, on the operator's or CI's machine (no Docker): ``uv pip
install --target`` for Lambda's platform (manylinux, Python 3.11, the function's
architecture) with every third-party version from the monorepo lock, plus the platform
configuration at ``config/features.yaml`` in the bundle.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from coattail_framework.errors import ConfigError

API_DISTRIBUTION = "coattail-api"
LOCK = "locks/pyspark-4.0.2.txt"
"""The pipeline's lock (EMR's PySpark line): the API's third-party versions are the tests'."""
PLATFORMS = {"X86_64": "x86_64-manylinux2014", "ARM64": "aarch64-manylinux2014"}
"""uv's ``--python-platform`` per Lambda architecture: manylinux2014 wheels run on Lambda's Amazon Linux."""


def local_distributions(repo_root: Path, name: str) -> list[Path]:
    """``name``'s directory and those of the sibling distributions it requires, transitively (base dependencies)."""
    found = {}
    for pyproject in [*repo_root.glob("packages/*/pyproject.toml"), *repo_root.glob("services/*/pyproject.toml")]:
        found[tomllib.loads(pyproject.read_text())["project"]["name"]] = pyproject.parent
    wanted, pending = [name], [name]
    while pending:
        project = tomllib.loads((found[pending.pop()] / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            dependency = requirement.split(";")[0].split("[")[0]
            for separator in "<>=!~ ":
                dependency = dependency.split(separator)[0]
            if dependency in found and dependency not in wanted:
                wanted.append(dependency)
                pending.append(dependency)
    return [found[dist] for dist in wanted]


@jsii.implements(ILocalBundling)
class _UvBundle:
    """Bundles on this machine with uv (``cdk synth`` needs no Docker)."""

    def __init__(self, repo_root: Path, config_path: Path, architecture: str) -> None:
        self._repo_root = repo_root
        self._config_path = config_path
        self._architecture = architecture

    def try_bundle(self, output_dir: str, *options: Any, **named: Any) -> bool:
        """Install the bundle into ``output_dir``; jsii passes the ``BundlingOptions`` (unused: no Docker)."""
        uv = shutil.which("uv")
        if uv is None:
            raise ConfigError("bundling the API needs uv on PATH (pip install uv; the lock pins it)")
        command = [
            uv, "pip", "install", "--quiet", "--target", output_dir,
            "--python-version", "3.11", "--python-platform", PLATFORMS[self._architecture],
            "--constraint", str(self._repo_root / LOCK), "--build-constraint", str(self._repo_root / LOCK),
            *(str(path) for path in local_distributions(self._repo_root, API_DISTRIBUTION)),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - uv, fixed arguments
        if done.returncode != 0:
            raise ConfigError(f"bundling {API_DISTRIBUTION} for Lambda failed:\n{done.stderr.strip()}")
        config = Path(output_dir) / "config"
        config.mkdir(exist_ok=True)
        shutil.copyfile(self._config_path, config / "features.yaml")
        return True


def api_code(repo_root: Path, *, config_path: Path, architecture: str) -> lambda_.Code:
    """The function's code asset, hashed by its content (a changed lock or source is a new version)."""
    return lambda_.Code.from_asset(
        str(repo_root / "services" / "api"),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.11"),
            local=_UvBundle(repo_root, config_path, architecture),
        ),
    )
