"""The local server answers over real HTTP: in a thread, and as ``coattail-api serve --local``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from coattail_api.local import LocalApiServer


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback http only
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def seeded(kit: Any, moto_endpoint: str, alert_table: str) -> list[Any]:
    rows = kit.volume_spikes(23)
    kit.write_alerts(alert_table, moto_endpoint, rows)
    return sorted(rows, key=lambda row: row.detected_at, reverse=True)


@pytest.fixture(scope="module")
def base_url(handler: Any) -> Iterator[str]:
    server = LocalApiServer(handler, port=0)
    server.start()
    yield f"http://{server.host}:{server.port}"
    server.stop()


def test_the_threaded_server_serves_every_page_over_http(base_url: str, seeded: list[Any]) -> None:
    ids: list[str] = []
    cursor = None
    while True:
        query = {"symbol": "BTCUSDT", "limit": 10, **({"cursor": cursor} if cursor else {})}
        status, headers, body = get(f"{base_url}/alerts?{urlencode(query)}")
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        ids.extend(alert["alert_id"] for alert in body["alerts"])
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert base_url.startswith("http://127.0.0.1:")
    assert ids == [row.alert_id for row in seeded]


def test_the_threaded_server_passes_errors_through(base_url: str, seeded: list[Any]) -> None:
    bad_status, bad_headers, bad = get(f"{base_url}/alerts?symbol=BTCUSDT&limit=9999")
    missing_status, _, missing = get(f"{base_url}/alerts/{'e' * 32}")
    one_status, _, one = get(f"{base_url}/alerts/{seeded[0].alert_id}")

    assert (bad_status, bad["message"]) == (400, "limit: input should be less than or equal to 500")
    assert bad["request_id"] == bad_headers["apigw-requestid"]
    assert (missing_status, missing["message"]) == (
        404,
        f"alert_id: no alert {'e' * 32} (it may never have existed, or it expired)",
    )
    assert (one_status, one["alert_id"], one["detected_at"]) == (200, seeded[0].alert_id, seeded[0].detected_at_text)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without configuration overrides, plus ``extra``."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("COATTAIL_")}
    return {**environ, **extra}


def serve(arguments: list[str], port: int) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "coattail-api"), "serve", *arguments, "--port", str(port)]
    return subprocess.Popen(command, env=clean_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_healthy(process: subprocess.Popen[bytes], url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"coattail-api exited with {process.returncode}:\n{output}")
        try:
            status, _, body = get(f"{url}/health")
        except OSError:
            time.sleep(0.2)
            continue
        assert status == 200, body
        return dict(body)
    raise AssertionError("coattail-api did not become healthy within 30 s")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_serve_local_starts_moto_and_creates_the_table(kit: Any, tmp_path: Path) -> None:
    config = tmp_path / "features.yaml"
    config.write_text("dynamodb: {table_name: local-alerts}\naws: {region: eu-west-1}\n", encoding="utf-8")
    port = free_port()
    process = serve(["--local", "--config", str(config)], port)
    try:
        health = wait_healthy(process, f"http://127.0.0.1:{port}")
        status, _, body = get(f"http://127.0.0.1:{port}/alerts?symbol=BTCUSDT")
    finally:
        code = stop(process)

    assert health == {"status": "ok", "service": "coattail-api", "version": "0.1.0", "table": "local-alerts"}
    assert (status, body) == (200, {"alerts": [], "count": 0, "next_cursor": None})
    assert code == 0


def test_serve_local_with_an_endpoint_reads_the_local_stack(
    kit: Any, seeded: list[Any], alert_table: str, moto_endpoint: str, tmp_path: Path
) -> None:
    config = kit.write_config(tmp_path, alert_table, "http://127.0.0.1:9")
    port = free_port()
    process = serve(["--local", "--endpoint-url", moto_endpoint, "--config", str(config)], port)
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}")
        status, _, body = get(f"http://127.0.0.1:{port}/alerts?symbol=BTCUSDT&limit=3")
    finally:
        code = stop(process)

    assert status == 200
    assert [alert["alert_id"] for alert in body["alerts"]] == [row.alert_id for row in seeded[:3]]
    assert code == 0


def test_endpoint_url_without_local_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "coattail-api"), "serve", "--endpoint-url", "http://127.0.0.1:9"],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "--endpoint-url is only used with --local" in result.stderr
