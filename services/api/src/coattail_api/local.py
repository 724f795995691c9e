"""Serve a Lambda handler over plain HTTP on loopback, the way API Gateway's HTTP API would.

Each request becomes an API Gateway v2.0 event (``rawPath``, ``rawQueryString``,
``queryStringParameters`` with repeated names joined by commas, lower-case ``headers``,
``cookies``, ``requestContext.http``), the handler is called with a local
``LambdaContext``, and its response (``statusCode``, ``headers``, ``cookies``, ``body``,
``isBase64Encoded``) is written back. Nothing else happens here: routing, validation and
errors are the handler's. Runs in the ``coattail-api serve`` process, one thread per
request.

Example::

    server = LocalApiServer(handler, port=0)   # 127.0.0.1, a free port
    server.start()
    ...  # GET http://127.0.0.1:{server.port}/health
    server.stop()
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
API_GATEWAY_TIMEOUT_MS = 30_000
"""HTTP API's integration timeout: what ``get_remaining_time_in_millis`` counts down from."""
FUNCTION_NAME = "coattail-api-local"

Handler = Callable[[Mapping[str, Any], LambdaContext], Mapping[str, Any]]


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
    source_ip: str = DEFAULT_HOST,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload 2.0) event for one request; ``target`` is path + query."""
    moment = now or datetime.now(timezone.utc)
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
            "domainName": lowered.get("host", DEFAULT_HOST),
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


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HandlerServer

    def _invoke(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
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

    def __init__(self, address: tuple[str, int], lambda_handler: Handler, region: str) -> None:
        super().__init__(address, _RequestHandler)
        self.lambda_handler = lambda_handler
        self.region = region


class LocalApiServer:
    """``handler`` behind HTTP on ``host:port`` (port 0 picks a free one) in a background thread."""

    def __init__(
        self, handler: Handler, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, region: str = "us-east-1"
    ) -> None:
        self._server = _HandlerServer((host, port), handler, region)
        self._thread = threading.Thread(target=self._server.serve_forever, name="coattail-api-local", daemon=True)

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

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
