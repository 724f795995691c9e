"""The CDK app: ``cdk synth`` / ``cdk deploy`` run ``python -m coattail_deploy.app`` (``deploy/cdk.json``).

Runs on an operator's machine or in CI. Reads the environment's settings from the CDK context
(``coattail``) and the platform configuration they name, builds ``CoatTail-<environment>``,
applies cdk-nag's AwsSolutions pack and synthesizes. An unsuppressed cdk-nag error fails the
synth with every finding named.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App, Aspects, Environment
from aws_cdk.cx_api import CloudAssembly, SynthesisMessageLevel
from cdk_nag import AwsSolutionsChecks

from coattail_deploy.settings import deploy_settings, platform_config
from coattail_deploy.stack import CoatTailStack
from coattail_framework.errors import ConfigError

CDK_JSON = Path("deploy") / "cdk.json"
"""The app's settings for the CLI (below the repository root): the command, the feature flags, the defaults."""


def find_repo_root(start: Path) -> Path:
    """The repository holding ``deploy/cdk.json``: ``start`` or its nearest parent (the CLI runs in ``deploy/``)."""
    for folder in (start, *start.parents):
        if (folder / CDK_JSON).is_file():
            return folder
    raise ConfigError(f"no {CDK_JSON} in {start} or above: run the app from the repository (cd deploy && cdk synth)")


def cdk_json_context(repo_root: Path) -> dict[str, Any]:
    """``cdk.json``'s context (feature flags, defaults): what the CLI gives the app, for in-process synths."""
    context: dict[str, Any] = json.loads((repo_root / CDK_JSON).read_text())["context"]
    return context


def build(app: App, repo_root: Path) -> CoatTailStack:
    """The stack of the app's context, with cdk-nag applied."""
    settings = deploy_settings(app.node.try_get_context)
    config = platform_config(settings, repo_root)
    env = Environment(account=settings.account, region=settings.region or config.aws.region)
    stack = CoatTailStack(
        app, settings, config, repo_root, env=env, description=f"Coat Tail Capital {settings.environment}"
    )
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return stack


def synthesis_errors(assembly: CloudAssembly) -> list[str]:
    """Every error annotation of the synthesized stacks, one line each.

    An error annotation (an unaccepted cdk-nag finding) fails the synth one of two ways: an
    in-process ``app.synth()`` raises the validation report (``cdk.json``'s
    ``@aws-cdk/core:annotationsInValidationReport``; the tests see this), and under the CLI the
    annotations reach the assembly and are collected here (``nox -s synth`` sees this).
    """
    return [
        f"{message.id}: {str(message.entry.data).splitlines()[0]}"
        for stack in assembly.stacks
        for message in stack.messages
        if message.level == SynthesisMessageLevel.ERROR
    ]


def main() -> int:
    """Synthesize; exit 2 naming the bad setting, 1 when cdk-nag reports errors."""
    app = App()
    try:
        build(app, find_repo_root(Path.cwd().resolve()))
    except ConfigError as error:
        print(f"coattail-deploy: {error}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        assembly = app.synth()
    except RuntimeError as error:  # jsii's: the validation report failed (cdk.json's annotationsInValidationReport)
        print(f"coattail-deploy: synth failed, the validation report names each finding:\n{error}", file=sys.stderr)  # noqa: T201
        return 1
    errors = synthesis_errors(assembly)
    if errors:
        print("coattail-deploy: cdk-nag found unsuppressed errors:\n  " + "\n  ".join(errors), file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
