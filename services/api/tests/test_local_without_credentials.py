"""``coattail-api serve --local --endpoint-url`` in a shell without AWS credentials answers from the local stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from coattail_devstack.testing.environment import without_aws_credentials

from .test_local_server import free_port, get, stop, wait_healthy


def test_serve_local_with_an_endpoint_needs_no_credentials(
    kit: Any, moto_endpoint: str, alert_table: str, tmp_path: Path
) -> None:
    rows = kit.volume_spikes(3)
    kit.write_alerts(alert_table, moto_endpoint, rows)
    config = kit.write_config(tmp_path, alert_table, "http://127.0.0.1:9")
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    command = [str(Path(sys.executable).parent / "coattail-api"), "serve", "--local", "--endpoint-url", moto_endpoint]
    process = subprocess.Popen(
        [*command, "--config", str(config), "--port", str(port)],
        env=without_aws_credentials(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}")
        status, _, body = get(f"http://127.0.0.1:{port}/alerts?symbol=BTCUSDT")
        one_status, _, one = get(f"http://127.0.0.1:{port}/alerts/{rows[0].alert_id}")
    finally:
        stop(process)

    assert status == 200, body
    assert sorted(alert["alert_id"] for alert in body["alerts"]) == sorted(row.alert_id for row in rows)
    assert (one_status, one["alert_id"]) == (200, rows[0].alert_id)


WITHOUT_DEVSTACK = """
import sys
sys.modules["coattail_devstack"] = None  # as in an install without the local extra (coattail-devstack)
from coattail_api.cli import main
sys.exit(main(["serve", "--local", "--config", sys.argv[1], "--port", "0"]))
"""


def test_serve_local_without_the_local_stack_names_the_extra_to_install(kit: Any, tmp_path: Path) -> None:
    config = kit.write_config(tmp_path, "alerts-without-devstack", "http://127.0.0.1:9")
    home = tmp_path / "home"
    home.mkdir()

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_DEVSTACK, str(config)],
        env=without_aws_credentials(home, COATTAIL_API_CURSOR_KEY="k" * 40),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 2, done.stderr[-3000:]
    assert "serve --local without --endpoint-url needs the local stack" in done.stderr
    assert "pip install 'coattail-api[local]'" in done.stderr
