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

Example (what ``PipelineRunner.start`` does)::

    handler = EarlyAlertHandler(spark, detector, router.put_alerts, stats)
    frame.writeStream.foreachBatch(handler).option("checkpointLocation", ...).start()
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from coattail_framework.sinks.iceberg import collect_arrow

if TYPE_CHECKING:
    from coattail_framework.detector import BaseDetector
    from coattail_framework.metrics import MetricsPublisher
    from coattail_framework.pipeline.listener import PipelineStats
    from coattail_framework.sinks.dynamodb import WriteCounts

LOG = logging.getLogger(__name__)


EARLY_FAILURES_METRIC = "early_failures"
"""CloudWatch metric (Count, dimension ``query``) of early batches that raised."""


def early_query_name(detector: BaseDetector[Any]) -> str:
    """The early query's name (and checkpoint folder) of ``detector``."""
    return f"early-{detector.module_name}"


def _arrow_frame(spark: SparkSession, table: pa.Table, schema: StructType) -> DataFrame:
    """A DataFrame of the (small) Arrow ``table`` with ``schema``.

    PySpark 4 takes the Arrow table itself (about 0.1 s for a count of a few rows, against
    0.3 s from Python rows, which need a Python worker); 3.5 goes through pandas.
    """
    if int(pyspark.__version__.split(".")[0]) >= 4:
        return spark.createDataFrame(table).select(*schema.fieldNames())
    return spark.createDataFrame(table.to_pandas(), schema=schema)


class EarlyAlertHandler:
    """``foreachBatch`` handler of one detector's early query; holds the carry between batches.

    ``put_alerts`` writes a static batch of alert rows to the hot store and returns its
    counts (``AlertRouter.put_alerts`` in the job); ``stats``, when given, totals them;
    ``metrics``, when given, receives ``early_failures`` for each batch that raised.
    """

    def __init__(
        self,
        spark: SparkSession,
        detector: BaseDetector[Any],
        put_alerts: Callable[[DataFrame], WriteCounts],
        stats: PipelineStats | None = None,
        metrics: MetricsPublisher | None = None,
    ) -> None:
        self.spark = spark
        self.detector = detector
        self.put_alerts = put_alerts
        self.stats = stats
        self.metrics = metrics
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
            counts = self.put_alerts(found.alerts)
            self._carry, self._carry_batch = collect_arrow(found.carry), batch_id
        finally:
            if shared is not None:
                shared.unpersist()
        return counts
