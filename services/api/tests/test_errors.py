"""Bad input is a 400 naming the parameter, a missing alert a 404, a failure a 500 with a request id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coattail_api.app import create_handler


@pytest.fixture(scope="module")
def seeded(kit: Any, moto_endpoint: str, alert_table: str) -> list[Any]:
    rows = kit.volume_spikes(12) + kit.volume_spikes(3, symbol="ETHUSDT", start=100)
    kit.write_alerts(alert_table, moto_endpoint, rows)
    return rows


def assert_error(response: Any, status: int, starts_with: str) -> None:
    assert response.status == status, response.body
    assert response.body["statusCode"] == status
    assert response.body["message"].startswith(starts_with), response.body["message"]
    assert len(response.body["request_id"]) == 32
    assert "Traceback" not in response.raw
    assert 'File "' not in response.raw


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("/alerts", {"symbol": "btcusdt"}, "symbol: must be an upper-case symbol"),
        ("/alerts", {"symbol": "BTC USDT"}, "symbol: must be an upper-case symbol"),
        ("/alerts", {"alert_type": "Whale-Trade"}, "alert_type: must be a lower-case alert type"),
        ("/alerts", {"module_id": "whale"}, "module_id: must be a module id"),
        ("/alerts", {"symbol": "BTCUSDT", "severity": "extreme"}, "severity: input should be"),
        ("/alerts", {"symbol": "BTCUSDT", "since": "yesterday"}, "since: must be an ISO 8601 time"),
        ("/alerts", {"symbol": "BTCUSDT", "since": "2024-13-01T00:00:00Z"}, "since: must be an ISO 8601 time"),
        ("/alerts", {"symbol": "BTCUSDT", "until": "2024-08-08T00:00:00"}, "until: must be an ISO 8601 time"),
        ("/alerts", {"symbol": "BTCUSDT", "since": "1969-12-31T23:59:59Z"}, "since: must be from 1970-01-01T00:00:00Z"),
        ("/alerts", {"symbol": "BTCUSDT", "since": "1723161600"}, "since: must be an ISO 8601 time"),
        ("/alerts", {"symbol": "BTCUSDT", "until": "2024-08-08"}, "until: must be an ISO 8601 time"),
        ("/alerts", {"symbol": "BTCUSDT", "until": "2100-01-01T00:00:00Z"}, "until: must be from 1970-01-01T00:00:00Z"),
        ("/alerts", {"symbol": "BTCUSDT", "limit": "5\n"}, "limit: must be printable text"),
        (
            "/alerts",
            {"symbol": "BTCUSDT", "since": "2024-08-09T00:00:00Z", "until": "2024-08-08T00:00:00Z"},
            "since: must not be after until",
        ),
        ("/alerts", {"symbol": "BTCUSDT", "limit": "0"}, "limit: input should be greater than or equal to 1"),
        ("/alerts", {"symbol": "BTCUSDT", "limit": "501"}, "limit: input should be less than or equal to 500"),
        ("/alerts", {"symbol": "BTCUSDT", "limit": "ten"}, "limit: input should be a valid integer"),
        ("/alerts", {"symbol": "BTCUSDT", "cursor": "abc"}, "cursor: not a cursor issued by this API"),
        ("/alerts", {"symbol": "BTCUSDT", "cursor": "e30.e30"}, "cursor: signature does not match"),
        ("/alerts", {}, "symbol, alert_type or module_id: give at least one"),
        ("/alerts", {"severity": "high"}, "symbol, alert_type or module_id: give at least one"),
        ("/alerts", {"symbol": "BTCUSDT", "sort": "asc"}, "sort: unknown parameter"),
        ("/alerts/not-an-id", {}, "alert_id: must be 32 lower-case hex characters"),
        ("/health", {"verbose": "1"}, "verbose: unknown parameter; this route takes no parameters"),
        ("/whales", {"min_notional": "-1"}, "min_notional: input should be greater than or equal to 0"),
        ("/whales", {"min_notional": "nan"}, "min_notional: input should be"),
        ("/whales", {"min_notional": "inf"}, "min_notional: input should be less than or equal to 1"),
        ("/whales", {"min_notional": "1e16"}, "min_notional: input should be less than or equal to 1"),
        ("/whales", {"symbol": "eth"}, "symbol: must be an upper-case symbol"),
        ("/spreads", {}, "symbol: field required"),
        ("/spreads", {"symbol": "BTCUSDT"}, "symbol: must be a canonical BASE/QUOTE symbol"),
        ("/spreads", {"symbol": "BTC/USD", "since": "soon"}, "since: must be an ISO 8601 time"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    api: Any, seeded: Any, path: str, query: dict[str, str], parameter: str
) -> None:
    assert_error(api(path, **query), 400, parameter)


def test_a_tampered_cursor_is_refused(api: Any, seeded: Any) -> None:
    cursor = api("/alerts", symbol="BTCUSDT", limit=5).body["next_cursor"]
    payload, signature = cursor.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]

    assert_error(api("/alerts", symbol="BTCUSDT", limit=5, cursor=f"{flipped}.{signature}"), 400, "cursor: ")
    assert api("/alerts", symbol="BTCUSDT", limit=5, cursor=cursor).status == 200


def test_a_cursor_from_another_query_is_refused(api: Any, seeded: Any) -> None:
    cursor = api("/alerts", symbol="BTCUSDT", limit=5).body["next_cursor"]

    assert_error(api("/alerts", symbol="ETHUSDT", limit=5, cursor=cursor), 400, "cursor: issued for different query")
    assert_error(
        api("/alerts", symbol="BTCUSDT", severity="low", cursor=cursor), 400, "cursor: issued for different query"
    )
    assert_error(api("/whales", symbol="BTCUSDT", cursor=cursor), 400, "cursor: issued for different query")
    page_size_changed = api("/alerts", symbol="BTCUSDT", limit=7, cursor=cursor)
    assert [a["alert_id"] for a in page_size_changed.body["alerts"]] == [
        row.alert_id for row in sorted(seeded[:12], key=lambda row: row.detected_at, reverse=True)[5:12]
    ]


def test_a_cursor_signed_with_another_key_is_refused(
    api: Any, seeded: Any, kit: Any, alert_table: str, moto_endpoint: str, tmp_path: Path
) -> None:
    other = kit.invoker(
        create_handler(
            kit.settings_for(
                tmp_path, alert_table, moto_endpoint, COATTAIL_API_CURSOR_KEY="another-key-of-at-least-32-bytes-long"
            )
        )
    )
    cursor = other("/alerts", symbol="BTCUSDT", limit=5).body["next_cursor"]

    assert_error(api("/alerts", symbol="BTCUSDT", limit=5, cursor=cursor), 400, "cursor: signature does not match")


def test_missing_alert_and_unknown_route_are_404(api: Any, seeded: Any) -> None:
    assert_error(api("/alerts/" + "f" * 32), 404, "alert_id: no alert ffffffff")
    assert_error(api("/alarms"), 404, "no route /alarms")
    assert_error(api("/alarms", method="POST"), 404, "no route /alarms")


def test_a_failing_table_is_a_500_with_only_a_request_id(
    kit: Any, moto_endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = kit.invoker(create_handler(kit.settings_for(tmp_path, "no-such-table", moto_endpoint)))

    response = broken("/alerts", symbol="BTCUSDT")
    health = broken("/health")

    assert response.status == 500
    assert response.body["message"] == "internal error; quote the request_id when reporting it"
    assert "Traceback" not in response.raw
    assert "ResourceNotFoundException" not in response.raw
    (logged,) = [record for record in caplog.records if record.getMessage() == "unhandled error"]
    assert logged.request_id == response.body["request_id"]  # type: ignore[attr-defined]
    assert logged.exc_info is not None
    assert "ResourceNotFoundException" in str(logged.exc_info[1])
    assert_error(health, 503, "the alert table cannot be read")


def test_a_corrupt_item_is_a_500_not_a_stack_trace(kit: Any, dynamodb: Any, moto_endpoint: str, tmp_path: Path) -> None:
    table = kit.new_table(dynamodb)
    row = kit.volume_spikes(1)[0]
    item = {name: {"N": str(value)} if name == "ttl_epoch" else {"S": value} for name, value in row.record().items()}
    item["details"] = {"S": "{not json"}
    dynamodb.put_item(TableName=table, Item=item)
    api = kit.invoker(create_handler(kit.settings_for(tmp_path, table, moto_endpoint)))

    assert_error(api(f"/alerts/{row.alert_id}"), 500, "internal error")


def test_cors_headers_follow_configuration(kit: Any, alert_table: str, moto_endpoint: str, tmp_path: Path) -> None:
    settings = kit.settings_for(
        tmp_path,
        alert_table,
        moto_endpoint,
        COATTAIL_API_CORS_ALLOW_ORIGINS="https://desk.example.com, https://ops.example.com",
    )
    api = kit.invoker(create_handler(settings))

    allowed = api("/health", headers={"Origin": "https://ops.example.com"})
    refused = api("/health", headers={"Origin": "https://evil.example.com"})
    preflight = api(
        "/alerts",
        method="OPTIONS",
        headers={"Origin": "https://desk.example.com", "Access-Control-Request-Method": "GET"},
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ops.example.com"
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://desk.example.com"


def test_cors_is_off_by_default(api: Any) -> None:
    assert "Access-Control-Allow-Origin" not in api("/health", headers={"Origin": "https://desk.example.com"}).headers
