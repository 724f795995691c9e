"""The local server answers over real HTTP: in a thread, and as ``coattail-api serve --local``; slow,
false or unreadable requests are answered within the read timeout and free their thread."""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from coattail_api.cli import main
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


READ_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def impatient(handler: Any) -> Iterator[LocalApiServer]:
    """A server that gives each request half a second to arrive."""
    server = LocalApiServer(handler, port=0, read_timeout=READ_TIMEOUT)
    server.start()
    yield server
    server.stop()


@dataclass(frozen=True)
class RawAnswer:
    status: int | None
    body: Any
    seconds: float
    closed: bool


def exchange(server: LocalApiServer, head: bytes, body: bytes = b"", *, trickle: bytes = b"") -> RawAnswer:
    """Send ``head`` and ``body`` on one socket, then ``trickle`` one byte per 0.1 s while the server
    has not answered; read until the server closes. ``status`` is None when it closed without answering."""
    with socket.create_connection((server.host, server.port), timeout=READ_TIMEOUT * 10) as client:
        started = time.monotonic()
        client.sendall(head + body)
        answered = threading.Event()

        def drip() -> None:
            for byte in trickle:
                if answered.wait(0.1):
                    return
                try:
                    client.sendall(bytes([byte]))
                except OSError:
                    return

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        received = b""
        while chunk := client.recv(65536):
            received += chunk
            answered.set()
        seconds = time.monotonic() - started
        answered.set()
        dripper.join(timeout=5)
    if not received:
        return RawAnswer(None, None, seconds, closed=True)
    status_line, _, rest = received.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    return RawAnswer(int(status_line.split()[1]), json.loads(payload) if payload else None, seconds, closed=True)


def test_a_false_content_length_is_a_408_within_the_read_timeout_and_frees_the_thread(
    impatient: LocalApiServer, seeded: list[Any]
) -> None:
    head = b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"

    answer = exchange(impatient, head, b"only 17 bytes ...")

    assert answer.status == 408
    assert answer.body == {"message": "the body did not arrive within 0.5 s (Content-Length 100)"}
    assert READ_TIMEOUT <= answer.seconds < READ_TIMEOUT + 1.5
    assert answer.closed
    assert impatient.wait_idle(timeout=2.0)
    assert get(f"http://{impatient.host}:{impatient.port}/health")[0] == 200


def test_an_absent_body_is_a_408(impatient: LocalApiServer, seeded: list[Any]) -> None:
    answer = exchange(impatient, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n")

    assert (answer.status, answer.body) == (
        408,
        {"message": "the body did not arrive within 0.5 s (Content-Length 10)"},
    )
    assert impatient.wait_idle(timeout=2.0)


def test_a_body_trickled_byte_by_byte_still_ends_at_the_read_timeout(
    impatient: LocalApiServer, seeded: list[Any]
) -> None:
    """Each byte comes well inside a socket timeout; the request as a whole does not."""
    head = b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n"

    answer = exchange(impatient, head, trickle=b"x" * 50)

    assert answer.status == 408
    assert answer.seconds < READ_TIMEOUT + 1.5
    assert impatient.wait_idle(timeout=2.0)


def test_trickled_headers_are_cut_off_at_the_read_timeout(impatient: LocalApiServer, seeded: list[Any]) -> None:
    answer = exchange(impatient, b"GET /health HTTP/1.1\r\n", trickle=b"X-Slow: " + b"s" * 40)

    assert (answer.status, answer.closed) == (None, True)
    assert answer.seconds < READ_TIMEOUT + 1.5
    assert impatient.wait_idle(timeout=2.0)


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        (b"Content-Length: ten\r\n", 400, "Content-Length must be one whole number of bytes"),
        (b"Content-Length: -1\r\n", 400, "Content-Length must be one whole number of bytes"),
        (b"Content-Length: 1\r\nContent-Length: 2\r\n", 400, "Content-Length must be one whole number of bytes"),
        (b"Content-Length: 99999999999\r\n", 413, "the body exceeds 10485760 bytes"),
        (b"Transfer-Encoding: chunked\r\n", 411, "Transfer-Encoding is not supported; send Content-Length"),
    ],
)
def test_unreadable_bodies_are_refused_at_once(
    impatient: LocalApiServer, seeded: list[Any], headers: bytes, status: int, message: str
) -> None:
    answer = exchange(impatient, b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")

    assert (answer.status, answer.body) == (status, {"message": message})
    assert answer.seconds < READ_TIMEOUT


def test_a_body_shorter_than_announced_is_a_400(impatient: LocalApiServer, seeded: list[Any]) -> None:
    with socket.create_connection((impatient.host, impatient.port), timeout=5) as client:
        client.sendall(b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc")
        client.shutdown(socket.SHUT_WR)
        received = b"".join(iter(lambda: client.recv(65536), b""))

    assert received.split()[1] == b"400"
    assert json.loads(received.partition(b"\r\n\r\n")[2]) == {"message": "the body ended after 3 of 10 bytes"}


def test_a_wrong_method_over_http_is_a_405_with_allow(base_url: str, seeded: list[Any]) -> None:
    request = urllib.request.Request(f"{base_url}/alerts", data=b"{}", method="POST")  # noqa: S310 - loopback
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310

    assert (refused.value.code, refused.value.headers["Allow"]) == (405, "GET")


def test_the_server_binds_loopback_only(handler: Any) -> None:
    server = LocalApiServer(handler, port=0)
    try:
        assert server.host == "127.0.0.1"
    finally:
        server.stop()
    assert "host" not in inspect.signature(LocalApiServer).parameters
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--host", "0.0.0.0"])  # noqa: S104 - the option no longer exists
    assert refused.value.code == 2


def test_the_read_timeout_is_bounded_by_api_gateways(handler: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="the read timeout must be more than 0 and at most 30 s, got 31"):
        LocalApiServer(handler, port=0, read_timeout=31)
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--read-timeout", "0"])

    assert refused.value.code == 2
    assert "--read-timeout: the read timeout must be more than 0 and at most 30 s, got 0" in capsys.readouterr().err
