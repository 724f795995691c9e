"""Every route and filter of the API, through the Lambda handler, against moto's DynamoDB."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import pytest

from coattail_api.local import LocalLambdaContext


@pytest.fixture(scope="module")
def seeded(kit: Any, moto_endpoint: str, alert_table: str) -> dict[str, list[Any]]:
    """237 BTCUSDT volume spikes, 5 ETHUSDT ones, whales on ETHUSDT/SOLUSDT, spreads on BTC/USD, ETH/USD."""
    rows = {
        "btc_spikes": kit.volume_spikes(237),
        "eth_spikes": kit.volume_spikes(5, symbol="ETHUSDT", start=1000),
        "whales": [
            kit.whale(0, 150_000.0, symbol="ETHUSDT"),
            kit.whale(1, 847_000.0, symbol="SOLUSDT", side="sell"),
            kit.whale(2, 95_000.5, symbol="ETHUSDT", side="sell"),
            kit.whale(3, 1_200_000.0, symbol="ETHUSDT"),
            kit.whale(4, 500_000.0, symbol="SOLUSDT"),
        ],
        "spreads": [
            kit.spread(0, "binance", "coinbase", 0.31),
            kit.spread(1, "binance", "coinbase", 0.42),
            kit.spread(2, "binance-usdm", "coinbase", 0.55),
            kit.spread(5, "binance", "coinbase", 0.38),
            kit.spread(3, "binance", "coinbase", 0.61, symbol="ETH/USD"),
        ],
    }
    kit.write_alerts(alert_table, moto_endpoint, [row for group in rows.values() for row in group])
    return rows


def newest_first(rows: list[Any]) -> list[str]:
    return [row.alert_id for row in sorted(rows, key=lambda row: row.detected_at, reverse=True)]


def walk(api: Any, path: str, **query: Any) -> list[list[str]]:
    """Every page of a listing, following next_cursor; returns the ids page by page."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        response = api(path, **query, **({"cursor": cursor} if cursor else {}))
        assert response.status == 200, response.body
        pages.append([alert["alert_id"] for alert in response.body["alerts"]])
        assert response.body["count"] == len(pages[-1])
        cursor = response.body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


def test_pagination_walks_237_alerts_in_pages_of_50_without_gaps_or_repeats(api: Any, seeded: Any) -> None:
    pages = walk(api, "/alerts", symbol="BTCUSDT", limit=50)

    assert [len(page) for page in pages] == [50, 50, 50, 50, 37]
    assert [alert_id for page in pages for alert_id in page] == newest_first(seeded["btc_spikes"])


def test_default_limit_is_50_with_a_cursor(api: Any, seeded: Any) -> None:
    response = api("/alerts", symbol="BTCUSDT")

    assert response.body["count"] == 50
    assert [a["alert_id"] for a in response.body["alerts"]] == newest_first(seeded["btc_spikes"])[:50]
    assert response.body["next_cursor"]


def test_limit_500_returns_everything_in_one_page(api: Any, seeded: Any) -> None:
    response = api("/alerts", symbol="BTCUSDT", limit=500)

    assert [a["alert_id"] for a in response.body["alerts"]] == newest_first(seeded["btc_spikes"])
    assert response.body["next_cursor"] is None


def test_severity_filter_fills_every_page_and_continues(api: Any, seeded: Any) -> None:
    expected = newest_first([row for row in seeded["btc_spikes"] if row.severity == "high"])
    pages = walk(api, "/alerts", symbol="BTCUSDT", severity="high", limit=7)

    assert len(expected) == 34
    assert [len(page) for page in pages] == [7, 7, 7, 7, 6]
    assert [alert_id for page in pages for alert_id in page] == expected


def test_alert_type_reads_the_type_index_across_symbols(api: Any, seeded: Any) -> None:
    pages = walk(api, "/alerts", alert_type="volume_spike", limit=100)

    assert [alert_id for page in pages for alert_id in page] == newest_first(
        seeded["btc_spikes"] + seeded["eth_spikes"]
    )


def test_module_id_reads_the_module_index(api: Any, seeded: Any) -> None:
    response = api("/alerts", module_id="MOD-002")

    assert [a["alert_id"] for a in response.body["alerts"]] == newest_first(seeded["whales"])
    assert {a["alert_type"] for a in response.body["alerts"]} == {"whale_trade"}


def test_symbol_with_alert_type_and_severity_filters(api: Any, seeded: Any) -> None:
    whales = api("/alerts", symbol="ETHUSDT", alert_type="whale_trade")
    eth_high = api("/alerts", symbol="ETHUSDT", alert_type="whale_trade", severity="high")
    spikes_by_type = api("/alerts", alert_type="volume_spike", module_id="MOD-001", severity="critical", limit=500)

    eth_whales = [row for row in seeded["whales"] if row.symbol == "ETHUSDT"]
    assert [a["alert_id"] for a in whales.body["alerts"]] == newest_first(eth_whales)
    assert [a["alert_id"] for a in eth_high.body["alerts"]] == newest_first(
        [row for row in eth_whales if row.severity == "high"]
    )
    assert [a["alert_id"] for a in spikes_by_type.body["alerts"]] == newest_first(
        [row for row in seeded["btc_spikes"] + seeded["eth_spikes"] if row.severity == "critical"]
    )


def test_since_and_until_are_inclusive_and_accept_any_time_zone(api: Any, seeded: Any) -> None:
    rows = seeded["btc_spikes"]
    since, until = rows[10].detected_at, rows[20].detected_at
    in_utc = api("/alerts", symbol="BTCUSDT", since=since.isoformat(), until=until.isoformat())
    in_paris = api(
        "/alerts",
        symbol="BTCUSDT",
        since=since.astimezone(timezone(timedelta(hours=2))).isoformat(),
        until=until.astimezone(timezone(timedelta(hours=2))).isoformat(),
    )
    only_since = api("/alerts", symbol="BTCUSDT", since=rows[230].detected_at.isoformat())
    only_until = api("/alerts", symbol="BTCUSDT", until=rows[3].detected_at.isoformat())

    assert [a["alert_id"] for a in in_utc.body["alerts"]] == newest_first(rows[10:21])
    assert in_paris.body == in_utc.body
    assert [a["alert_id"] for a in only_since.body["alerts"]] == newest_first(rows[230:])
    assert [a["alert_id"] for a in only_until.body["alerts"]] == newest_first(rows[:4])


def test_pagination_inside_a_time_range(api: Any, seeded: Any) -> None:
    rows = seeded["btc_spikes"]
    pages = walk(
        api,
        "/alerts",
        symbol="BTCUSDT",
        since=rows[5].detected_at.isoformat(),
        until=rows[64].detected_at.isoformat(),
        limit=25,
    )

    assert [len(page) for page in pages] == [25, 25, 10]
    assert [alert_id for page in pages for alert_id in page] == newest_first(rows[5:65])


def test_get_alert_returns_the_stored_record_with_details_decoded(api: Any, seeded: Any) -> None:
    row = seeded["whales"][1]
    response = api(f"/alerts/{row.alert_id}")

    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.body == {
        "alert_id": row.alert_id,
        "alert_type": "whale_trade",
        "module_id": "MOD-002",
        "symbol": "SOLUSDT",
        "exchange": "binance",
        "severity": "high",
        "detected_at": "2024-08-09T00:04:01.125000Z",
        "message": "SOLUSDT taker sell of 847000",
        "ttl_epoch": row.ttl_epoch,
        "expires_at": "2024-09-08T00:04:01.000000Z",
        "details": dict(row.details),
    }


def test_ttl_attribute_is_stored_and_enabled(api: Any, seeded: Any, dynamodb: Any, alert_table: str) -> None:
    row = seeded["btc_spikes"][0]
    item = dynamodb.get_item(TableName=alert_table, Key={"alert_id": {"S": row.alert_id}})["Item"]
    ttl = dynamodb.describe_time_to_live(TableName=alert_table)["TimeToLiveDescription"]

    assert item["ttl_epoch"] == {"N": str(row.ttl_epoch)}
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl_epoch"}
    assert api(f"/alerts/{row.alert_id}").body["ttl_epoch"] == row.ttl_epoch


def test_missing_alert_is_404(api: Any, seeded: Any) -> None:
    response = api("/alerts/" + "0" * 32)

    assert response.status == 404
    assert response.body["message"].startswith("alert_id: no alert 00000000")
    assert response.body["request_id"]


def test_whales_are_listed_newest_first_with_order_details(api: Any, seeded: Any) -> None:
    response = api("/whales")

    assert [a["alert_id"] for a in response.body["alerts"]] == newest_first(seeded["whales"])
    newest = response.body["alerts"][0]
    assert newest["details"] == dict(seeded["whales"][4].details)
    assert set(newest["details"]) >= {
        "side",
        "notional",
        "base_quantity",
        "fill_count",
        "first_trade_id",
        "last_trade_id",
        "first_price",
        "last_price",
        "vwap_price",
        "impact_bps",
    }


def test_whales_filter_by_min_notional_symbol_and_since(api: Any, seeded: Any) -> None:
    whales = seeded["whales"]
    big = api("/whales", min_notional=500_000)
    eth_big = api("/whales", symbol="ETHUSDT", min_notional=150_000)
    exact_floor = api("/whales", min_notional=95_000.5, symbol="ETHUSDT")
    recent = api("/whales", since=whales[3].detected_at.isoformat())

    assert [a["alert_id"] for a in big.body["alerts"]] == newest_first(
        [w for w in whales if w.details["notional"] >= 500_000]
    )
    assert [a["alert_id"] for a in eth_big.body["alerts"]] == newest_first([whales[0], whales[3]])
    assert [a["alert_id"] for a in exact_floor.body["alerts"]] == newest_first([whales[0], whales[2], whales[3]])
    assert [a["alert_id"] for a in recent.body["alerts"]] == newest_first(whales[3:])


def test_whales_min_notional_pages_continue(api: Any, seeded: Any) -> None:
    pages = walk(api, "/whales", min_notional=150_000, limit=1)

    assert pages == [
        [alert_id] for alert_id in newest_first([w for w in seeded["whales"] if w.details["notional"] >= 150_000])
    ]


def test_spreads_give_the_latest_alert_per_exchange_pair(api: Any, seeded: Any) -> None:
    spreads = seeded["spreads"]
    response = api("/spreads", symbol="BTC/USD")

    assert response.status == 200
    assert response.body["symbol"] == "BTC/USD"
    assert response.body["complete"] is True
    assert [
        (pair["exchange_pair"], pair["exchange_a"], pair["exchange_b"], pair["latest"]["alert_id"])
        for pair in response.body["pairs"]
    ] == [
        ("binance-usdm|coinbase", "binance-usdm", "coinbase", spreads[2].alert_id),
        ("binance|coinbase", "binance", "coinbase", spreads[3].alert_id),
    ]
    assert response.body["pairs"][1]["latest"]["details"]["spread_pct"] == 0.38


def test_spreads_since_and_other_symbols(api: Any, seeded: Any) -> None:
    spreads = seeded["spreads"]
    recent = api("/spreads", symbol="BTC/USD", since=spreads[3].detected_at.isoformat())
    eth = api("/spreads", symbol="ETH/USD")
    none = api("/spreads", symbol="SOL/USD")

    assert [p["latest"]["alert_id"] for p in recent.body["pairs"]] == [spreads[3].alert_id]
    assert [p["latest"]["alert_id"] for p in eth.body["pairs"]] == [spreads[4].alert_id]
    assert none.body == {"symbol": "SOL/USD", "pairs": [], "complete": True}


def test_health_reads_the_table(api: Any, alert_table: str) -> None:
    response = api("/health")

    assert response.status == 200
    assert response.body == {"status": "ok", "service": "coattail-api", "version": "0.1.0", "table": alert_table}


def test_a_documented_api_gateway_event_is_served(handler: Any, seeded: Any) -> None:
    """The handler accepts API Gateway's own v2.0 event (route key, path parameters, JWT claims)."""
    row = seeded["eth_spikes"][0]
    event = {
        "version": "2.0",
        "routeKey": "GET /alerts/{alert_id}",
        "rawPath": f"/alerts/{row.alert_id}",
        "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "authorizer": {"jwt": {"claims": {"sub": "analyst-1"}, "scopes": ["alerts/read"]}},
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "GET",
                "path": f"/alerts/{row.alert_id}",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "agent",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "GET /alerts/{alert_id}",
            "stage": "$default",
            "time": "09/Aug/2024:00:00:00 +0000",
            "timeEpoch": 1723161600000,
        },
        "pathParameters": {"alert_id": row.alert_id},
        "isBase64Encoded": False,
    }

    result = handler(event, LocalLambdaContext("c6af9ac6-7b61-11e6-9a41-93e812345678"))

    assert result["statusCode"] == 200
    assert json.loads(result["body"])["alert_id"] == row.alert_id
