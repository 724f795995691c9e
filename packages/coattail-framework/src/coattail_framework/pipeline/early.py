"""The early query of a detector: alerts its micro-batch proves, put to DynamoDB at once.

Runs on the Spark driver, as the ``foreachBatch`` handler of a stateless streaming query
(``early-<module name>``) that reads the same stream as the detector's stateful query, on
its own checkpoint and trigger (ADR-024). Per micro-batch: the batch's valid trades plus
the rows the previous batch carried -> ``detector.early_alerts`` -> conditional puts of
its alerts (DynamoDB only, from the driver: ``AlertRouter.put_alerts``; the stateful query
writes every alert to Iceberg ``alerts`` and puts the same ids again, counted as
duplicates) -> the new carry, collected to the driver.

The carry lives in driver memory, for the next batch of the same run only: after a
restart, or when a batch id was skipped, it is dropped and the stateful query alone
covers what the carry would have proven. Nothing is lost either way.

Agreement with the stateful query (``EarlyLedger``, ADR-029): for a detector that can
rebuild its output rows from its alerts (``RecordsEarlyAlerts``), every alert the
early query puts is also recorded by the stateful query, in both stores, even when the
stateful query drops the finding's trades as late. The early query puts only alerts whose
event time (``detected_at``) is after the stateful query's last watermark (its fate is
then still open) and registers them in the ledger before the put; the stateful query, in
the micro-batch whose watermark passes them, adds their rows to its output (replacing a
row of the same finding it emitted itself) and routes them as its own.

Example (what ``PipelineRunner.start`` does)::

    handler = EarlyAlertHandler(spark, detector, router.put_alerts, stats)
    frame.writeStream.foreachBatch(handler).option("checkpointLocation", ...).start()
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc
import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from coattail_framework.schemas import BASE_ALERT_RECORD
from coattail_framework.sinks.dynamodb import WriteCounts
from coattail_framework.sinks.iceberg import collect_arrow

if TYPE_CHECKING:
    from coattail_framework.detector import BaseDetector
    from coattail_framework.metrics import MetricsPublisher
    from coattail_framework.pipeline.listener import PipelineStats

LOG = logging.getLogger(__name__)


EARLY_FAILURES_METRIC = "early_failures"
"""CloudWatch metric (Count, dimension ``query``) of early batches that raised."""


def early_query_name(detector: BaseDetector[Any]) -> str:
    """The early query's name (and checkpoint folder) of ``detector``."""
    return f"early-{detector.module_name}"


def _arrow_frame(spark: SparkSession, table: pa.Table, schema: StructType) -> DataFrame:
    """A DataFrame of the (small) Arrow ``table`` with ``schema``.

    PySpark 4 takes the Arrow table itself (about 0.1 s for a count of a few rows, against
    0.3 s from Python rows, which need a Python worker); 3.5 takes Python rows (not pandas,
    which turns a null in an integer column such as ``ttl_epoch`` into NaN, refused as a long).
    """
    if int(pyspark.__version__.split(".")[0]) >= 4:
        return spark.createDataFrame(table).select(*schema.fieldNames())
    # Microsecond times become datetimes (nanosecond ones would be pandas Timestamps, refused too).
    columns = [
        column.cast(pa.timestamp("us", tz=column.type.tz), safe=False) if pa.types.is_timestamp(column.type) else column
        for column in table.columns
    ]
    rows = pa.Table.from_arrays(columns, names=table.column_names).to_pylist()
    return spark.createDataFrame(rows, schema=schema)


@runtime_checkable
class RecordsEarlyAlerts(Protocol):
    """A detector whose stateful query records its early alerts itself (``EarlyLedger``, ADR-029).

    ``output_key``: the output columns that identify a finding (its alert id's parts).
    ``output_of_alerts(alerts)``: the output rows (``output_schema`` columns) of a static
    batch of its own alerts, exactly the rows the alerts were built from (driver, plan only).
    """

    output_key: Sequence[str]

    def output_of_alerts(self, alerts: DataFrame) -> DataFrame: ...


OFFSET_LOG_VERSION = "v1"
"""The format of Spark's ``offsets/<batch id>`` files this reader parses (Spark 3.5 through 4.3)."""


class CheckpointWatermarks:
    """A streaming query's per-batch watermark, read from its checkpoint's offset log (driver).

    Spark writes ``<checkpoint>/offsets/<batch id>`` before it runs the batch: its second
    line holds ``batchWatermarkMs``, the watermark (ms since the epoch, UTC) that batch
    evicts state with; a replayed batch reads the same file. Read with the Hadoop
    ``FileSystem`` of the session (the one Spark writes the checkpoint with: local or S3).
    """

    def __init__(self, spark: SparkSession, checkpoint: str) -> None:
        self.spark = spark
        self.checkpoint = checkpoint.rstrip("/")

    def __call__(self, batch_id: int) -> int:
        """``batchWatermarkMs`` of ``batch_id`` (0 before the first watermark)."""
        jvm: Any = getattr(self.spark, "_jvm", None)
        if jvm is None:
            raise RuntimeError("reading a checkpoint's offset log needs a classic (non-Connect) SparkSession")
        path = jvm.org.apache.hadoop.fs.Path(f"{self.checkpoint}/offsets/{batch_id}")
        fs = path.getFileSystem(self.spark._jsc.hadoopConfiguration())
        stream = fs.open(path)
        try:
            reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
            version = str(reader.readLine())
            if version != OFFSET_LOG_VERSION:
                raise RuntimeError(
                    f"{self.checkpoint}/offsets/{batch_id}: offset log format {version!r}, this reader knows "
                    f"{OFFSET_LOG_VERSION!r} (Spark 3.5 to 4.3); the early/stateful ledger cannot read its watermark"
                )
            metadata = json.loads(str(reader.readLine()))
        finally:
            stream.close()
        return int(metadata.get("batchWatermarkMs", 0))


class EarlyLedger:
    """The early alerts one detector's stateful query still has to record (driver memory, ADR-029).

    Shared by the detector's two ``foreachBatch`` handlers, which run on different
    stream-execution threads of the driver; a lock orders them.

    - Early query (``admit``): of the alerts it is about to put, only those whose event
      time is after ``closed_through`` (the stateful query's latest batch watermark) are
      kept, and registered before the put. Before the stateful query's first batch in this
      process ``closed_through`` is unknown and nothing is admitted (after a restart the
      stateful query alone decides the findings its last run left open).
    - Stateful query (``record``, batch N with watermark W): ``closed_through`` becomes W;
      the registered alerts at or before W are taken out and their rows
      (``output_of_alerts``) added to the batch's output, replacing any row with the same
      ``output_key`` (the stateful row of a finding whose trades were partly late). The
      stateful query emits a finding only in the batch whose watermark passes it, so a
      finding registered before that batch is recorded exactly once, by that batch, whether
      the stateful query kept its trades or dropped them as late; one registered after it
      is not admitted (the stateful query already decided it, and did not alert it if it
      dropped it).

    Times compare as microseconds since the epoch (UTC): a finding at time t is closed by
    watermark W (ms) when t <= W x 1000, as Spark evicts.
    """

    def __init__(
        self,
        spark: SparkSession,
        detector: RecordsEarlyAlerts,
        watermark_ms: Callable[[int], int],
    ) -> None:
        self.spark = spark
        self.detector = detector
        self.watermark_ms = watermark_ms
        self._lock = threading.Lock()
        self._pending: pa.Table | None = None
        self._closed_through_us: int | None = None

    @property
    def closed_through_us(self) -> int | None:
        """The stateful query's latest batch watermark (µs since the epoch, UTC); None before its first batch."""
        with self._lock:
            return self._closed_through_us

    @property
    def pending_alerts(self) -> int:
        """Registered alerts the stateful query has not recorded yet."""
        with self._lock:
            return 0 if self._pending is None else self._pending.num_rows

    def admit(self, alerts: pa.Table) -> pa.Table:
        """The rows of ``alerts`` (``BASE_ALERT_RECORD``) the early query may put, registered (early query)."""
        with self._lock:
            if self._closed_through_us is None:
                return alerts.slice(0, 0)
            admitted = alerts.filter(pc.greater(_micros(alerts), self._closed_through_us))
            if admitted.num_rows:
                pending = [self._pending] if self._pending is not None else []
                self._pending = pa.concat_tables([*pending, admitted.select(BASE_ALERT_RECORD.fieldNames())])
            return admitted

    def record(self, output: DataFrame, batch_id: int) -> DataFrame:
        """``output`` of the stateful query's batch ``batch_id`` plus the registered alerts its watermark closes."""
        closed_us = self.watermark_ms(batch_id) * 1000
        with self._lock:
            self._closed_through_us = max(closed_us, self._closed_through_us or closed_us)
            pending, due = self._pending, None
            if pending is not None:
                closes = pc.less_equal(_micros(pending), closed_us)
                due, rest = pending.filter(closes), pending.filter(pc.invert(closes))
                self._pending = rest if rest.num_rows else None
        if due is None or due.num_rows == 0:
            return output
        rows = self.detector.output_of_alerts(_arrow_frame(self.spark, due, BASE_ALERT_RECORD))
        keys = list(self.detector.output_key)
        kept = output.alias("_stateful").join(
            rows.select(*keys).alias("_early"),
            [F.col(f"_stateful.{key}").eqNullSafe(F.col(f"_early.{key}")) for key in keys],
            "left_anti",
        )
        LOG.info("batch %d records %d early alerts at or before its watermark", batch_id, due.num_rows)
        return kept.unionByName(rows.select(*output.columns))


def _micros(alerts: pa.Table) -> pa.Array:
    """``detected_at`` of ``alerts`` as microseconds since the epoch."""
    detected_at = alerts.column("detected_at")
    return pc.cast(pc.cast(detected_at, pa.timestamp("us", tz="UTC")), pa.int64())


class EarlyAlertHandler:
    """``foreachBatch`` handler of one detector's early query; holds the carry between batches.

    ``put_alerts`` writes a static batch of alert rows to the hot store and returns its
    counts (``AlertRouter.put_alerts`` in the job); ``stats``, when given, totals them;
    ``metrics``, when given, receives ``early_failures`` for each batch that raised;
    ``ledger``, when given, admits (and registers) the alerts before they are put: the
    stateful query then records every alert put here (ADR-029).
    """

    def __init__(
        self,
        spark: SparkSession,
        detector: BaseDetector[Any],
        put_alerts: Callable[[DataFrame], WriteCounts],
        stats: PipelineStats | None = None,
        metrics: MetricsPublisher | None = None,
        ledger: EarlyLedger | None = None,
    ) -> None:
        self.spark = spark
        self.detector = detector
        self.put_alerts = put_alerts
        self.stats = stats
        self.metrics = metrics
        self.ledger = ledger
        self._carry: pa.Table | None = None
        self._carry_batch = -1

    @property
    def carried_rows(self) -> int:
        """Trade rows held for the next batch."""
        return 0 if self._carry is None else self._carry.num_rows

    def _with_carry(self, batch: DataFrame, batch_id: int) -> DataFrame:
        """``batch`` plus the previous batch's carry, when this batch directly follows it."""
        carry, self._carry = self._carry, None
        if carry is None or carry.num_rows == 0:
            return batch
        if batch_id != self._carry_batch + 1:
            LOG.info(
                "%s: batch %d does not follow batch %d; %d carried trades dropped (the stateful query covers them)",
                early_query_name(self.detector),
                batch_id,
                self._carry_batch,
                carry.num_rows,
            )
            return batch
        return batch.unionByName(_arrow_frame(self.spark, carry, batch.schema))

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        """Put the alerts ``batch`` (with the carry) proves; keep the new carry (driver).

        Two Spark jobs: the puts (reading the batch), then the carry (from the persisted
        ``shared`` plan when the detector names one). The early path is best effort: an
        exception is logged with its stack and counted (``PipelineStats.early_failures`` and
        the CloudWatch metric ``early_failures``), the carry is dropped and the query goes on;
        the detector's stateful query still alerts every order of the batch, later.
        """
        try:
            counts = self._put_proven(batch, batch_id)
        except Exception:
            self._carry = None
            LOG.exception(
                "%s: batch %d failed; its orders are left to the detector's stateful query",
                early_query_name(self.detector),
                batch_id,
            )
            if self.stats is not None:
                self.stats.add("early_failures", self.detector.module_id, 1)
            if self.metrics is not None:
                self.metrics.publish({EARLY_FAILURES_METRIC: 1}, dimensions={"query": early_query_name(self.detector)})
            return
        if counts is None or self.stats is None:
            return
        self.stats.add("early_alerts", self.detector.module_id, counts.written)
        with self.stats.lock:
            self.stats.duplicates += counts.duplicates

    def _put_proven(self, batch: DataFrame, batch_id: int) -> WriteCounts | None:
        """The puts' counts (None when the detector has no early path for this batch)."""
        found = self.detector.early_alerts(self._with_carry(batch, batch_id))
        if found is None:
            return None
        shared = found.shared.persist() if found.shared is not None else None
        try:
            counts = self._put(found.alerts)
            self._carry, self._carry_batch = collect_arrow(found.carry), batch_id
        finally:
            if shared is not None:
                shared.unpersist()
        return counts

    def _put(self, alerts: DataFrame) -> WriteCounts:
        """Put ``alerts``; with a ledger only those it admits (collected first, registered, then put)."""
        if self.ledger is None:
            return self.put_alerts(alerts)
        admitted = self.ledger.admit(collect_arrow(alerts.select(*BASE_ALERT_RECORD.fieldNames())))
        if admitted.num_rows == 0:
            return WriteCounts()
        return self.put_alerts(_arrow_frame(self.spark, admitted, BASE_ALERT_RECORD))
