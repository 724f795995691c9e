"""``coattail-feed``: a Spark 4 Python streaming source over an append-only Iceberg table's new commits.

    from coattail_framework.feed import read_trade_feed
    trades = read_trade_feed(spark, config)      # UNIFIED_TRADE_EVENT rows ingest committed to raw_trades

The detector queries read the trades the ingest query validated and committed to
``raw_trades`` with this source (``streaming.detector_input: raw_trades``, ADR-041), so the
stream is read and parsed once. Offsets are ``{"sequence_number": N}``: the Iceberg data
sequence number of the last commit read (``increments``). A batch is exactly one commit (one
ingest batch), so a detector's batches, and with them its watermark and output, do not depend
on timing (``increments.next_commit``).

Where each method runs: ``FeedDataSource.schema``/``streamReader`` and the reader's
``initialOffset``, ``latestOffset``, ``partitions`` and ``commit`` run on the driver, in the
Python worker Spark keeps for the query (they read Iceberg metadata through the catalog);
``read`` runs on executors and reads the batch's Parquet files with pyiceberg's Arrow scan
(field ids, so older files of an evolved schema read right), cast to the declared schema.

PySpark 4.2+ pass ``latestOffset(start, limit)``; 4.0/4.1 pass neither, and the start is then
the end this reader returned last, or the offset Spark restored (``partitions``). The source
supports ``availableNow`` on 4.2+ (ends at the commit current when the run starts); the stream
job does not use it for detectors during a drain, because ingest is still committing then.

Options (Spark lower-cases the keys): ``table`` (``database.table``), ``catalog`` (the JSON of
the ``iceberg`` and ``aws`` configuration sections, ``FeedOptions.catalog_json``),
``startingposition`` (``earliest`` = every commit the table holds, ``latest`` = from the
current commit, or a sequence number; only without a checkpoint), ``partitions`` (input
partitions per batch, default 2) and ``readdelayms``. Spark's read limits do not apply: a batch
is one commit whatever the limit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from coattail_framework.errors import ConfigError
from coattail_framework.feed.increments import (
    PendingFile,
    current_sequence_number,
    next_commit,
    pending_files,
    split_evenly,
)
from coattail_framework.schemas import UNIFIED_TRADE_EVENT
from coattail_kinesis.source import SUPPORTS_AVAILABLE_NOW, streaming_datasource_api

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.metadata import TableMetadata

    from coattail_framework.config.model import AwsConfig, IcebergConfig

__all__ = ["FEED_FORMAT", "FeedDataSource", "FeedOptions", "FeedStreamReader", "arrow_schema", "register"]

LOG = logging.getLogger(__name__)

FEED_FORMAT = "coattail-feed"
POSITION_KEY = "sequence_number"
DEFAULT_PARTITIONS = 2


def arrow_schema(schema: StructType) -> pa.Schema:
    """The Arrow schema ``read`` yields for ``schema`` (plain strings, UTC microsecond timestamps, doubles)."""
    types = {"string": pa.string(), "double": pa.float64(), "timestamp": pa.timestamp("us", tz="UTC")}
    fields = []
    for spark_field in schema.fields:
        name = spark_field.dataType.typeName()
        if name not in types:
            raise ValueError(f"coattail-feed: column {spark_field.name} has type {name}, which the feed does not carry")
        fields.append(pa.field(spark_field.name, types[name], nullable=True))
    return pa.schema(fields)


@dataclass(frozen=True)
class FeedOptions:
    """The source's options, validated on the driver (``from_spark``)."""

    table: tuple[str, str]
    iceberg: IcebergConfig
    aws: AwsConfig
    starting_position: str = "earliest"
    partitions: int = DEFAULT_PARTITIONS
    read_delay_ms: int = 0

    @staticmethod
    def catalog_json(iceberg: IcebergConfig, aws: AwsConfig) -> str:
        """The ``catalog`` option: the two configuration sections the catalog is opened from."""
        return json.dumps({"iceberg": iceberg.model_dump(mode="json"), "aws": aws.model_dump(mode="json")})

    @classmethod
    def from_spark(cls, options: Mapping[str, str]) -> FeedOptions:
        """From Spark's (lower-cased) option map; ``ConfigError`` names a bad option."""
        from coattail_framework.config.model import AwsConfig, IcebergConfig

        def number(key: str, default: int, minimum: int) -> int:
            text = options.get(key, str(default))
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(f"coattail-feed option {key}={text!r}: not an integer") from None
            if value < minimum:
                raise ConfigError(f"coattail-feed option {key}={value}: must be at least {minimum}")
            return value

        table = options.get("table", "")
        if table.count(".") != 1:
            raise ConfigError(f"coattail-feed option table={table!r}: expected database.table")
        try:
            catalog = json.loads(options["catalog"])
            iceberg, aws = IcebergConfig.model_validate(catalog["iceberg"]), AwsConfig.model_validate(catalog["aws"])
        except (KeyError, ValueError) as error:
            raise ConfigError(f"coattail-feed option catalog: {error}") from None
        starting = options.get("startingposition", "earliest").lower()
        if starting not in ("earliest", "latest") and not starting.isdigit():
            raise ConfigError(f"coattail-feed option startingPosition={starting!r}: earliest, latest or a number")
        database, name = table.split(".")
        return cls(
            table=(database, name),
            iceberg=iceberg,
            aws=aws,
            starting_position=starting,
            partitions=number("partitions", DEFAULT_PARTITIONS, 1),
            read_delay_ms=number("readdelayms", 0, 0),
        )


@dataclass(frozen=True)
class FeedPartition(InputPartition):
    """Data files of one batch for one executor task, with what reading them needs."""

    metadata: TableMetadata
    io_properties: dict[str, str]
    files: tuple[Any, ...]


@dataclass
class _DriverState:
    """What the driver keeps between calls; never pickled (the catalog holds connections)."""

    table: Table | None = None
    current: int | None = None
    pinned_end: int | None = None
    planned: dict[tuple[int, int], list[PendingFile]] = field(default_factory=dict)


def _position(offset: Mapping[str, Any] | str) -> int:
    parsed = json.loads(offset) if isinstance(offset, str) else offset
    return int(parsed[POSITION_KEY])


class FeedStreamReader(DataSourceStreamReader):
    """Micro-batch reader of one append-only Iceberg table. Built on the driver, pickled to executors."""

    def __init__(self, options: FeedOptions, schema: StructType) -> None:
        self.feed_options = options
        self.arrow_schema = arrow_schema(schema)
        self._driver: _DriverState | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"feed_options": self.feed_options, "arrow_schema": self.arrow_schema, "_driver": None}

    # -- driver ---------------------------------------------------------------------------

    def _state(self) -> _DriverState:
        if self._driver is None:
            self._driver = _DriverState()
        return self._driver

    def _table(self) -> Table:
        """The table as committed now (loaded once, refreshed on each call)."""
        state = self._state()
        if state.table is None:
            from coattail_framework.iceberg import open_catalog

            opts = self.feed_options
            state.table = open_catalog(opts.iceberg, opts.aws).load_table(opts.table)
            return state.table
        state.table = state.table.refresh()
        return state.table

    def initialOffset(self) -> dict[str, int]:  # noqa: N802
        """Driver. Where a query without checkpoint starts (``startingPosition``)."""
        starting = self.feed_options.starting_position
        if starting == "earliest":
            return {POSITION_KEY: 0}
        if starting == "latest":
            return {POSITION_KEY: current_sequence_number(self._table())}
        return {POSITION_KEY: int(starting)}

    def getDefaultReadLimit(self) -> Any:  # noqa: N802
        """Driver (PySpark 4.2+). All available: a batch is one commit whatever the limit (``next_commit``)."""
        return streaming_datasource_api().ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:  # noqa: N802
        """Driver (PySpark 4.2+). Ends this run at the commit current now."""
        self._state().pinned_end = current_sequence_number(self._table())

    def latestOffset(self, start: dict[str, Any] | None = None, limit: Any = None) -> dict[str, int]:  # noqa: N802
        """Driver, every trigger (even idle). The end of the next batch: the next commit after the start.

        ``limit`` (PySpark 4.2+) is not applied: a batch is one commit (``increments.next_commit``).
        """
        state = self._state()
        if self.feed_options.read_delay_ms and state.pinned_end is None:
            time.sleep(self.feed_options.read_delay_ms / 1000)
        if start is not None:
            after = _position(start)
        elif state.current is not None:
            after = state.current
        else:
            after = _position(self.initialOffset())
        files = pending_files(self._table(), after, up_to=state.pinned_end)
        end = next_commit(files, after)
        if end != after:
            state.planned = {(after, end): [f for f in files if f.sequence_number <= end]}
        state.current = end
        return {POSITION_KEY: end}

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        """Driver. The batch's files in (start, end], split over ``partitions`` tasks by rows."""
        state = self._state()
        first, last = _position(start), _position(end)
        if state.current is None:
            state.current = last
        files = state.planned.get((first, last))
        table = self._table() if files is None or state.table is None else state.table
        if files is None:  # a batch replayed after a restart: the same files, planned again
            files = pending_files(table, first, up_to=last)
        io_properties = dict(table.io.properties)
        return [
            FeedPartition(table.metadata, io_properties, tuple(pending.data_file for pending in group))
            for group in split_evenly(files, self.feed_options.partitions)
        ]

    def commit(self, end: dict[str, Any]) -> None:
        """Driver. Spark processed everything up to ``end``: forget its plan."""
        done = _position(end)
        state = self._state()
        state.planned = {key: files for key, files in state.planned.items() if key[1] > done}

    # -- executors ------------------------------------------------------------------------

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        """Executor. The rows of the partition's data files, in the declared schema."""
        from pyiceberg.expressions import AlwaysTrue
        from pyiceberg.io import load_file_io
        from pyiceberg.io.pyarrow import ArrowScan
        from pyiceberg.table import FileScanTask

        assert isinstance(partition, FeedPartition)
        metadata = partition.metadata
        io = load_file_io(partition.io_properties, metadata.location)
        scan = ArrowScan(metadata, io, metadata.schema(), AlwaysTrue())
        names = self.arrow_schema.names
        for batch in scan.to_record_batches([FileScanTask(data_file) for data_file in partition.files]):
            if batch.num_rows:
                columns = [batch.column(name).cast(self.arrow_schema.field(name).type) for name in names]
                yield pa.RecordBatch.from_arrays(columns, schema=self.arrow_schema)


class FeedDataSource(DataSource):
    """The ``coattail-feed`` format (driver): ``UNIFIED_TRADE_EVENT`` rows unless the caller declares a schema."""

    @classmethod
    def name(cls) -> str:
        return FEED_FORMAT

    def schema(self) -> StructType:
        return UNIFIED_TRADE_EVENT

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:  # noqa: N802
        return FeedStreamReader(FeedOptions.from_spark(self.options), schema)


def register(spark: SparkSession) -> None:
    """Register the ``coattail-feed`` format with ``spark`` (idempotent). Driver."""
    spark.dataSource.register(FeedDataSource)


if SUPPORTS_AVAILABLE_NOW:
    streaming_datasource_api().SupportsTriggerAvailableNow.register(FeedStreamReader)
