"""Response bodies of the API, as pydantic models.

Times are ISO 8601 UTC with microseconds and ``Z`` (``2024-08-08T23:58:01.123000Z``),
the same form the table stores. An alert's ``details`` is the detector's JSON payload,
decoded into an object; ``expires_at`` is when DynamoDB's TTL may delete the alert.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer

from coattail_api.store import STORED_TIME_FORMAT, Item, from_stored_time


def _utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime(STORED_TIME_FORMAT)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Alert(_Body):
    """One alert (a ``BASE_ALERT_RECORD`` row) with its details decoded."""

    alert_id: str
    alert_type: str
    module_id: str
    symbol: str
    exchange: str
    severity: str
    detected_at: datetime
    message: str
    ttl_epoch: int | None
    expires_at: datetime | None
    details: dict[str, Any]

    @field_serializer("detected_at", "expires_at")
    def _times(self, moment: datetime | None) -> str | None:
        return _utc_text(moment)

    @classmethod
    def from_item(cls, item: Item) -> Alert:
        """The alert stored as ``item``; raises ``ValueError`` when ``details`` is not a JSON object."""
        ttl = item.get("ttl_epoch")
        ttl_epoch = None if ttl is None else int(ttl)
        details = json.loads(item["details"])
        if not isinstance(details, dict):
            raise ValueError(f"alert {item['alert_id']}: details is not a JSON object")
        return cls(
            alert_id=item["alert_id"],
            alert_type=item["alert_type"],
            module_id=item["module_id"],
            symbol=item["symbol"],
            exchange=item["exchange"],
            severity=item["severity"],
            detected_at=from_stored_time(item["detected_at"]),
            message=item["message"],
            ttl_epoch=ttl_epoch,
            expires_at=None if ttl_epoch is None else datetime.fromtimestamp(ttl_epoch, tz=UTC),
            details=details,
        )


class AlertPage(_Body):
    """One page of alerts, newest first; pass ``next_cursor`` back as ``cursor`` for the next."""

    alerts: list[Alert]
    count: int
    next_cursor: str | None


class VenuePair(_Body):
    """The latest alert about two venues (the alert's ``exchange`` is ``exchange_a|exchange_b``)."""

    exchange_pair: str
    exchange_a: str
    exchange_b: str
    latest: Alert


class PairBoard(_Body):
    """The latest alert per venue pair for one canonical symbol (a ``latest_per_pair`` view).

    ``complete`` is false when the read budget ran out before the symbol's history did;
    narrow the search with ``since`` to be sure no older pair was missed.
    """

    symbol: str
    pairs: list[VenuePair]
    complete: bool


KeyValue = str | int | float | bool | None
"""One ``details`` value a ``latest_per_key`` view groups by: of its declared JSON type, or null."""


class KeyEntry(_Body):
    """The latest alert of one combination of key values: ``key`` maps each ``details`` key the
    view names (in the view's order) to that combination's value."""

    key: dict[str, KeyValue]
    latest: Alert


class KeyBoard(_Body):
    """The latest alert per combination of key values for one venue symbol (a ``latest_per_key``
    view), latest ``detected_at`` first, ties in order of the key values.

    ``complete`` is false when the read budget ran out before the symbol's history did;
    narrow the search with ``since`` to be sure no older combination was missed.
    """

    symbol: str
    entries: list[KeyEntry]
    complete: bool


class Health(_Body):
    """Liveness: the function runs and can read the alert table."""

    status: str
    service: str
    version: str
    table: str
