"""``coattail-stream-job run --local`` in a shell without AWS credentials, and without the ``local`` extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coattail_devstack.testing.environment import without_aws_credentials
from coattail_framework.errors import ConfigError
from coattail_stream_job.local_extra import require_local_extra

FEATURES = Path(__file__).resolve().parents[3] / "config" / "features.yaml"
RUN_TIMEOUT_S = 600


def no_aws_environment(home: Path) -> dict[str, str]:
    """No AWS credentials (``without_aws_credentials``); Spark's workers on this interpreter."""
    python = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "TZ": "UTC"}
    return without_aws_credentials(home, SPARK_LOCAL_IP="127.0.0.1", **python)


def test_run_local_drain_needs_no_credentials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    command = [sys.executable, "-m", "coattail_stream_job.cli", "run", "--config", str(FEATURES), "--local", "--drain"]

    # The AWS clients are the Kinesis source's (ingest), the alert writer's and the metrics' (every detector
    # query): the ingest and whale queries make them all; the others would only add start-ups.
    only_whale = {"COATTAIL_DISABLED_MODULES": "[volume-anomaly, spread]"}
    done = subprocess.run(
        [*command, "--root", str(tmp_path / "stack")],
        env=no_aws_environment(home) | only_whale,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "NoCredentialsError" not in done.stderr
    assert json.loads(done.stdout)["table_rows"]["raw_trades"] == 0


WITHOUT_DEVSTACK = """
import sys
sys.modules["coattail_devstack"] = None  # as in an install without the local extra (coattail-devstack)
from coattail_stream_job.cli import main
sys.exit(main(["run", "--local", "--config", sys.argv[1]]))
"""


def test_run_local_without_the_local_stack_names_the_extra_to_install(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_DEVSTACK, str(FEATURES)],
        env=no_aws_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 2, done.stderr[-3000:]
    assert "run --local needs the local stack and PySpark" in done.stderr
    assert "pip install 'coattail-stream-job[local]'" in done.stderr


def test_reprocess_local_without_the_local_stack_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "coattail_devstack.localstack", None)

    with pytest.raises(ConfigError, match=r"reprocess --local needs the local stack .*'coattail-stream-job\[local\]'"):
        require_local_extra("reprocess --local")
