"""Serve a Lambda handler over plain HTTP on loopback, the way API Gateway's HTTP API would.

Each request becomes an API Gateway v2.0 event (``rawPath``, ``rawQueryString``,
``queryStringParameters`` with repeated names joined by commas, lower-case ``headers``,
``cookies``, ``requestContext.http``), the handler is called with a local
``LambdaContext``, and its response (``statusCode``, ``headers``, ``cookies``, ``body``,
``isBase64Encoded``) is written back. Routing, validation and errors are the handler's.
Runs in the ``coattail-api serve`` process, one thread per connection, bound to
127.0.0.1 only.

What the server refuses itself, before the handler, the way API Gateway would (its own
``{"message": ...}`` body, ``Connection: close``):

- a request not fully read ``read_timeout`` seconds after its first byte was awaited
  (headers trickled, a ``Content-Length`` larger than the body sent): 408;
- an unreadable or contradictory ``Content-Length``, or a body shorter than it: 400;
- ``Transfer-Encoding`` (chunked bodies; send ``Content-Length``): 411;
- a body over ``MAX_BODY_BYTES``: 413.

A connection that sends nothing, or trickles its headers, is closed without an answer
at the same deadline, so no thread waits on a client for longer than ``read_timeout``.

Example::

    server = LocalApiServer(handler, port=0)   # 127.0.0.1, a free port
    server.start()
    ...  # GET http://127.0.0.1:{server.port}/health
    server.stop()
"""

from __future__ import annotations

import base64
import io
import json
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext

LOOPBACK = "127.0.0.1"
"""The only address the local server binds."""
DEFAULT_PORT = 8080
DEFAULT_READ_TIMEOUT_S = 10.0
"""Seconds a connection may take to deliver one whole request (headers and body)."""
MAX_BODY_BYTES = 10 * 1024 * 1024
"""API Gateway HTTP API's payload limit (10 MB)."""
API_GATEWAY_TIMEOUT_MS = 30_000
"""HTTP API's integration timeout: what ``get_remaining_time_in_millis`` counts down from."""
FUNCTION_NAME = "coattail-api-local"

Handler = Callable[[Mapping[str, Any], LambdaContext], Mapping[str, Any]]


def checked_read_timeout(seconds: float) -> float:
    """``seconds`` if it is a usable read timeout: more than 0, at most API Gateway's 30 s."""
    limit = API_GATEWAY_TIMEOUT_MS / 1000
    if not 0 < seconds <= limit:
        raise ValueError(f"the read timeout must be more than 0 and at most {limit:g} s, got {seconds:g}")
    return seconds


class LocalLambdaContext(LambdaContext):
    """The context Lambda would pass, for one local invocation."""

    def __init__(self, request_id: str, region: str = "us-east-1") -> None:
        self._function_name = FUNCTION_NAME
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:{region}:000000000000:function:{FUNCTION_NAME}"
        self._memory_limit_in_mb = 512
        self._aws_request_id = request_id
        self._log_group_name = f"/aws/lambda/{FUNCTION_NAME}"
        self._log_stream_name = "local"
        self._deadline = time.monotonic() + API_GATEWAY_TIMEOUT_MS / 1000

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        """Milliseconds left before API Gateway would give up on this request."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def http_api_event(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes = b"",
    *,
    source_ip: str = LOOPBACK,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload 2.0) event for one request; ``target`` is path + query."""
    moment = now or datetime.now(UTC)
    split = urlsplit(target)
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": split.path or "/",
        "rawQueryString": split.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": lowered.get("host", LOOPBACK),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": split.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": request_id or uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(moment.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if parameters:
        event["queryStringParameters"] = parameters
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


class _DeadlineReader(io.RawIOBase):
    """Reads a socket until ``deadline`` (``time.monotonic()`` seconds), then raises ``TimeoutError``.

    A socket timeout alone bounds each ``recv``; a client sending a byte just before each
    one would hold the thread forever. This bounds the whole request.
    """

    def __init__(self, connection: socket.socket) -> None:
        super().__init__()
        self._connection = connection
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not received within the read timeout")
        self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


class _RefusedRequestError(Exception):
    """A request the server answers itself (``status``, ``message``) without calling the handler."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HandlerServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket closes only when every file made from it is closed
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        """One request, read within ``read_timeout`` of starting to wait for it."""
        self._reader.deadline = time.monotonic() + self.server.read_timeout
        super().handle_one_request()

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding") is not None:
            message = "Transfer-Encoding is not supported; send Content-Length"
            raise _RefusedRequestError(HTTPStatus.LENGTH_REQUIRED, message)
        values = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if not values:
            return 0
        value = values.pop()
        if values or not (value.isascii() and value.isdigit()) or len(value) > 12:
            raise _RefusedRequestError(HTTPStatus.BAD_REQUEST, "Content-Length must be one whole number of bytes")
        if int(value) > MAX_BODY_BYTES:
            raise _RefusedRequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body exceeds {MAX_BODY_BYTES} bytes")
        return int(value)

    def _body(self) -> bytes:
        """The body announced by ``Content-Length``, read before the request's deadline."""
        length = self._content_length()
        try:
            body = self.rfile.read(length) if length else b""
        except TimeoutError:
            raise _RefusedRequestError(
                HTTPStatus.REQUEST_TIMEOUT,
                f"the body did not arrive within {self.server.read_timeout:g} s (Content-Length {length})",
            ) from None
        if len(body) < length:
            raise _RefusedRequestError(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of {length} bytes")
        return body

    def _refuse(self, refused: _RefusedRequestError) -> None:
        self.close_connection = True
        raw = json.dumps({"message": refused.message}).encode("utf-8")
        self.send_response(refused.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _invoke(self) -> None:
        try:
            body = self._body()
        except _RefusedRequestError as refused:
            self.connection.settimeout(self.server.read_timeout)
            self._refuse(refused)
            return
        self.connection.settimeout(self.server.read_timeout)
        request_id = uuid.uuid4().hex
        event = http_api_event(
            self.command, self.path, self.headers.items(), body, source_ip=self.client_address[0], request_id=request_id
        )
        result = self.server.lambda_handler(event, LocalLambdaContext(request_id, self.server.region))
        payload = result.get("body") or ""
        raw = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode("utf-8")
        self.send_response(int(result.get("statusCode", 200)))
        for name, value in (result.get("headers") or {}).items():
            self.send_header(name, str(value))
        for cookie in result.get("cookies") or []:
            self.send_header("Set-Cookie", cookie)
        self.send_header("apigw-requestid", request_id)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def do_GET(self) -> None:
        self._invoke()

    def do_HEAD(self) -> None:
        self._invoke()

    def do_OPTIONS(self) -> None:
        self._invoke()

    def do_POST(self) -> None:
        self._invoke()

    def do_PUT(self) -> None:
        self._invoke()

    def do_PATCH(self) -> None:
        self._invoke()

    def do_DELETE(self) -> None:
        self._invoke()

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs are the handler's structured logs; stay quiet here."""


class _HandlerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, lambda_handler: Handler, region: str, read_timeout: float) -> None:
        super().__init__((LOOPBACK, port), _RequestHandler)
        self.lambda_handler = lambda_handler
        self.region = region
        self.read_timeout = read_timeout
        self._connections = 0
        self._idle = threading.Condition()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._idle:
            self._connections += 1
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._idle:
                self._connections -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._connections == 0, timeout)


class LocalApiServer:
    """``handler`` behind HTTP on 127.0.0.1:``port`` (0 picks a free port) in a background thread.

    ``read_timeout`` (seconds) bounds how long one request may take to arrive.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        port: int = DEFAULT_PORT,
        region: str = "us-east-1",
        read_timeout: float = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        self._server = _HandlerServer(port, handler, region, checked_read_timeout(read_timeout))
        self._thread = threading.Thread(target=self._server.serve_forever, name="coattail-api-local", daemon=True)

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    def wait_idle(self, timeout: float) -> bool:
        """Whether every connection's thread has finished within ``timeout`` seconds."""
        return self._server.wait_idle(timeout)

    def start(self) -> None:
        """Start serving in a background thread."""
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop`` is called from another thread or Ctrl-C."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop the background thread (if started) and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
