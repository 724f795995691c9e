"""Fixtures: moto's DynamoDB on 127.0.0.1, alert tables in the framework's layout, a handler.

Alerts are written by the alert router's own writer (``coattail_framework.sinks``) from
``BASE_ALERT_RECORD`` rows shaped as its ``dynamodb_rows`` hands them over
(``detected_at`` ISO 8601 UTC with microseconds and ``Z``, ``details`` a JSON string,
``ttl_epoch`` seconds). moto, fake credentials and ``spark`` come from the test kit's
pytest plugin (``coattail_devstack.testing.fixtures``, loaded through its entry point).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from coattail_api.app import LambdaHandler, create_handler
from coattail_api.local import LocalLambdaContext, http_api_event
from coattail_api.settings import ApiSettings, load_settings
from coattail_framework.alerts import make_alert_id
from coattail_framework.aws import aws_client
from coattail_framework.aws.alert_table import ensure_table
from coattail_framework.sinks.dynamodb import DynamoAlertWriter

REGION = "us-east-1"
CURSOR_KEY = "test-cursor-key-0123456789abcdef0123456789"
BASE_TIME = datetime(2024, 8, 8, 23, 54, 0, 125000, tzinfo=UTC)
TTL_DAYS = 30


@pytest.fixture(scope="session")
def dynamodb(moto_endpoint: str) -> Any:
    """A DynamoDB client on moto."""
    return aws_client("dynamodb", region=REGION, endpoint_url=moto_endpoint)


@dataclass(frozen=True)
class AlertRow:
    """One ``BASE_ALERT_RECORD`` row as a detector emits it."""

    alert_type: str
    module_id: str
    symbol: str
    exchange: str
    severity: str
    detected_at: datetime
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def alert_id(self) -> str:
        return make_alert_id(self.module_id, self.exchange, self.symbol, self.detected_at.isoformat())

    @property
    def ttl_epoch(self) -> int:
        return int((self.detected_at + timedelta(days=TTL_DAYS)).timestamp())

    @property
    def detected_at_text(self) -> str:
        return self.detected_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def record(self) -> dict[str, Any]:
        """The ``BASE_ALERT_RECORD`` row as the router hands it to its DynamoDB writer."""
        return {
            "alert_id": self.alert_id,
            "alert_type": self.alert_type,
            "module_id": self.module_id,
            "symbol": self.symbol,
            "exchange": self.exchange,
            "severity": self.severity,
            "detected_at": self.detected_at_text,
            "message": self.message,
            "ttl_epoch": self.ttl_epoch,
            "details": json.dumps(dict(self.details), sort_keys=True, separators=(",", ":")),
        }


def write_alerts(table_name: str, endpoint: str, rows: list[AlertRow]) -> None:
    """Write ``rows`` with the alert router's own writer (conditional put per alert id)."""
    writer = DynamoAlertWriter(table_name=table_name, region=REGION, endpoint_url=endpoint)
    counts = writer.write_rows(row.record() for row in rows)
    assert (counts.written, counts.duplicates) == (len(rows), 0)


SEVERITY_CYCLE = ("low", "medium", "high", "critical", "low", "medium", "low")


def volume_spikes(count: int, *, symbol: str = "BTCUSDT", exchange: str = "binance", start: int = 0) -> list[AlertRow]:
    """``count`` MOD-001 alerts one second apart (plus a microsecond offset), severities cycling."""
    rows = []
    for index in range(start, start + count):
        moment = BASE_TIME + timedelta(seconds=index, microseconds=index)
        rows.append(
            AlertRow(
                alert_type="volume_spike",
                module_id="MOD-001",
                symbol=symbol,
                exchange=exchange,
                severity=SEVERITY_CYCLE[index % len(SEVERITY_CYCLE)],
                detected_at=moment,
                message=f"{symbol} quote volume z-score {3 + index % 5}.0",
                details={
                    "window_start": (moment - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
                    "window_end": moment.isoformat().replace("+00:00", "Z"),
                    "quote_volume": 1_000_000.0 + index,
                    "z_score": 3.0 + index % 5,
                },
            )
        )
    return rows


def whale(index: int, notional: float, *, symbol: str = "BTCUSDT", side: str = "buy") -> AlertRow:
    """One MOD-002 alert: a taker order of ``notional`` quote currency."""
    moment = BASE_TIME + timedelta(minutes=10, seconds=index)
    price = 60_000.0 + index
    return AlertRow(
        alert_type="whale_trade",
        module_id="MOD-002",
        symbol=symbol,
        exchange="binance",
        severity="high" if notional >= 500_000 else "medium",
        detected_at=moment,
        message=f"{symbol} taker {side} of {notional:.0f}",
        details={
            "side": side,
            "notional": notional,
            "base_quantity": notional / price,
            "fill_count": 3 + index,
            "first_trade_id": 1000 * index,
            "last_trade_id": 1000 * index + 2 + index,
            "first_price": price,
            "last_price": price + 5,
            "vwap_price": price + 2,
            "impact_bps": 0.8,
        },
    )


def spread(index: int, exchange_a: str, exchange_b: str, spread_pct: float, symbol: str = "BTC/USD") -> AlertRow:
    """One MOD-003 alert between two venues for a canonical symbol."""
    moment = BASE_TIME + timedelta(minutes=20, seconds=index)
    return AlertRow(
        alert_type="spread_divergence",
        module_id="MOD-003",
        symbol=symbol,
        exchange=f"{exchange_a}|{exchange_b}",
        severity="medium",
        detected_at=moment,
        message=f"{symbol} {exchange_a} vs {exchange_b}: {spread_pct:.2f}%",
        details={
            "canonical_symbol": symbol,
            "exchange_a": exchange_a,
            "exchange_b": exchange_b,
            "vwap_a": 60_000.0,
            "vwap_b": 60_000.0 * (1 + spread_pct / 100),
            "spread_pct": spread_pct,
            "window_start": (moment - timedelta(seconds=10)).isoformat().replace("+00:00", "Z"),
            "window_end": moment.isoformat().replace("+00:00", "Z"),
        },
    )


def new_table(client: Any) -> str:
    """A fresh alert table (the framework's definition) with a unique name."""
    name = f"alerts-{uuid.uuid4().hex[:12]}"
    ensure_table(client, name)
    return name


def write_config(directory: Path, table_name: str, endpoint: str) -> Path:
    """A configuration file naming the table and moto's endpoint."""
    path = directory / "features.yaml"
    path.write_text(
        f"dynamodb: {{table_name: {table_name}, ttl_days: {TTL_DAYS}}}\n"
        f"aws: {{region: {REGION}, endpoint_url: '{endpoint}'}}\n",
        encoding="utf-8",
    )
    return path


def settings_for(directory: Path, table_name: str, endpoint: str, **api_env: str) -> ApiSettings:
    """Settings loaded the way the Lambda loads them (config file + ``COATTAIL_API_*``)."""
    environ = {"COATTAIL_API_CURSOR_KEY": CURSOR_KEY, **api_env}
    return load_settings(environ, write_config(directory, table_name, endpoint))


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any
    raw: str


Invoke = Callable[..., ApiResponse]


def signed_cursor(payload: bytes, key: str = CURSOR_KEY) -> str:
    """A cursor over any ``payload``, signed the way the API signs (what a holder of the key could forge)."""

    def encode(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    return f"{encode(payload)}.{encode(hmac.new(key.encode(), payload, hashlib.sha256).digest())}"


def invoker(handler: LambdaHandler) -> Invoke:
    """``invoke(path, headers=..., method=..., **query)``: one API Gateway v2.0 event through ``handler``."""

    def invoke(
        path: str, *, headers: Mapping[str, str] | None = None, method: str = "GET", **query: Any
    ) -> ApiResponse:
        target = f"{path}?{urlencode(query)}" if query else path
        event = http_api_event(method, target, list((headers or {}).items()))
        result = handler(event, LocalLambdaContext(event["requestContext"]["requestId"]))
        raw = result.get("body") or ""
        return ApiResponse(
            int(result["statusCode"]), dict(result.get("headers") or {}), json.loads(raw) if raw else None, raw
        )

    return invoke


@pytest.fixture(scope="module")
def alert_table(dynamodb: Any) -> str:
    """A table per test module."""
    return new_table(dynamodb)


@pytest.fixture(scope="module")
def handler(alert_table: str, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> LambdaHandler:
    """The Lambda handler over this module's table, configured the way the Lambda is."""
    return create_handler(settings_for(tmp_path_factory.mktemp("config"), alert_table, moto_endpoint))


@pytest.fixture(scope="module")
def api(handler: LambdaHandler) -> Invoke:
    """``api(path, **query)``: a GET through the handler, as API Gateway would send it."""
    return invoker(handler)


class Kit:
    """The helpers above, for test modules (which cannot import conftest under importlib mode)."""

    AlertRow = AlertRow
    BASE_TIME = BASE_TIME
    CURSOR_KEY = CURSOR_KEY
    volume_spikes = staticmethod(volume_spikes)
    whale = staticmethod(whale)
    spread = staticmethod(spread)
    write_alerts = staticmethod(write_alerts)
    new_table = staticmethod(new_table)
    write_config = staticmethod(write_config)
    settings_for = staticmethod(settings_for)
    invoker = staticmethod(invoker)
    signed_cursor = staticmethod(signed_cursor)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    """Row builders, table and handler factories."""
    return Kit
