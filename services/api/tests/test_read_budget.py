"""A listing reads at most the read budget per request, then answers what it found and a cursor.

1,050 SOLUSDT whale alerts of 100,000 quote currency each, one of them (the 401st newest)
of 2,000,000. DynamoDB's own ``Query`` responses are counted through botocore's event hooks
on the client the handler uses: the calls made and the ``ScannedCount`` each reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from coattail_api.app import create_handler
from coattail_framework.aws import aws_client

SMALL = 100_000.0
BIG = 2_000_000.0
WHALES = 1_050
BIG_RANK = 400
"""How many newer alerts precede the big one."""


@dataclass
class QueryLog:
    """The ``ScannedCount`` of every ``Query`` the client made since the last ``take``."""

    scanned: list[int] = field(default_factory=list)

    def record(self, parsed: dict[str, Any], **_: Any) -> None:
        self.scanned.append(int(parsed["ScannedCount"]))

    def take(self) -> list[int]:
        taken, self.scanned = self.scanned, []
        return taken


@pytest.fixture(scope="module")
def seeded(kit: Any, moto_endpoint: str, alert_table: str) -> list[Any]:
    """The whales, newest first."""
    rows = [kit.whale(index, SMALL, symbol="SOLUSDT") for index in range(WHALES)]
    big_index = WHALES - 1 - BIG_RANK
    rows[big_index] = kit.whale(big_index, BIG, symbol="SOLUSDT")
    kit.write_alerts(alert_table, moto_endpoint, rows)
    return sorted(rows, key=lambda row: row.detected_at, reverse=True)


def counted_api(kit: Any, directory: Path, table: str, endpoint: str, **api_env: str) -> tuple[Any, QueryLog]:
    """The handler over ``table`` with a DynamoDB client whose ``Query`` calls are logged."""
    client = aws_client("dynamodb", region="us-east-1", endpoint_url=endpoint)
    log = QueryLog()
    client.meta.events.register("after-call.dynamodb.Query", log.record)
    settings = kit.settings_for(directory, table, endpoint, **api_env)
    return kit.invoker(create_handler(settings, dynamodb_client=client)), log


@pytest.fixture(scope="module")
def budgeted(
    kit: Any, alert_table: str, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, QueryLog]]:
    """The handler with the default read budget (1,000 items)."""
    api, log = counted_api(kit, tmp_path_factory.mktemp("budget"), alert_table, moto_endpoint)
    yield api, log
    log.take()


def test_an_unmatched_floor_answers_an_empty_page_and_a_cursor_after_the_budget(
    budgeted: tuple[Any, QueryLog], seeded: list[Any]
) -> None:
    api, log = budgeted

    first = api("/whales", symbol="SOLUSDT", min_notional="1e15", limit=1)
    first_reads = log.take()
    rest = api("/whales", symbol="SOLUSDT", min_notional="1e15", limit=1, cursor=first.body["next_cursor"])
    rest_reads = log.take()

    assert first.status == 200
    assert (first.body["alerts"], first.body["count"]) == ([], 0)
    assert first.body["next_cursor"]
    assert first_reads == [200, 200, 200, 200, 200]
    assert rest.status == 200
    assert rest.body == {"alerts": [], "count": 0, "next_cursor": None}
    assert rest_reads == [WHALES - 1_000]


def test_a_budgeted_page_returns_what_it_found_and_the_next_one_continues_after_it(
    budgeted: tuple[Any, QueryLog], seeded: list[Any]
) -> None:
    api, log = budgeted

    first = api("/whales", symbol="SOLUSDT", min_notional=BIG, limit=5)
    first_reads = log.take()
    rest = api("/whales", symbol="SOLUSDT", min_notional=BIG, limit=5, cursor=first.body["next_cursor"])
    rest_reads = log.take()

    assert [alert["alert_id"] for alert in first.body["alerts"]] == [seeded[BIG_RANK].alert_id]
    assert first.body["next_cursor"]
    assert first_reads == [200, 200, 200, 200, 200]
    assert rest.body == {"alerts": [], "count": 0, "next_cursor": None}
    assert rest_reads == [WHALES - 1_000]


def test_an_unfiltered_page_reads_only_what_it_returns(budgeted: tuple[Any, QueryLog], seeded: list[Any]) -> None:
    api, log = budgeted

    page = api("/alerts", symbol="SOLUSDT", limit=500)

    assert [alert["alert_id"] for alert in page.body["alerts"]] == [row.alert_id for row in seeded[:500]]
    assert page.body["next_cursor"]
    assert log.take() == [501]


def test_walking_a_filtered_listing_returns_every_match_once(budgeted: tuple[Any, QueryLog], seeded: list[Any]) -> None:
    api, log = budgeted
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        response = api(
            "/whales", symbol="SOLUSDT", min_notional=SMALL, limit=500, **({"cursor": cursor} if cursor else {})
        )
        ids.extend(alert["alert_id"] for alert in response.body["alerts"])
        pages += 1
        cursor = response.body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"

    assert ids == [row.alert_id for row in seeded]
    assert log.take() == [501, 501, WHALES - 1_000]


def test_the_budget_is_a_setting(
    kit: Any, alert_table: str, moto_endpoint: str, seeded: list[Any], tmp_path: Path
) -> None:
    api, log = counted_api(kit, tmp_path, alert_table, moto_endpoint, COATTAIL_API_READ_BUDGET="300")

    page = api("/whales", symbol="SOLUSDT", min_notional="1e15", limit=1)
    spreads = api("/spreads", symbol="SOL/USD")

    assert (page.body["count"], bool(page.body["next_cursor"])) == (0, True)
    assert log.take() == [200, 100, 0]
    assert spreads.body == {"symbol": "SOL/USD", "pairs": [], "complete": True}
