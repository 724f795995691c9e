"""``coattail-kinesis``: a Spark 4 Python streaming data source reading Kinesis with boto3.

    from coattail_kinesis.source import register
    register(spark)
    stream = (spark.readStream.format("coattail-kinesis")
              .option("streamName", "coattail-trades").option("region", "us-east-1")
              .option("startingPosition", "TRIM_HORIZON").option("maxRecordsPerTrigger", 10000)
              .load())

Columns are those of EMR's bundled ``aws-kinesis`` source plus ``shardId`` (``KINESIS_SCHEMA``).

Where each method runs: ``KinesisDataSource.schema``/``streamReader`` and the reader's
``initialOffset``, ``latestOffset``, ``partitions``, ``commit`` and
``prepareForTriggerAvailableNow`` run on the driver, in the Python worker Spark keeps for the
query; ``read`` runs on executors. ``latestOffset`` fetches the records of the next batch
(one ``GetRecords`` sequence per shard) and ``partitions`` ships them to executors inside the
input partitions as one Arrow record batch per shard, so a batch reads Kinesis once and
executors convert nothing row by row. A batch replayed after a restart has no
fetched records: its executors read the shard again between the checkpointed offsets, which
returns exactly the same records (see ``offsets`` for the offset format).

PySpark lines: 4.2+ call ``latestOffset(start, limit)`` with Spark's read limit
(``maxRecordsPerTrigger`` by default, ``ReadAllAvailable`` for Trigger.Once, meaning no cap) and
honour ``SupportsTriggerAvailableNow``: an availableNow run reads every record that arrived
before it started, in batches of at most ``maxRecordsPerTrigger``. 4.0/4.1 call
``latestOffset()`` without arguments and have no availableNow support for Python sources:
every batch is capped at ``maxRecordsPerTrigger`` and an availableNow run processes one batch
(Spark falls back to a single batch), so draining a backlog takes several runs.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError
from pyspark.sql import SparkSession
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import BinaryType, StringType, StructField, StructType, TimestampType

from coattail_kinesis.limits import ReadFailureLimit, ShardPacer, error_code
from coattail_kinesis.offsets import (
    SHARD_END,
    TRIM_HORIZON,
    Positions,
    at_timestamp,
    is_after,
    parse_positions,
)
from coattail_kinesis.options import KinesisSourceOptions
from coattail_kinesis.reader import KinesisRecord, ShardCursor, ShardFetcher, kinesis_client
from coattail_kinesis.shards import Shard, list_shards, readable, reconcile

logger = logging.getLogger(__name__)

FORMAT_NAME = "coattail-kinesis"

KINESIS_SCHEMA = StructType(
    [
        StructField("data", BinaryType(), True),
        StructField("streamName", StringType(), True),
        StructField("partitionKey", StringType(), True),
        StructField("sequenceNumber", StringType(), True),
        StructField("approximateArrivalTimestamp", TimestampType(), True),
        StructField("shardId", StringType(), True),
    ]
)
"""EMR ``aws-kinesis`` columns plus ``shardId``; ``approximateArrivalTimestamp`` is an instant (UTC)."""

ARROW_SCHEMA = pa.schema(
    [
        pa.field("data", pa.binary()),
        pa.field("streamName", pa.string()),
        pa.field("partitionKey", pa.string()),
        pa.field("sequenceNumber", pa.string()),
        pa.field("approximateArrivalTimestamp", pa.timestamp("us", tz="UTC")),
        pa.field("shardId", pa.string()),
    ]
)
"""``KINESIS_SCHEMA`` as the Arrow schema of the record batches ``read`` yields."""
REPLAY_BATCH_RECORDS = 10_000
"""Records per Arrow batch when executors read a replayed range from Kinesis."""

SHARD_DISCOVERY_INTERVAL_S = 1.0
"""``ListShards`` runs at most this often (seconds), even when Spark polls faster."""
LIST_SHARDS = "ListShards"
MAX_CALLS_PER_SHARD_PER_TRIGGER = 3
"""``GetRecords`` calls per shard per micro-batch when the trigger does not wait for data."""
MAX_FETCH_THREADS = 16


def streaming_datasource_api() -> Any:
    """``pyspark.sql.streaming.datasource`` (PySpark 4.2+), or None on older lines."""
    try:
        return importlib.import_module("pyspark.sql.streaming.datasource")
    except ImportError:
        return None


SUPPORTS_AVAILABLE_NOW = hasattr(streaming_datasource_api(), "SupportsTriggerAvailableNow")
"""True on PySpark 4.2+, where Trigger.AvailableNow runs bounded batches with this source."""


def shard_fetcher(options: KinesisSourceOptions, pacer: ShardPacer) -> ShardFetcher:
    """This process's fetcher for the stream of ``options`` (driver or executor), paced by ``pacer``."""
    return ShardFetcher(
        kinesis_client(options.region, options.endpoint_url),
        options.stream_name,
        pacer,
        ReadFailureLimit(options.read_failure_max_attempts, options.read_failure_max_seconds),
    )


def records_batch(records: Sequence[KinesisRecord], stream_name: str) -> pa.RecordBatch:
    """``records`` as one Arrow batch with ``ARROW_SCHEMA`` (the source's columns, in order)."""
    return pa.RecordBatch.from_arrays(
        [
            pa.array([r.data for r in records], pa.binary()),
            pa.array([stream_name] * len(records), pa.string()),
            pa.array([r.partition_key for r in records], pa.string()),
            pa.array([r.sequence_number for r in records], pa.string()),
            pa.array([r.arrival for r in records], pa.timestamp("us", tz="UTC")),
            pa.array([r.shard_id for r in records], pa.string()),
        ],
        schema=ARROW_SCHEMA,
    )


@dataclass(frozen=True)
class KinesisShardRange(InputPartition):
    """One shard's records in (start, end] for one batch; ``batch`` when already fetched."""

    shard: Shard
    start: str
    end: str
    batch: pa.RecordBatch | None = None


@dataclass
class _DriverState:
    """What the driver keeps between calls; never pickled (boto3 clients, threads)."""

    fetcher: ShardFetcher
    shards: list[Shard] = field(default_factory=list)
    listed_at: float | None = None
    cursors: dict[str, ShardCursor] = field(default_factory=dict)
    current: Positions | None = None
    arrived_by: datetime | None = None
    pool: ThreadPoolExecutor | None = None


class KinesisStreamReader(DataSourceStreamReader):
    """Micro-batch reader of one Kinesis stream. Built on the driver, pickled to executors."""

    def __init__(self, options: KinesisSourceOptions) -> None:
        self.source_options = options
        self._driver: _DriverState | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"source_options": self.source_options, "_driver": None}

    # -- driver ---------------------------------------------------------------------------

    def _state(self) -> _DriverState:
        if self._driver is None:
            opts = self.source_options
            pacer = ShardPacer(
                min_interval_s=opts.min_poll_interval_ms / 1000, idle_interval_s=opts.idle_poll_interval_ms / 1000
            )
            self._driver = _DriverState(fetcher=shard_fetcher(opts, pacer))
        return self._driver

    def _shards(self, *, force: bool = False) -> list[Shard]:
        """The stream's shards, listed at most every ``SHARD_DISCOVERY_INTERVAL_S``.

        A failed re-listing keeps the previous list, backs off and counts against the read
        failure limits like a shard's reads (``ShardFetcher.failed_call``): a ``ListShards``
        that keeps failing stops the query instead of hiding new shards forever.
        """
        state = self._state()
        fetcher = state.fetcher
        now = fetcher.pacer.clock()
        due = force or state.listed_at is None or now - state.listed_at >= SHARD_DISCOVERY_INTERVAL_S
        if due and (state.listed_at is None or fetcher.pacer.wait_s(LIST_SHARDS) == 0):
            try:
                state.shards = list_shards(fetcher.client, self.source_options.stream_name)
                state.listed_at = now
                fetcher.pacer.polled(LIST_SHARDS, idle=False)
            except ClientError as error:
                if error_code(error) == "ResourceNotFoundException" or state.listed_at is None:
                    raise RuntimeError(
                        f"coattail-kinesis: cannot list the shards of stream {self.source_options.stream_name!r} "
                        f"in {self.source_options.region}: {error}; check streamName, region and endpointUrl"
                    ) from error
                fetcher.failed_call(None, LIST_SHARDS, error)
            except BotoCoreError as error:
                if state.listed_at is None:
                    raise
                fetcher.failed_call(None, LIST_SHARDS, error)
        return state.shards

    def initialOffset(self) -> dict[str, str]:  # noqa: N802
        """Driver. Where a query without checkpoint starts, per shard (see ``offsets``)."""
        opts = self.source_options
        shards = self._shards(force=True)
        if opts.starting_position == "TRIM_HORIZON":
            return {shard.shard_id: TRIM_HORIZON for shard in shards}
        if opts.starting_position == "AT_TIMESTAMP":
            assert opts.starting_timestamp is not None
            return {shard.shard_id: at_timestamp(opts.starting_timestamp) for shard in shards}
        # LATEST, pinned to this instant so that a replay reads the same records.
        now = at_timestamp(datetime.now(UTC))
        return {shard.shard_id: SHARD_END if shard.closed else now for shard in shards}

    def getDefaultReadLimit(self) -> Any:  # noqa: N802
        """Driver (PySpark 4.2+). ``maxRecordsPerTrigger`` as Spark's ``ReadMaxRows``."""
        return streaming_datasource_api().ReadMaxRows(self.source_options.max_records_per_trigger)

    def prepareForTriggerAvailableNow(self) -> None:  # noqa: N802
        """Driver (PySpark 4.2+). Ends this run at the records that arrived by now (UTC)."""
        self._state().arrived_by = datetime.now(UTC)

    def _cap(self, limit: Any) -> int | None:
        if limit is None:
            return self.source_options.max_records_per_trigger
        kind = type(limit).__name__
        if kind == "ReadAllAvailable":
            return None
        if kind == "ReadMaxRows":
            return int(limit.max_rows)
        logger.warning("read limit %r is not supported; capping at maxRecordsPerTrigger", limit)
        return self.source_options.max_records_per_trigger

    def latestOffset(self, start: dict[str, Any] | None = None, limit: Any = None) -> dict[str, str]:  # noqa: N802
        """Driver, every trigger (even idle). Fetches the next batch; returns its end offset.

        ``start`` and ``limit`` come from PySpark 4.2+; 4.0/4.1 pass neither, and the start is
        then the end this reader returned last (or the offset Spark restored on restart).
        Waits ``readDelayMs`` first (not in an ``availableNow`` run): the batch then reads what
        arrived by the end of the wait.
        """
        state = self._state()
        if self.source_options.read_delay_ms and state.arrived_by is None:
            time.sleep(self.source_options.read_delay_ms / 1000)
        if start is not None:
            positions = parse_positions(start)
        elif state.current is not None:
            positions = state.current
        else:
            positions = self.initialOffset()
        shards = self._shards()
        positions = reconcile(positions, shards)
        cap = self._cap(limit)
        patient = cap is None or state.arrived_by is not None
        cursors = []
        for shard in readable(positions, shards):
            cursor = state.cursors.setdefault(shard.shard_id, ShardCursor(shard=shard, base=positions[shard.shard_id]))
            cursor.shard = shard
            cursor.align(positions[shard.shard_id])
            cursors.append(cursor)
        allowance = self._fetch(cursors, cap, patient=patient)
        max_bytes = self.source_options.max_bytes_per_trigger
        shard_bytes = None if max_bytes is None or not cursors else max(1, max_bytes // len(cursors))
        end = dict(positions)
        for cursor in cursors:
            quota = cursor.byte_quota(allowance.get(cursor.shard.shard_id), shard_bytes)
            end[cursor.shard.shard_id] = cursor.end_position(quota)
        state.current = end
        return end

    def _fetch(self, cursors: list[ShardCursor], cap: int | None, *, patient: bool) -> dict[str, int]:
        """Fill the cursors fairly up to ``cap`` records in all; returns each shard's share."""
        allowance = {cursor.shard.shard_id: 0 for cursor in cursors}
        remaining = cap
        active = list(cursors)
        while active:
            if remaining is not None:
                share, extra = divmod(remaining, len(active))
                for index, cursor in enumerate(active):
                    allowance[cursor.shard.shard_id] += share + (1 if index < extra else 0)
            before = sum(len(c.records) for c in cursors)
            self._fill_all(active, None if cap is None else allowance, patient=patient)
            if cap is None or sum(len(c.records) for c in cursors) == before:
                break
            used = sum(min(len(c.records), allowance[c.shard.shard_id]) for c in cursors)
            remaining = cap - used
            active = [
                c
                for c in active
                if len(c.records) >= allowance[c.shard.shard_id] and not (c.ended or c.exhausted or c.caught_up)
            ]
            if remaining <= 0:
                break
        return allowance if cap is not None else {}

    def _fill_all(self, cursors: list[ShardCursor], allowance: dict[str, int] | None, *, patient: bool) -> None:
        state = self._state()

        def fill(cursor: ShardCursor) -> None:
            want = None if allowance is None else allowance[cursor.shard.shard_id]
            state.fetcher.fill(
                cursor,
                want,
                wait=patient,
                max_calls=None if patient else MAX_CALLS_PER_SHARD_PER_TRIGGER,
                arrived_by=state.arrived_by,
            )

        if len(cursors) <= 1:
            for cursor in cursors:
                fill(cursor)
            return
        if state.pool is None:
            state.pool = ThreadPoolExecutor(max_workers=MAX_FETCH_THREADS, thread_name_prefix="coattail-kinesis")
        for future in [state.pool.submit(fill, cursor) for cursor in cursors]:
            future.result()

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        """Driver. One input partition per shard with records in (start, end]."""
        state = self._state()
        start_positions, end_positions = parse_positions(start), parse_positions(end)
        if state.current is None:
            state.current = end_positions
        known = {shard.shard_id: shard for shard in state.shards}
        ranges = []
        for shard_id, last in end_positions.items():
            first = start_positions.get(shard_id, TRIM_HORIZON)
            if first == last:
                continue
            cursor = state.cursors.get(shard_id)
            records = cursor.between(first, last) if cursor is not None else None
            if shard_id not in known:
                known = {shard.shard_id: shard for shard in self._shards(force=True)}
            shard = cursor.shard if cursor is not None else known.get(shard_id, Shard(shard_id, (), None))
            batch = None if records is None else records_batch(records, self.source_options.stream_name)
            ranges.append(KinesisShardRange(shard=shard, start=first, end=last, batch=batch))
        return ranges

    def commit(self, end: dict[str, Any]) -> None:
        """Driver. Spark processed everything up to ``end``: drop those fetched records."""
        state = self._state()
        for shard_id, position in parse_positions(end).items():
            cursor = state.cursors.get(shard_id)
            if cursor is None:
                continue
            if position == SHARD_END:
                del state.cursors[shard_id]
            elif is_after(position, cursor.base):
                cursor.align(position)

    def stop(self) -> None:
        """Driver. Releases the fetch threads."""
        if self._driver is not None and self._driver.pool is not None:
            self._driver.pool.shutdown(wait=False)
            self._driver.pool = None

    # -- executors ------------------------------------------------------------------------

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        """Executor. The records of one shard's range: shipped by the driver, else read again."""
        assert isinstance(partition, KinesisShardRange)
        if partition.batch is not None:
            if partition.batch.num_rows:
                yield partition.batch
            return
        opts = self.source_options
        fetcher = shard_fetcher(opts, ShardPacer(min_interval_s=opts.min_poll_interval_ms / 1000))
        pending: list[KinesisRecord] = []
        for record in fetcher.read_range(partition.shard, partition.start, partition.end):
            pending.append(record)
            if len(pending) == REPLAY_BATCH_RECORDS:
                yield records_batch(pending, opts.stream_name)
                pending = []
        if pending:
            yield records_batch(pending, opts.stream_name)


class KinesisDataSource(DataSource):
    """The ``coattail-kinesis`` format. Options: see ``options``. Runs on the driver."""

    @classmethod
    def name(cls) -> str:
        return FORMAT_NAME

    def schema(self) -> StructType:
        return KINESIS_SCHEMA

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:  # noqa: N802
        return KinesisStreamReader(KinesisSourceOptions.from_spark(self.options))


def register(spark: SparkSession) -> None:
    """Register the ``coattail-kinesis`` format with ``spark`` (idempotent). Driver."""
    spark.dataSource.register(KinesisDataSource)


if SUPPORTS_AVAILABLE_NOW:
    streaming_datasource_api().SupportsTriggerAvailableNow.register(KinesisStreamReader)
