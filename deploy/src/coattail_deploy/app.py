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

REPO_ROOT = Path(__file__).resolve().parents[3]
"""The monorepo: ``deploy/src/coattail_deploy/app.py`` -> the repository root (assets come from it)."""


CDK_JSON = REPO_ROOT / "deploy" / "cdk.json"
"""The app's settings for the CLI: the command, the feature flags, the default ``coattail`` context."""


def cdk_json_context() -> dict[str, Any]:
    """``cdk.json``'s context (feature flags and defaults): what the CLI gives the app, for in-process synths (tests)."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def build(app: App, repo_root: Path = REPO_ROOT) -> CoatTailStack:
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
    """Every error annotation of the synthesized stacks (cdk-nag's unaccepted findings among them), one line each."""
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
        build(app)
    except ConfigError as error:
        print(f"coattail-deploy: {error}", file=sys.stderr)  # noqa: T201
        return 2
    errors = synthesis_errors(app.synth())
    if errors:
        print("coattail-deploy: cdk-nag found unsuppressed errors:\n  " + "\n  ".join(errors), file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
