"""The DynamoDB alert table, defined once for the local stack, the router, the API and AWS.

Items are ``BASE_ALERT_RECORD`` rows: ``detected_at`` as an ISO 8601 UTC string
(``2024-08-08T23:58:01.123000Z``, sorts as time), ``ttl_epoch`` as a number, ``details``
as a JSON string, plus the index keys below. Every query the API makes hits the key or
an index; nothing scans. ``alert_item`` encodes a row as an item (the router's writer, on
executors); ``decode_alert_item`` reads one back (the API, the replay).

- key: ``alert_id``
- ``by_symbol``: ``symbol`` + ``detected_at`` — alerts for a symbol in a time range.
- ``by_type``: ``alert_type`` + ``detected_at`` — alerts of a type in a time range.
- ``by_module``: ``module_id`` + ``detected_at`` — alerts of a module in a time range.
- TTL attribute: ``ttl_epoch`` = the time the alert is written + ``dynamodb.ttl_days``
  (``ttl_epoch``, below), never its event time: a replayed or reprocessed alert detected
  long ago lives as long as a live one instead of being deleted at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

KEY = "alert_id"
SORT_ATTRIBUTE = "detected_at"
TTL_ATTRIBUTE = "ttl_epoch"
INDEXES: dict[str, str] = {"by_symbol": "symbol", "by_type": "alert_type", "by_module": "module_id"}
"""Global secondary index name -> its partition key (sort key ``detected_at`` for all)."""

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def ttl_epoch(written_at: datetime, ttl_days: int) -> int:
    """Whole seconds since the epoch (UTC) after which DynamoDB may delete an alert written at ``written_at``.

    ``written_at`` is the wall-clock time of the write, timezone-aware (any zone); the
    alert's own ``detected_at`` plays no part. Pure; the alert router calls it on the driver,
    once per micro-batch, and the executors write the value as given.

    >>> from datetime import timezone
    >>> ttl_epoch(datetime(2026, 12, 6, 14, 0, 0, 900000, tzinfo=timezone.utc), 30)
    1799157600
    """
    if written_at.tzinfo is None or written_at.utcoffset() is None:
        raise ValueError(f"written_at must be timezone-aware (UTC wall clock), got naive {written_at.isoformat()}")
    return int((written_at + timedelta(days=ttl_days)).timestamp())


def alert_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """The DynamoDB item (low-level attribute values) of one alert row; nulls are left out.

    Numbers become ``Decimal`` (DynamoDB's number type); strings stay strings.

    >>> alert_item({"alert_id": "a1", "ttl_epoch": 1799157600, "symbol": None})
    {'alert_id': {'S': 'a1'}, 'ttl_epoch': {'N': '1799157600'}}
    """
    item = {}
    for name, value in row.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = Decimal(repr(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        item[name] = _SERIALIZER.serialize(value)
    return item


def decode_alert_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An alert item as ``GetItem``, ``Query`` or ``Scan`` return it, as plain values (``alert_item`` reversed).

    Strings stay strings; numbers become ``int`` when whole, else ``float``; only the
    attributes the item holds appear (``alert_item`` leaves nulls out).

    >>> decode_alert_item({"alert_id": {"S": "a1"}, "ttl_epoch": {"N": "1799157600"}})
    {'alert_id': 'a1', 'ttl_epoch': 1799157600}
    """
    return {name: _plain(_DESERIALIZER.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def table_definition(table_name: str) -> dict[str, Any]:
    """``create_table`` arguments: on-demand billing, key, and the indexes (all attributes)."""
    attributes = {KEY, SORT_ATTRIBUTE, *INDEXES.values()}
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)],
        "KeySchema": [{"AttributeName": KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": partition, "KeyType": "HASH"},
                    {"AttributeName": SORT_ATTRIBUTE, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, partition in INDEXES.items()
        ],
    }


def ensure_table(client: Any, table_name: str) -> None:
    """Create the table and enable TTL if it does not exist yet (idempotent)."""
    try:
        client.describe_table(TableName=table_name)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    client.create_table(**table_definition(table_name))
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
