"""The producer's HTTP endpoint: ``/healthz`` (liveness/readiness) and ``/metrics``.

Served by aiohttp on the producer's event loop, on 127.0.0.1 unless configured otherwise
(a container that must be probed from outside passes ``--health-host 0.0.0.0``).

- ``GET /healthz``: 200 when every connector's ``health_check()`` passes and the
  publisher is not stalled, else 503; the JSON body names each check and why it failed.
- ``GET /metrics``: Prometheus text; ``?format=json`` (or ``Accept: application/json``)
  gives the same counters as JSON.

Example::

    server = HealthServer("127.0.0.1", 0, report=producer.health_report, metrics=producer.metrics)
    await server.start()
    print(server.port)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from coattail_producer.metrics import Sample, render_json, render_prometheus
from coattail_producer.publisher import LatencyWindow

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Check:
    """One health check: a connector or the publisher."""

    healthy: bool
    detail: str


@dataclass(frozen=True)
class HealthReport:
    """All checks; healthy only when every check is."""

    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True when every check passed."""
        return all(check.healthy for check in self.checks.values())

    def as_json(self) -> dict[str, object]:
        """``{"status": "ok"|"unhealthy", "checks": {name: {"healthy": ..., "detail": ...}}}``."""
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "checks": {name: {"healthy": c.healthy, "detail": c.detail} for name, c in sorted(self.checks.items())},
        }


class HealthServer:
    """Serves ``/healthz`` and ``/metrics`` from the callables it is given."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        report: Callable[[], HealthReport],
        metrics: Callable[[], tuple[list[Sample], LatencyWindow]],
    ) -> None:
        self._host = host
        self._requested_port = port
        self._report = report
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started with port 0)."""
        if self._port is None:
            raise RuntimeError("health server is not started")
        return self._port

    async def start(self) -> None:
        """Bind and serve; returns once the port accepts connections."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port)
        await site.start()
        address = self._runner.addresses[0]
        self._port = int(address[1])

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self._report()
        return web.json_response(report.as_json(), status=200 if report.healthy else 503)

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        samples, latency = self._metrics()
        wants_json = request.query.get("format") == "json" or "application/json" in request.headers.get("Accept", "")
        if wants_json:
            return web.json_response(render_json(samples, latency))
        return web.Response(
            body=render_prometheus(samples, latency).encode("utf-8"),
            headers={"Content-Type": PROMETHEUS_CONTENT_TYPE},
        )
