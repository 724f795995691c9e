"""The API reads what the alert router writes: same time format, same severities, same item."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

from coattail_api.app import Severity
from coattail_api.store import STORED_TIME_FORMAT, from_stored_time, to_stored_time
from coattail_framework.aws.alert_table import alert_item
from coattail_framework.schemas import SEVERITIES
from coattail_framework.sinks.dynamodb import DETECTED_AT_FORMAT

JAVA_TO_STRFTIME = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))


def test_detected_at_format_is_the_routers() -> None:
    pattern = DETECTED_AT_FORMAT.replace("'", "").replace("SSSSSS", "%f")
    for java, strftime in JAVA_TO_STRFTIME:
        pattern = pattern.replace(java, strftime)
    moment = datetime(2024, 8, 8, 23, 58, 1, 123000, tzinfo=UTC)

    assert pattern == STORED_TIME_FORMAT
    assert to_stored_time(moment) == "2024-08-08T23:58:01.123000Z"
    assert from_stored_time("2024-08-08T23:58:01.123000Z") == moment


def test_the_api_severity_choices_are_the_frameworks() -> None:
    assert get_args(Severity) == SEVERITIES


def test_router_items_are_served_field_for_field(kit: Any, api: Any, moto_endpoint: str, alert_table: str) -> None:
    row = kit.whale(7, 250_000.0)
    kit.write_alerts(alert_table, moto_endpoint, [row])

    body = api(f"/alerts/{row.alert_id}").body

    assert set(alert_item(row.record())) == {*body} - {"expires_at"}
    assert body["detected_at"] == row.detected_at_text
    assert body["details"] == dict(row.details)
