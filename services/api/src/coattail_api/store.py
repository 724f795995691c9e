"""Reads from the DynamoDB alert table: one item by id, or a newest-first page of an index.

Runs in the API process (Lambda or the local server). The table layout is the
framework's (``coattail_framework.aws.alert_table``); every read is a ``GetItem`` or a
``Query`` on an index partition, never a scan.

Pages are exact: ``page`` keeps querying until it holds ``limit`` matching alerts plus one
more (so it knows another page exists), and the position it hands back is the key of the
last alert it returned, not DynamoDB's ``LastEvaluatedKey``. Filters (DynamoDB
``FilterExpression`` and Python predicates on decoded details) therefore never cause gaps
or repeats. A page stops early, short or even empty, only when DynamoDB has evaluated
``read_budget`` items for it (``ScannedCount``, counted before filters; no single
``Query`` asks for more than what is left of the budget); its position is then DynamoDB's
``LastEvaluatedKey``, so the next page resumes exactly where the reading stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from coattail_api.cursor import StartKey
from coattail_framework.aws.alert_table import INDEXES, KEY, SORT_ATTRIBUTE, decode_alert_item

STORED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""How ``detected_at`` is stored: ISO 8601 UTC with microseconds and ``Z`` (sorts as time)."""

FILTERED_READ_SIZE = 200
"""Items asked of DynamoDB per call when a filter may drop some (fewer round trips)."""

Item = dict[str, Any]


def to_stored_time(moment: datetime) -> str:
    """``moment`` (timezone-aware) in the stored ``detected_at`` format, in UTC."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return moment.astimezone(UTC).strftime(STORED_TIME_FORMAT)


def from_stored_time(text: str) -> datetime:
    """A stored ``detected_at`` as an aware UTC datetime."""
    return datetime.strptime(text, STORED_TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class IndexQuery:
    """Alerts in one partition of one index, optionally within ``[since, until]`` (inclusive).

    ``equals`` adds ``attribute = value`` filters (a DynamoDB ``FilterExpression``).
    """

    index: str
    partition_value: str
    since: datetime | None = None
    until: datetime | None = None
    equals: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.index not in INDEXES:
            raise ValueError(f"unknown index {self.index!r}; the alert table has {sorted(INDEXES)}")

    @property
    def partition_attribute(self) -> str:
        """The index's partition key attribute."""
        return INDEXES[self.index]

    @property
    def start_key_attributes(self) -> frozenset[str]:
        """The attributes of a position in this index (table key + index key)."""
        return frozenset({KEY, SORT_ATTRIBUTE, self.partition_attribute})

    def fingerprint_parts(self) -> dict[str, Any]:
        """What identifies this query for cursor checks."""
        return {
            "index": self.index,
            "partition": self.partition_value,
            "since": None if self.since is None else to_stored_time(self.since),
            "until": None if self.until is None else to_stored_time(self.until),
            "equals": dict(sorted(self.equals.items())),
        }

    def request(self, table_name: str) -> dict[str, Any]:
        """The ``Query`` arguments, newest first."""
        names = {"#p": self.partition_attribute}
        values: dict[str, Any] = {":p": {"S": self.partition_value}}
        condition = "#p = :p"
        if self.since is not None:
            values[":since"] = {"S": to_stored_time(self.since)}
        if self.until is not None:
            values[":until"] = {"S": to_stored_time(self.until)}
        if self.since is not None or self.until is not None:
            names["#t"] = SORT_ATTRIBUTE
        if self.since is not None and self.until is not None:
            condition += " AND #t BETWEEN :since AND :until"
        elif self.since is not None:
            condition += " AND #t >= :since"
        elif self.until is not None:
            condition += " AND #t <= :until"
        request: dict[str, Any] = {
            "TableName": table_name,
            "IndexName": self.index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
        }
        filters = []
        for number, (attribute, value) in enumerate(sorted(self.equals.items())):
            names[f"#f{number}"] = attribute
            values[f":f{number}"] = {"S": value}
            filters.append(f"#f{number} = :f{number}")
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = values
        return request


@dataclass(frozen=True)
class Page:
    """Alerts (decoded items, newest first), where the next page starts (None: no more), and
    how many items DynamoDB evaluated for it."""

    alerts: list[Item]
    next_start_key: StartKey | None
    evaluated: int


class AlertStore:
    """The alert table, read through a boto3 DynamoDB client; ``read_budget`` bounds each ``page``."""

    def __init__(self, client: Any, table_name: str, *, read_budget: int) -> None:
        if read_budget < 1:
            raise ValueError(f"read_budget must be at least 1 item, got {read_budget}")
        self._client = client
        self._table_name = table_name
        self._read_budget = read_budget

    def get(self, alert_id: str) -> Item | None:
        """The alert with ``alert_id``, or None."""
        response = self._client.get_item(TableName=self._table_name, Key={KEY: {"S": alert_id}})
        item = response.get("Item")
        return None if item is None else decode_alert_item(item)

    def page(
        self,
        query: IndexQuery,
        *,
        limit: int,
        start_key: StartKey | None = None,
        keep: Callable[[Item], bool] | None = None,
    ) -> Page:
        """Up to ``limit`` alerts of ``query`` after ``start_key`` that ``keep`` accepts, newest first.

        Fewer, with a ``next_start_key``, when the read budget runs out first.
        """
        request = query.request(self._table_name)
        filtered = keep is not None or "FilterExpression" in request
        exclusive_start = start_key
        matched: list[Item] = []
        evaluated = 0
        while True:
            wanted = limit + 1 - len(matched)
            size = max(wanted, FILTERED_READ_SIZE) if filtered else wanted
            size = max(1, min(size, self._read_budget - evaluated))
            call = dict(request, Limit=size)
            if exclusive_start is not None:
                call["ExclusiveStartKey"] = {name: {"S": value} for name, value in exclusive_start.items()}
            response = self._client.query(**call)
            evaluated += int(response.get("ScannedCount", 0))
            for raw in response.get("Items", []):
                alert = decode_alert_item(raw)
                if keep is None or keep(alert):
                    matched.append(alert)
            last_evaluated = response.get("LastEvaluatedKey")
            if len(matched) > limit:
                last = matched[limit - 1]
                return Page(matched[:limit], self._position(query, last), evaluated)
            if last_evaluated is None:
                return Page(matched, None, evaluated)
            exclusive_start = {name: value["S"] for name, value in last_evaluated.items()}
            if evaluated >= self._read_budget:
                return Page(matched, exclusive_start, evaluated)

    @staticmethod
    def _position(query: IndexQuery, alert: Item) -> StartKey:
        return {name: str(alert[name]) for name in query.start_key_attributes}
