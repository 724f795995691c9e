"""``PipelineRunner``: the stream job's queries, started and stopped together.

Runs on the Spark driver (EMR Serverless or local). One streaming query ingests:
Kinesis -> ``parse_trades`` -> ``DataQualityChecker`` (per-rule counts observed) ->
valid rows appended to the Iceberg ``raw_trades`` table (kept for reprocessing), invalid
rows to the dead-letter path with their reasons. One streaming query per active
detector reads the same stream (its own Kinesis offsets and checkpoint), keeps the valid
rows, runs ``detector.process`` (the detector's watermark) and routes each micro-batch:
module output rows to the detector's Iceberg table, alerts to DynamoDB and the Iceberg
``alerts`` table. Every sink is idempotent per (query, batch id), so a restart that
replays the last batch from the checkpoint writes nothing twice.

Checkpoints live under ``storage.checkpoint_root/<query name>`` (S3 on EMR, a local
folder by default). Before any query starts, each Iceberg writer's checkpoint gets its
identity (``prepare_checkpoints``): the sink's exactly-once check is per (writer,
checkpoint), and a new checkpoint on tables its writer already wrote is refused unless
``storage.accept_new_checkpoints`` (``pipeline.checkpoints``, ADR-028). Each query's
trigger is ``streaming.trigger_for(<ingest or module name>)``: a short one for the hot
path, longer ones where batches only feed windows or cold storage; live queries on the
same interval take turns within it (``read_delays``, ADR-027). ``drain=True`` processes
what the stream holds, in bounded batches, then stops: with ``availableNow`` where the
source supports it (PySpark 4.2+), else (4.0/4.1, where Spark would fall back to a single
unbounded batch) with a short processing-time trigger, stopping each query once Spark
reports two triggers in a row with no new data and no batch to run — after the no-data
batch that emits what the final watermark closed. When a drain ends, ``check_drained``
verifies that every query read each shard past every record that arrived before the drain
started, and raises ``DrainIncompleteError`` (stream, shards, counts) when one did not
(``pipeline.completeness``; skipped, and logged, with the ``aws-kinesis`` source).

Example::

    runner = PipelineRunner(spark, config)
    runner.start()
    runner.await_termination()   # SIGTERM stops every query after its current batch
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from types import FrameType
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from coattail_framework.config.model import EARLY_SUFFIX, CoattailConfig
from coattail_framework.detector import BaseDetector
from coattail_framework.errors import ConfigError
from coattail_framework.metrics import MetricsPublisher
from coattail_framework.partitioning import PartitionField, day, identity
from coattail_framework.pipeline.checkpoints import CheckpointState, prepare_checkpoints
from coattail_framework.pipeline.completeness import DrainedQuery, check_drain, end_positions, starting_position
from coattail_framework.pipeline.early import (
    CheckpointWatermarks,
    EarlyAlertHandler,
    EarlyLedger,
    RecordsEarlyAlerts,
    early_query_name,
)
from coattail_framework.pipeline.listener import PipelineListener, PipelineStats
from coattail_framework.pipeline.parse import parse_trades, trade_columns
from coattail_framework.quality import DataQualityChecker, write_dead_letters
from coattail_framework.quality.checker import FAILED_RULES, REASON
from coattail_framework.quality.dlq import dead_letter_date, today_utc
from coattail_framework.registry import ModuleRegistry
from coattail_framework.schemas import UNIFIED_TRADE_EVENT
from coattail_framework.sinks import ALERTS_TABLE, AlertRouter
from coattail_framework.sinks.iceberg import collect_arrow
from coattail_kinesis.limits import GET_RECORDS_CALLS_PER_SECOND
from coattail_kinesis.reader import kinesis_client

if TYPE_CHECKING:
    from coattail_framework.pipeline.completeness import DrainCheck

LOG = logging.getLogger(__name__)

RAW_TRADES_TABLE = "raw_trades"
RAW_TRADES_PARTITION: Sequence[PartitionField] = (day("timestamp"), identity("exchange"))
INGEST_QUERY = "ingest"
GRACEFUL_STOP_SECONDS = 60.0
DRAIN_TRIGGER_SECONDS = 0.5
DRAIN_SETTLE_SECONDS = 10.0
WAITING_FOR_DATA = "Waiting for data to arrive"
_INVALID = "_dq_invalid"
DeadLetterCounts = tuple[str, dict[tuple[str, str], int]]
"""``(today, rows per (reason, dt))`` of a batch's invalid rows (see ``write_dead_letters``)."""
_DLQ_DATE = "_dlq_date"


def detector_query_name(detector: BaseDetector[Any]) -> str:
    """The streaming query (and checkpoint folder, and sink writer) name of a detector."""
    return f"detector-{detector.module_name}"


def last_executed_batch(progresses: Sequence[Any]) -> int:
    """The id of the last batch that ran (-1 if none), from a query's ``recentProgress``.

    A query's last progress can describe a trigger that ran no batch (no ``addBatch`` in
    its ``durationMs``, e.g. the end of an ``availableNow`` run with event-time state). Spark
    does not deliver that one to ``onQueryProgress``, so waiting for it would wait for the
    listener's whole timeout (it made the whole job's drain from files take 30 s longer).
    """
    for progress in reversed(progresses):
        if "addBatch" in (progress["durationMs"] or {}):
            return int(progress["batchId"])
    return -1


class PipelineRunner:
    """Builds, starts and stops the ingest query and one query per active detector."""

    def __init__(
        self,
        spark: SparkSession,
        config: CoattailConfig,
        *,
        detectors: Sequence[BaseDetector[Any]] | None = None,
        router: AlertRouter | None = None,
        metrics: MetricsPublisher | None = None,
    ) -> None:
        self.spark = spark
        self.config = config
        self.detectors = list(
            detectors if detectors is not None else ModuleRegistry().discover().get_active_detectors(config)
        )
        self.router = router or AlertRouter.from_config(config)
        self.checker = DataQualityChecker(
            spark, config, extra_rules=[rule for d in self.detectors for rule in d.quality_rules()]
        )
        self._check_trigger_names()
        self._check_retention_tables()
        self.stats = PipelineStats()
        self.metrics = metrics or MetricsPublisher(config.metrics, config.aws)
        self.queries: list[StreamingQuery] = []
        self._listener: PipelineListener | None = None
        self._detach_lock = threading.Lock()
        self._stopping = threading.Event()
        self._drain_started_at: datetime | None = None
        self.drain_check: DrainCheck | None = None
        """What the last drain left unread per query and shard (set by ``check_drained``)."""

    def _check_trigger_names(self) -> None:
        """Refuse a ``query_trigger_seconds`` entry naming neither ingest nor a module of any tier (a typo)."""
        modules = {name for tier in self.config.tiers.values() for name in tier}
        modules |= {detector.module_name for detector in self.detectors}
        known = {INGEST_QUERY, *modules, *(f"{module}{EARLY_SUFFIX}" for module in modules)}
        unknown = sorted(set(self.config.streaming.query_trigger_seconds) - known)
        if unknown:
            raise ConfigError(
                f"{self.config.source_of(('streaming', 'query_trigger_seconds'))}: streaming.query_trigger_seconds "
                f"names {', '.join(unknown)}, neither ingest nor a module or its early query; "
                f"known: {', '.join(sorted(known))}"
            )

    def _check_retention_tables(self) -> None:
        """Warn about ``iceberg.maintenance.table_retention`` entries for tables this job does not write.

        A warning, not an error: the same file may configure tables of modules this job does
        not run. A misspelt name would otherwise leave its table on the default retention silently.
        """
        written = {RAW_TRADES_TABLE, ALERTS_TABLE, *(detector.output_table for detector in self.detectors)}
        unknown = sorted(set(self.config.iceberg.maintenance.table_retention) - written)
        if unknown:
            LOG.warning(
                "%s: iceberg.maintenance.table_retention names %s, which this job does not write (it writes %s); "
                "those entries apply to no table here",
                self.config.source_of(("iceberg", "maintenance", "table_retention")),
                ", ".join(unknown),
                ", ".join(sorted(written)),
            )

    def trigger_seconds(self) -> dict[str, float]:
        """Each query's live trigger (seconds), by query name."""
        streaming = self.config.streaming
        triggers = {INGEST_QUERY: streaming.trigger_for(INGEST_QUERY)}
        for detector in self.detectors:
            triggers[detector_query_name(detector)] = streaming.trigger_for(detector.module_name)
        for detector in self.early_detectors():
            triggers[early_query_name(detector)] = streaming.trigger_for(f"{detector.module_name}{EARLY_SUFFIX}")
        return triggers

    def early_detectors(self) -> list[BaseDetector[Any]]:
        """The active detectors whose early query runs (``streaming.early_alerts`` and an early path)."""
        if not self.config.streaming.early_alerts:
            return []
        return [detector for detector in self.detectors if detector.has_early_alerts]

    def reads_per_shard_second(self) -> float:
        """Most ``GetRecords`` calls per second per shard the live queries make once caught up.

        A caught-up query reads each shard once per batch, at most once per max(trigger,
        ``kinesis.min_poll_interval_ms``).
        """
        floor_s = self.config.kinesis.min_poll_interval_ms / 1000
        return sum(1 / max(trigger, floor_s) for trigger in self.trigger_seconds().values())

    def read_delays(self) -> dict[str, float]:
        """Seconds each live query's source waits on every trigger before reading, by query name.

        Spark starts a processing-time batch at the next multiple of its interval since the
        epoch, so queries with the same trigger all plan and run at the same instant. With
        ``streaming.stagger_triggers`` (``coattail-kinesis`` only) the n queries on one
        interval T wait 0, T/n, 2T/n, ... in start order: four cold queries on 10 s take their
        turns instead of holding both cores together while the hot path waits (ADR-027). A
        query alone on its interval waits for nothing.
        """
        triggers = self.trigger_seconds()
        if not self.config.streaming.stagger_triggers or self.config.kinesis.source != "coattail-kinesis":
            return dict.fromkeys(triggers, 0.0)
        by_interval: dict[float, list[str]] = {}
        for name, seconds in triggers.items():
            by_interval.setdefault(seconds, []).append(name)
        return {
            name: index * seconds / len(names)
            for seconds, names in by_interval.items()
            for index, name in enumerate(names)
        }

    def _records(self, read_delay_seconds: float = 0.0) -> DataFrame:
        from coattail_framework.kinesis import read_trade_stream

        return read_trade_stream(self.spark, self.config, read_delay_ms=round(read_delay_seconds * 1000))

    def _checkpoint(self, name: str) -> str:
        return f"{self.config.storage.checkpoint_root.rstrip('/')}/{name}"

    def _available_now(self) -> bool:
        if self.config.kinesis.source != "coattail-kinesis":
            return True
        from coattail_kinesis.source import SUPPORTS_AVAILABLE_NOW

        return SUPPORTS_AVAILABLE_NOW

    def _start(self, frame: DataFrame, name: str, handler: Any, drain: bool, trigger_seconds: float) -> StreamingQuery:
        writer = frame.writeStream.queryName(name).foreachBatch(handler)
        writer = writer.option("checkpointLocation", self._checkpoint(name))
        if drain and self._available_now():
            writer = writer.trigger(availableNow=True)
        elif drain:
            writer = writer.trigger(processingTime=f"{DRAIN_TRIGGER_SECONDS} seconds")
        else:
            writer = writer.trigger(processingTime=f"{trigger_seconds} seconds")
        from coattail_framework.spark import start_query  # retries a start whose source process was late

        return start_query(writer)

    def _stop_when_drained(self) -> None:
        """Stop each query once it is idle: two triggers in a row found no new data and ran no batch.

        One empty trigger is not enough: Spark may report "waiting for data" right after a
        batch, before the trigger that runs the no-data batch for the moved watermark. So a
        query that keeps event-time state must also have run a no-data batch after its last
        data (or stayed idle for ``DRAIN_SETTLE_SECONDS``, when its watermark did not move).
        """
        waiting_at: dict[str, int] = {}
        idle_since: dict[str, float] = {}
        triggered_since: set[str] = set()
        while any(query.isActive for query in self.queries) and not self._stopping.is_set():
            if self._failed() is not None:
                self.stop(timeout_seconds=0)
                return
            for query in self.queries:
                if not query.isActive:
                    continue
                status, progress = query.status, query.lastProgress
                batch = -1 if progress is None else int(progress["batchId"])
                if status["isTriggerActive"]:
                    triggered_since.add(query.name)
                elif status["message"] == WAITING_FOR_DATA:
                    if waiting_at.get(query.name) != batch:
                        waiting_at[query.name] = batch
                        idle_since[query.name] = time.monotonic()
                        triggered_since.discard(query.name)
                    elif query.name in triggered_since and self._closed_watermark(progress, idle_since[query.name]):
                        query.stop()
            time.sleep(0.02)

    @staticmethod
    def _closed_watermark(progress: Any, idle_since: float) -> bool:
        if progress is None or int(progress["numInputRows"]) == 0:
            return True
        if "watermark" not in (progress["eventTime"] or {}):
            return True
        return time.monotonic() - idle_since >= DRAIN_SETTLE_SECONDS

    def ingest_frame(self, records: DataFrame) -> DataFrame:
        """Parsed and quality-flagged trades, with the quality counts observed."""
        flagged, metrics = self.checker.observe(parse_trades(records))
        if self._listener is not None:
            self._listener.quality = metrics
        return flagged

    def write_ingest_batch(self, batch: DataFrame, batch_id: int) -> None:
        """Valid rows to ``raw_trades``, invalid rows to the DLQ (driver, per micro-batch).

        With the ``pyiceberg`` writer the batch is collected once (valid rows, plus the
        reason and ``dt`` of invalid ones) and split on the driver: one Spark job, and the
        DLQ writes run only when the batch holds invalid rows.
        """
        batch = batch.persist()
        try:
            valid, invalid = DataQualityChecker.split(batch)
            if self.router.sink.collects_to_driver:
                written, counted = self._append_collected(batch, batch_id)
            else:
                written = self.router.sink.append(
                    RAW_TRADES_TABLE,
                    UNIFIED_TRADE_EVENT,
                    RAW_TRADES_PARTITION,
                    trade_columns(valid),
                    batch_id=batch_id,
                    writer=INGEST_QUERY,
                )
                counted = None
            self.stats.add("table_rows", RAW_TRADES_TABLE, written)
            dead = invalid.select(*UNIFIED_TRADE_EVENT.fieldNames(), "raw", "dq_failed_rules", "dq_warnings", REASON)
            raw_zone = self.config.storage.raw_zone
            for reason, count in write_dead_letters(dead, raw_zone, batch_id=batch_id, counted=counted).items():
                self.stats.add("dead_letters", reason, count)
        finally:
            batch.unpersist()

    def _append_collected(
        self, flagged: DataFrame, batch_id: int
    ) -> tuple[int, tuple[str, dict[tuple[str, str], int]]]:
        """Collect ``flagged`` once, append its valid rows; rows written and the invalid rows per (reason, dt)."""
        today = today_utc()
        is_invalid = F.size(F.col(FAILED_RULES)) > 0
        collected = collect_arrow(
            flagged.select(
                *UNIFIED_TRADE_EVENT.fieldNames(),
                is_invalid.alias(_INVALID),
                F.when(is_invalid, F.col(FAILED_RULES)[0]).alias(REASON),
                F.when(is_invalid, dead_letter_date(today)).alias(_DLQ_DATE),
            )
        )
        invalid_mask = collected.column(_INVALID)
        valid = collected.filter(pc.invert(invalid_mask))
        outcome = self.router.sink.write_arrow(
            RAW_TRADES_TABLE, UNIFIED_TRADE_EVENT, RAW_TRADES_PARTITION, valid, batch_id=batch_id, writer=INGEST_QUERY
        )
        groups = collected.filter(invalid_mask).group_by([REASON, _DLQ_DATE]).aggregate([(REASON, "count")])
        counts = {
            (reason, date): int(count)
            for reason, date, count in zip(
                groups.column(REASON).to_pylist(),
                groups.column(_DLQ_DATE).to_pylist(),
                groups.column(f"{REASON}_count").to_pylist(),
                strict=True,
            )
        }
        return outcome.rows, (today, counts)

    def detector_frame(self, detector: BaseDetector[Any], records: DataFrame) -> DataFrame:
        """The detector's module output over the valid trades of ``records``."""
        return detector.process(self.valid_trades(records))

    def valid_trades(self, records: DataFrame) -> DataFrame:
        """The valid trades of ``records`` (``UNIFIED_TRADE_EVENT`` columns): input of detectors and early queries."""
        valid, _ = DataQualityChecker.split(self.checker.flag(parse_trades(records)))
        return trade_columns(valid)

    def write_detector_batch(self, detector: BaseDetector[Any], output: DataFrame, batch_id: int) -> None:
        """Alerts to DynamoDB and Iceberg, then module rows to Iceberg (driver, per micro-batch)."""
        result = self.router.route_detector_batch(detector, output, batch_id, writer=detector_query_name(detector))
        self.stats.add("table_rows", detector.output_table, result.module_rows)
        if result.alerts is None:
            return
        self.stats.add("table_rows", "alerts", result.alerts.iceberg_rows)
        with self.stats.lock:
            self.stats.duplicates += result.alerts.duplicates
        if not result.alerts.skipped:
            for severity, count in result.alerts.by_severity.items():
                self.stats.add("alerts", (detector.module_id, severity), count)

    def start(self, *, drain: bool = False) -> list[StreamingQuery]:
        """Start the ingest query and one query per detector; returns them."""
        triggers = self.trigger_seconds()
        reads = self.reads_per_shard_second()
        if not drain and self.config.kinesis.source == "coattail-kinesis" and reads > GET_RECORDS_CALLS_PER_SECOND:
            LOG.warning(
                "the queries' triggers (%s) and kinesis.min_poll_interval_ms (%d) allow %.1f GetRecords/s per shard, "
                "above Kinesis's %d shared by all consumers: reads will be throttled; lengthen the triggers of "
                "queries that do not need them (streaming.query_trigger_seconds)",
                ", ".join(f"{name} {seconds:g} s" for name, seconds in triggers.items()),
                self.config.kinesis.min_poll_interval_ms,
                reads,
                GET_RECORDS_CALLS_PER_SECOND,
            )
        delays = dict.fromkeys(triggers, 0.0) if drain else self.read_delays()
        self.prepare_checkpoints()
        self._drain_started_at = datetime.now(timezone.utc) if drain else None
        self._listener = PipelineListener(self.stats, self.metrics, None)
        self.spark.streams.addListener(self._listener)
        ingest = self.ingest_frame(self._records(delays[INGEST_QUERY]))
        self.queries.append(self._start(ingest, INGEST_QUERY, self.write_ingest_batch, drain, triggers[INGEST_QUERY]))
        ledgers = {  # early alerts the stateful query records itself (ADR-029)
            detector.module_name: EarlyLedger(
                self.spark, detector, CheckpointWatermarks(self.spark, self._checkpoint(detector_query_name(detector)))
            )
            for detector in self.early_detectors()
            if isinstance(detector, RecordsEarlyAlerts)
        }
        for detector in self.detectors:

            def handler(batch: DataFrame, batch_id: int, detector: BaseDetector[Any] = detector) -> None:
                ledger = ledgers.get(detector.module_name)
                output = batch if ledger is None else ledger.record(batch, batch_id)
                self.write_detector_batch(detector, output, batch_id)

            name = detector_query_name(detector)
            frame = self.detector_frame(detector, self._records(delays[name]))
            self.queries.append(self._start(frame, name, handler, drain, triggers[name]))
        for detector in self.early_detectors():
            early = EarlyAlertHandler(
                self.spark,
                detector,
                self.router.put_alerts,
                self.stats,
                self.metrics,
                ledger=ledgers.get(detector.module_name),
            )
            name = early_query_name(detector)
            frame = self.valid_trades(self._records(delays[name]))
            self.queries.append(self._start(frame, name, early, drain, triggers[name]))
        started = [f"{q.name} (every {triggers[q.name]:g} s, reads {delays[q.name]:g} s in)" for q in self.queries]
        LOG.info("started queries: %s", ", ".join(started))
        return self.queries

    def prepare_checkpoints(self) -> dict[str, CheckpointState]:
        """Each Iceberg writer's checkpoint identity, registered with the sink (driver, before the queries start).

        Raises ``NewCheckpointError`` naming table, writer and both checkpoint ids when a new
        checkpoint meets tables its writer wrote from another one and
        ``storage.accept_new_checkpoints`` is false (``pipeline.checkpoints``).
        """
        writers = {INGEST_QUERY: [RAW_TRADES_TABLE]}
        writers.update({detector_query_name(d): [d.output_table, ALERTS_TABLE] for d in self.detectors})
        return prepare_checkpoints(
            self.spark,
            self.router.sink,
            writers,
            self._checkpoint,
            accept=self.config.storage.accept_new_checkpoints,
            starting_position=self.config.kinesis.starting_position,
        )

    def _failed(self) -> StreamingQuery | None:
        return next((q for q in self.queries if not q.isActive and q.exception() is not None), None)

    def await_termination(self) -> None:
        """Block until every query has stopped; one query failing stops the others, then raises."""
        while any(query.isActive for query in self.queries):
            if self._failed() is not None:
                self.stop(timeout_seconds=0)
                break
            try:
                self.spark.streams.awaitAnyTermination(timeout=1)
            except Exception:  # noqa: BLE001 - the failed query is reported below
                LOG.debug("a query terminated with an error")
            self.spark.streams.resetTerminated()
        if (failed := self._failed()) is not None:
            raise RuntimeError(f"query {failed.name} failed: {failed.exception()}")

    def run(self, *, drain: bool = False, handle_signals: bool = True) -> PipelineStats:
        """Start, wait (SIGTERM/SIGINT stop gracefully when ``handle_signals``), return the totals."""
        if handle_signals:
            self.install_signal_handlers()
        self.start(drain=drain)
        try:
            if drain and not self._available_now():
                self._stop_when_drained()
            self.await_termination()
        finally:
            self._detach_listener()
        if drain:
            self.check_drained()
        return self.stats

    def check_drained(self) -> DrainCheck | None:
        """After a drain: raise ``DrainIncompleteError`` if a query left records it was asked to read.

        Asked to read: every record that arrived before ``start(drain=True)`` (driver clock,
        UTC), after the query's checkpointed start. Each query's end is its last batch's end
        offset; its rows read are the listener's totals. Records that arrived later are not
        required. Also raises when the drain was stopped early (SIGTERM) with records left.
        Returns None, after logging it, where the check is not possible: the ``aws-kinesis``
        source's offsets are the JVM connector's own.
        """
        if self._drain_started_at is None:
            raise RuntimeError("check_drained needs a drain: call start(drain=True) or run(drain=True) first")
        kinesis = self.config.kinesis
        if kinesis.source != "coattail-kinesis":
            LOG.warning(
                "drain completeness not checked: the %s source's offsets are not readable here; "
                "compare the rows read (%s) with the stream yourself",
                kinesis.source,
                dict(self.stats.input_rows),
            )
            return None
        drained = {
            query.name: DrainedQuery(end_positions(query.recentProgress), self.stats.input_rows[query.name])
            for query in self.queries
        }
        check = check_drain(
            kinesis_client(self.config.aws.region, self.config.aws.endpoint_url),
            kinesis.stream_name,
            drained,
            started_at=self._drain_started_at,
            default_position=starting_position(kinesis.starting_position, kinesis.starting_timestamp),
        )
        self.drain_check = check
        check.raise_if_incomplete()
        LOG.info("drain of %s complete: %s", kinesis.stream_name, check.describe())
        return check

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop every query after its current micro-batch (main thread only)."""

        def stop(signum: int, _: FrameType | None) -> None:
            LOG.warning("signal %s: stopping queries after their current batch", signal.Signals(signum).name)
            threading.Thread(target=self.stop, name="coattail-graceful-stop", daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def stop(self, timeout_seconds: float = GRACEFUL_STOP_SECONDS) -> None:
        """Stop every query, each once its running micro-batch (if any) has finished."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        deadline = time.monotonic() + timeout_seconds
        for query in self.queries:
            while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
                time.sleep(0.1)
            query.stop()
        LOG.info("all queries stopped")
        self._detach_listener()

    def _detach_listener(self) -> None:
        """Once the queries stopped: wait for their last batches' progress, then remove the listener.

        Spark delivers progress asynchronously, so the totals (``stats``) are complete only
        after the wait. Removing the listener matters where the session outlives the runner
        (a replay, tests): a listener left behind would keep receiving later runners' progress
        and publishing it to this run's metrics endpoint. Called by ``stop`` and ``run``; the
        second call does nothing.
        """
        with self._detach_lock:
            listener, self._listener = self._listener, None
            if listener is None:
                return
            last = {q.name: batch for q in self.queries if (batch := last_executed_batch(q.recentProgress)) >= 0}
            if not listener.wait_for(last):
                LOG.warning("progress of the last batches not delivered in time; totals may be short")
            self.spark.streams.removeListener(listener)
