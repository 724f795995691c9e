"""Alert items: what the router's writer puts is what the API and the replay read back."""

from __future__ import annotations

from coattail_framework.aws.alert_table import alert_item, decode_alert_item

ROW = {
    "alert_id": "9f2c",
    "module_id": "MOD-002",
    "detected_at": "2024-08-08T23:58:01.123000Z",
    "ttl_epoch": 1799157600,
    "details": '{"notional": 250000.0}',
    "score": 2.5,
    "message": None,
}


def test_an_item_decodes_to_the_row_it_was_made_from_without_its_nulls() -> None:
    decoded = decode_alert_item(alert_item(ROW))

    assert decoded == {name: value for name, value in ROW.items() if value is not None}
    assert type(decoded["ttl_epoch"]) is int
    assert type(decoded["score"]) is float


def test_numbers_are_stored_as_dynamodb_numbers_and_strings_as_strings() -> None:
    item = alert_item(ROW)

    assert item["ttl_epoch"] == {"N": "1799157600"}
    assert item["score"] == {"N": "2.5"}
    assert item["detected_at"] == {"S": "2024-08-08T23:58:01.123000Z"}
    assert "message" not in item


def test_booleans_stay_booleans() -> None:
    assert decode_alert_item({"flag": {"BOOL": True}, "gone": {"NULL": True}}) == {"flag": True, "gone": None}
