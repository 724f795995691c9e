"""A local stack per test, with a stream and table named after the test (moto's state is per process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from coattail_devstack.localstack import LocalStack, start_local_stack
from coattail_framework.config.model import CoattailConfig


@pytest.fixture
def named_stack(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[CoattailConfig, str], AbstractContextManager[LocalStack]]:
    """``named_stack(config, prefix)``: ``config``'s stack with stream ``<prefix>-<test>``, table ``alerts-<test>``."""
    suffix = request.node.name.replace("_", "-")[:40]

    @contextmanager
    def start(config: CoattailConfig, prefix: str) -> Iterator[LocalStack]:
        named = config.model_copy(
            update={
                "kinesis": config.kinesis.model_copy(update={"stream_name": f"{prefix}-{suffix}"}),
                "dynamodb": config.dynamodb.model_copy(update={"table_name": f"alerts-{suffix}"}),
            }
        )
        with start_local_stack(named, tmp_path / "stack") as running:
            yield running

    return start
