"""Hot alerts into DynamoDB, written from the Spark executors.

``DynamoAlertWriter`` is the function ``DataFrame.mapInArrow`` ships to the executors: it
holds only plain values (table name, region, endpoint, retry policy, a module-level client
factory), never a client. Each Python worker process creates its boto3 client lazily on
first use and keeps it for the life of the process.

Rows are written as given: ``ttl_epoch`` arrives stamped by the router on the driver
(``AlertRouter.with_ttl``: write time + ``dynamodb.ttl_days``); nothing here computes it.

Every alert is a conditional ``put_item`` (``attribute_not_exists(alert_id)``): alert ids
are deterministic, so a replayed micro-batch rewrites nothing and its alerts are counted
as duplicates. Throttling and transient server errors are retried with capped
exponential backoff and full jitter; when the attempts run out the task fails with
``AlertWriteError`` and Spark's task retry or the query restart replays the batch, which
is safe for the same reason.

Example (driver; ``alerts`` holds ``BASE_ALERT_RECORD`` columns with ``detected_at`` as
an ISO 8601 string, see ``dynamodb_rows``)::

    writer = DynamoAlertWriter(table_name="coattail-alerts", region="us-east-1")
    counts = writer.write(dynamodb_rows(alerts))
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StructField, StructType

from coattail_framework.aws.alert_table import KEY, SORT_ATTRIBUTE, alert_item
from coattail_framework.aws.clients import aws_client
from coattail_framework.errors import CoattailError
from coattail_framework.resilience import Backoff, RetryExhaustedError, retry
from coattail_framework.schemas import BASE_ALERT_RECORD

DETECTED_AT_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"
"""Spark datetime pattern of ``detected_at`` in DynamoDB items (session time zone UTC)."""

THROTTLING_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
TRANSIENT_CODES = frozenset({"InternalServerError", "ServiceUnavailable"})
DUPLICATE_CODE = "ConditionalCheckFailedException"
COUNTS_SCHEMA = "written long, duplicates long, retries long"
"""What each executor task returns to the driver: one row of counts per partition."""
ITEM_TIME = "_item_detected_at"
"""``write_through``: the column holding the item's ``detected_at`` string (not passed through)."""
WRITTEN = "_dynamodb_written"
RETRIES = "_dynamodb_retries"
"""``write_through``: per alert, True if the item is new (False: a duplicate), and the retries spent."""

_SINGLE_ATTEMPT = BotoConfig(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=10)
"""botocore does not retry on its own: the writer retries (and counts) throttling itself."""


class AlertWriteError(CoattailError):
    """An alert could not be written to DynamoDB after every retry."""


def dynamodb_client(region: str, endpoint_url: str | None) -> Any:
    """A DynamoDB client without botocore retries (called once per worker process)."""
    return aws_client("dynamodb", region=region, endpoint_url=endpoint_url, config=_SINGLE_ATTEMPT)


ClientFactory = Callable[[str, "str | None"], Any]

_clients: dict[tuple[ClientFactory, str, str | None], Any] = {}
_clients_lock = threading.Lock()


def _client(factory: ClientFactory, region: str, endpoint_url: str | None) -> Any:
    """The worker process's client for (factory, region, endpoint), created on first use."""
    key = (factory, region, endpoint_url)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = factory(region, endpoint_url)
        return _clients[key]


def dynamodb_rows(alerts: DataFrame) -> DataFrame:
    """``BASE_ALERT_RECORD`` rows with ``detected_at`` as the item's ISO 8601 UTC string (driver).

    The string is formatted by Spark in the session time zone, which must be UTC.
    """
    item_time = _item_time(alerts)
    columns: list[Column] = [
        item_time.alias(SORT_ATTRIBUTE) if name == SORT_ATTRIBUTE else F.col(name)
        for name in BASE_ALERT_RECORD.fieldNames()
    ]
    return alerts.select(*columns)


def _item_time(alerts: DataFrame) -> Column:
    """``detected_at`` as the item's ISO 8601 UTC string; refuses a session time zone other than UTC."""
    zone = alerts.sparkSession.conf.get("spark.sql.session.timeZone")
    if zone not in ("UTC", "Etc/UTC", "Z", "+00:00"):
        raise AlertWriteError(
            f"spark.sql.session.timeZone is {zone!r}: DynamoDB alert times are formatted in the session time "
            "zone and must be UTC; build the session with coattail_framework.spark (PLATFORM_CONF) or set it to UTC"
        )
    return F.date_format(F.col(SORT_ATTRIBUTE), DETECTED_AT_FORMAT)


@dataclass(frozen=True)
class WriteCounts:
    """Outcome of writing alerts: new items, replays (already present) and retries."""

    written: int = 0
    duplicates: int = 0
    retries: int = 0


@dataclass(frozen=True)
class DynamoAlertWriter:
    """Conditional puts of alert rows into ``table_name`` (picklable; runs on executors).

    ``client_factory(region, endpoint_url)`` must be a module-level callable (it is
    pickled to the executors); it runs once per worker process. Each put is tried at most
    ``max_attempts`` times (``coattail_framework.resilience.retry``); the wait before retry
    ``n`` (from 0) is uniform in ``[0, min(max_delay_s, base_delay_s * 2**n)]`` seconds.
    """

    table_name: str
    region: str
    endpoint_url: str | None = None
    max_attempts: int = 8
    base_delay_s: float = 0.05
    max_delay_s: float = 5.0
    client_factory: ClientFactory = dynamodb_client

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"DynamoAlertWriter.max_attempts must be >= 1, got {self.max_attempts}")
        self.backoff()  # refuses a nonsensical delay on the driver, not in an executor task

    def backoff(self) -> Backoff:
        """A fresh retry policy for one put: full jitter from ``base_delay_s`` up to ``max_delay_s``."""
        return Backoff(initial=self.base_delay_s, cap=self.max_delay_s)

    def write(self, rows: DataFrame) -> WriteCounts:
        """Write every row of ``rows`` (``dynamodb_rows`` output) from the executors (driver call)."""
        partitions = rows.mapInArrow(self, COUNTS_SCHEMA).collect()
        return WriteCounts(
            written=sum(row["written"] for row in partitions),
            duplicates=sum(row["duplicates"] for row in partitions),
            retries=sum(row["retries"] for row in partitions),
        )

    def write_through(self, alerts: DataFrame) -> tuple[pa.Table, WriteCounts]:
        """Write ``alerts`` (``BASE_ALERT_RECORD`` rows) from the executors and collect them: one Spark job.

        Returns the alert rows as Arrow (for the cold store) and the write counts. Driver call;
        the puts run on the executors like ``write``'s.
        """
        from coattail_framework.sinks.iceberg import collect_arrow  # not on executors: it imports pyiceberg

        names = BASE_ALERT_RECORD.fieldNames()
        rows = alerts.select(*names, _item_time(alerts).alias(ITEM_TIME))
        schema = StructType(
            [
                *(alerts.schema[name] for name in names),
                StructField(WRITTEN, BooleanType(), nullable=False),
                StructField(RETRIES, LongType(), nullable=False),
            ]
        )
        collected = collect_arrow(rows.mapInArrow(_WriteThrough(self), schema))
        written = int(pc.sum(collected.column(WRITTEN).cast(pa.int64())).as_py() or 0)
        counts = WriteCounts(
            written=written,
            duplicates=collected.num_rows - written,
            retries=int(pc.sum(collected.column(RETRIES)).as_py() or 0),
        )
        return collected.select(names), counts

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Write one partition's Arrow batches; yields one row of counts (executor)."""
        counts = self.write_rows(row for batch in batches for row in batch.to_pylist())
        yield pa.RecordBatch.from_pylist(
            [{"written": counts.written, "duplicates": counts.duplicates, "retries": counts.retries}],
            schema=pa.schema([("written", pa.int64()), ("duplicates", pa.int64()), ("retries", pa.int64())]),
        )

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> WriteCounts:
        """Conditionally put each row (any process; the client is this process's own)."""
        client = _client(self.client_factory, self.region, self.endpoint_url)
        written = duplicates = retries = 0
        for row in rows:
            new, attempts = self._put(client, alert_item(row))
            written += new
            duplicates += 1 - new
            retries += attempts
        return WriteCounts(written, duplicates, retries)

    def put_row(self, row: dict[str, Any]) -> tuple[int, int]:
        """(1 if written else 0 for a duplicate, retries spent) for one row (any process)."""
        return self._put(_client(self.client_factory, self.region, self.endpoint_url), alert_item(row))

    def _put(self, client: Any, item: dict[str, Any]) -> tuple[int, int]:
        """(1 if written else 0 for a duplicate, retries spent) for one item."""
        alert_id = item[KEY]["S"]
        retries = 0

        def put() -> int:
            try:
                client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#key)",
                    ExpressionAttributeNames={"#key": KEY},
                )
            except ClientError as error:
                code = _error_code(error)
                if code == DUPLICATE_CODE:
                    return 0
                if code not in THROTTLING_CODES | TRANSIENT_CODES:
                    raise AlertWriteError(
                        f"DynamoDB table {self.table_name!r} rejected alert {alert_id}: {code}: {error}"
                    ) from error
                raise
            return 1

        def count_retry(attempts: int, error: BaseException, delay: float) -> None:
            nonlocal retries
            retries = attempts

        try:
            new = retry(
                put,
                what=f"DynamoDB put of alert {alert_id}",
                retryable=_retryable,
                backoff=self.backoff(),
                max_attempts=self.max_attempts,
                on_retry=count_retry,
            )
        except RetryExhaustedError as exhausted:
            raise AlertWriteError(
                f"DynamoDB table {self.table_name!r}: alert {alert_id} not written after {self.max_attempts} "
                f"attempts ({exhausted.last}); the micro-batch will be replayed (writes are idempotent). If "
                "throttling persists, raise the table's capacity or use on-demand billing"
            ) from exhausted.last
        return new, retries


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _retryable(error: BaseException) -> bool:
    """Throttling, a transient server error or a lost connection: worth another put."""
    if isinstance(error, ClientError):
        return _error_code(error) in THROTTLING_CODES | TRANSIENT_CODES
    return isinstance(error, BotoConnectionError)


def _item_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with ``detected_at`` replaced by its item string from ``ITEM_TIME`` (and no ``ITEM_TIME``)."""
    item_time = row.pop(ITEM_TIME)
    return {**row, SORT_ATTRIBUTE: item_time}


@dataclass(frozen=True)
class _WriteThrough:
    """``mapInArrow`` function of ``DynamoAlertWriter.write_through`` (runs on executors).

    Puts each row's item (``detected_at`` taken from ``ITEM_TIME``) and yields the rows
    without ``ITEM_TIME``, with ``WRITTEN`` and ``RETRIES``.
    """

    writer: DynamoAlertWriter

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            outcomes = [self.writer.put_row(_item_row(row)) for row in batch.to_pylist()]
            passed = [name for name in batch.schema.names if name != ITEM_TIME]
            yield pa.RecordBatch.from_arrays(
                [
                    *(batch.column(name) for name in passed),
                    pa.array([new == 1 for new, _ in outcomes], pa.bool_()),
                    pa.array([retries for _, retries in outcomes], pa.int64()),
                ],
                names=[*passed, WRITTEN, RETRIES],
            )
