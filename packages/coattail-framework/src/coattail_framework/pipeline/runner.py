"""``PipelineRunner``: the stream job's queries, started and stopped together.

Runs on the Spark driver (EMR Serverless or local); the ``foreachBatch`` handlers it
registers run there too, one stream-execution thread per query. One streaming query
ingests: Kinesis -> ``parse_trades`` -> ``DataQualityChecker`` (per-rule counts observed)
-> valid rows appended to the Iceberg ``raw_trades`` table (kept for reprocessing), invalid
rows to the dead-letter path with their reasons (``pipeline.ingest``). One streaming
query per active detector reads the trades ingest committed to ``raw_trades``
(``streaming.detector_input: raw_trades``, the ``coattail-feed`` source, ADR-041: the stream
is read, parsed and checked once) or, with ``kinesis``, the stream itself (its own offsets,
parse and quality checks); it runs ``detector.process`` (the detector's watermark) and routes
each micro-batch: module output rows to the detector's Iceberg table, alerts to DynamoDB
and the Iceberg ``alerts`` table. Every sink is idempotent per (query, batch id), so a
restart that replays the last batch from the checkpoint writes nothing twice.

Checkpoints live under ``storage.checkpoint_root/<query name>`` (S3 on EMR, a local
folder by default). Before any query starts, each Iceberg writer's checkpoint gets its
identity (``prepare_checkpoints``): the sink's exactly-once check is per (writer,
checkpoint), and a new checkpoint on tables its writer already wrote is refused unless
``storage.accept_new_checkpoints`` (``pipeline.checkpoints``, ADR-028). Each query's
trigger (seconds) and its turn within the interval come from ``pipeline.triggers``: a
short one for the hot path, longer ones where batches only feed windows or cold storage;
live queries on the same interval take turns within it (ADR-022, ADR-027). ``drain=True``
processes what the stream holds, in bounded batches, then stops: with ``availableNow``
where the source supports it (PySpark 4.2+), else (4.0/4.1, where Spark would fall back to
a single unbounded batch) with a short processing-time trigger, stopping each query once Spark
reports two triggers in a row with no new data and no batch to run — after the no-data
batch that emits what the final watermark closed. Detector queries on ``raw_trades`` always
drain with the processing-time trigger and stop only once ingest has stopped and they read
its last commit. When a drain ends, ``check_drained`` verifies that every Kinesis query read
each shard past every record that arrived before the drain started, and every ``raw_trades``
query the table's last commit, and raises ``DrainIncompleteError`` (stream, shards, counts)
when one did not (``pipeline.completeness``; the Kinesis check is skipped, and logged, with
the ``aws-kinesis`` source). A drain
may have a time limit (``run(drain=True, time_limit_seconds=...)``): past it every query is
stopped and ``DrainTimeLimitError`` names those still running.

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
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from coattail_framework.config.model import EARLY_SUFFIX, CoattailConfig
from coattail_framework.detector import BaseDetector
from coattail_framework.errors import CoattailError
from coattail_framework.metrics import MetricsPublisher
from coattail_framework.pipeline import triggers
from coattail_framework.pipeline.checkpoints import CheckpointState, prepare_checkpoints
from coattail_framework.pipeline.completeness import (
    DrainedQuery,
    DrainIncompleteError,
    DrainTimeLimitError,
    check_drain,
    end_offset,
    end_positions,
    starting_position,
)
from coattail_framework.pipeline.early import (
    CheckpointWatermarks,
    EarlyAlertHandler,
    EarlyLedger,
    RecordsEarlyAlerts,
    early_query_name,
)
from coattail_framework.pipeline.ingest import (
    INGEST_QUERY,
    RAW_TRADES_PARTITION,
    RAW_TRADES_TABLE,
    write_ingest_batch,
)
from coattail_framework.pipeline.listener import PipelineListener, PipelineStats
from coattail_framework.pipeline.parse import parse_trades, trade_columns
from coattail_framework.quality import DataQualityChecker
from coattail_framework.registry import ModuleRegistry
from coattail_framework.schemas import UNIFIED_TRADE_EVENT
from coattail_framework.sinks import ALERTS_TABLE, AlertRouter
from coattail_kinesis.reader import kinesis_client

if TYPE_CHECKING:
    from coattail_framework.pipeline.completeness import DrainCheck

__all__ = [
    "PipelineRunner",
    "QueryFailedError",
    "detector_query_name",
    "last_executed_batch",
]

LOG = logging.getLogger(__name__)

GRACEFUL_STOP_SECONDS = 60.0
DRAIN_SETTLE_SECONDS = 10.0
DRAIN_STOP_GRACE_SECONDS = 10.0
"""Once a drain's time limit passed: how long each query may take to finish its running batch."""
WAITING_FOR_DATA = "Waiting for data to arrive"


class QueryFailedError(CoattailError, RuntimeError):
    """A query of the stream job failed; the others were stopped.

    Also a ``RuntimeError``: ``coattail-stream-job run`` exits 1 with it.
    """


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
        triggers.check_trigger_keys(config, (detector.module_name for detector in self.detectors))
        self._check_retention_tables()
        self.stats = PipelineStats()
        self.metrics = metrics or MetricsPublisher(config.metrics, config.aws)
        self.queries: list[StreamingQuery] = []
        self._listener: PipelineListener | None = None
        self._detach_lock = threading.Lock()
        self._stopping = threading.Event()
        self._drain_started_at: datetime | None = None
        self._available_now: set[str] = set()
        self.drain_check: DrainCheck | None = None
        """What the last drain left unread per query and shard (set by ``check_drained``)."""

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
        """Each query's live trigger (seconds), by query name, in start order (``triggers.query_triggers``)."""
        keys = {INGEST_QUERY: INGEST_QUERY}
        keys.update({detector_query_name(detector): detector.module_name for detector in self.detectors})
        keys.update({early_query_name(d): f"{d.module_name}{EARLY_SUFFIX}" for d in self.early_detectors()})
        return triggers.query_triggers(self.config.streaming, keys)

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
        return triggers.reads_per_shard_second(self.kinesis_triggers(), self.config.kinesis.min_poll_interval_ms)

    @property
    def detectors_read_feed(self) -> bool:
        """True when the detector queries read ``raw_trades`` commits (``streaming.detector_input``), not Kinesis."""
        return self.config.streaming.detector_input == "raw_trades"

    def feed_queries(self) -> set[str]:
        """The names of the queries that read ``raw_trades`` commits (``coattail-feed``), not Kinesis."""
        if not self.detectors_read_feed:
            return set()
        return {detector_query_name(detector) for detector in self.detectors}

    def kinesis_triggers(self) -> dict[str, float]:
        """``trigger_seconds`` of the queries that read Kinesis (the others read no shard)."""
        feed = self.feed_queries()
        return {name: seconds for name, seconds in self.trigger_seconds().items() if name not in feed}

    def read_delays(self) -> dict[str, float]:
        """Seconds each live query's source waits on every trigger before reading, by query name.

        Queries on one interval take turns within it (``streaming.stagger_triggers``,
        ``coattail-kinesis`` only, ADR-027); see ``triggers.read_delays``.
        """
        stagger = triggers.staggers(self.config.streaming, self.config.kinesis)
        return triggers.read_delays(self.trigger_seconds(), stagger=stagger)

    def _records(self, read_delay_seconds: float = 0.0) -> DataFrame:
        from coattail_framework.kinesis import read_trade_stream

        return read_trade_stream(self.spark, self.config, read_delay_ms=round(read_delay_seconds * 1000))

    def _checkpoint(self, name: str) -> str:
        return f"{self.config.storage.checkpoint_root.rstrip('/')}/{name}"

    def _start(self, frame: DataFrame, name: str, handler: Any, drain: bool, trigger_seconds: float) -> StreamingQuery:
        writer = frame.writeStream.queryName(name).foreachBatch(handler)
        writer = writer.option("checkpointLocation", self._checkpoint(name))
        # A raw_trades query drains on a processing-time trigger: availableNow would end it at
        # the commit current when it started, while ingest is still committing.
        available_now = (
            drain and name not in self.feed_queries() and triggers.supports_available_now(self.config.kinesis.source)
        )
        if available_now:
            self._available_now.add(name)
        interval = triggers.processing_time(
            drain=drain, available_now=available_now, live_seconds=trigger_seconds, feed=name in self.feed_queries()
        )
        writer = writer.trigger(availableNow=True) if interval is None else writer.trigger(processingTime=interval)
        from coattail_framework.spark import start_query  # retries a start whose source process was late

        return start_query(writer)

    def _stop_when_drained(self, deadline: float | None = None) -> None:
        """Stop each query once it is idle: two triggers in a row found no new data and ran no batch.

        One empty trigger is not enough: Spark may report "waiting for data" right after a
        batch, before the trigger that runs the no-data batch for the moved watermark. So a
        query that keeps event-time state must also have run a no-data batch after its last
        data (or stayed idle for ``DRAIN_SETTLE_SECONDS``, when its watermark did not move).
        A ``raw_trades`` query is considered only once ingest has stopped, and is done when it
        read the table's last commit and closed its watermark.
        ``deadline``: see ``run``'s ``time_limit_seconds``.
        """
        waiting_at: dict[str, int] = {}
        idle_since: dict[str, float] = {}
        triggered_since: set[str] = set()
        feed = self.feed_queries()
        fed_until: int | None = None  # raw_trades' last commit, once ingest stopped
        while any(query.isActive for query in self.queries) and not self._stopping.is_set():
            if self._failed() is not None:
                self.stop(timeout_seconds=0)
                return
            self._stop_at_deadline(deadline)
            if feed and fed_until is None and not any(q.isActive for q in self.queries if q.name == INGEST_QUERY):
                fed_until = self.raw_trades_sequence_number()
            for query in self.queries:
                if not query.isActive or query.name in self._available_now:
                    continue
                if query.name in feed and (fed_until is None or self._feed_position(query) != fed_until):
                    continue
                status, progress = query.status, query.lastProgress
                batch = -1 if progress is None else int(progress["batchId"])
                if query.name in feed and not status["isTriggerActive"]:
                    # It read raw_trades' last commit after ingest stopped: no data can follow, so
                    # only its final watermark's no-data batch is awaited, not two idle triggers.
                    idle_since.setdefault(query.name, time.monotonic())
                    if self._closed_watermark(progress, idle_since[query.name]):
                        query.stop()
                    continue
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

    def raw_trades_sequence_number(self) -> int:
        """The data sequence number of ``raw_trades``' current commit (0 when empty). Driver."""
        from coattail_framework.feed.increments import current_sequence_number

        table = self.router.sink.catalog.load_table((self.config.iceberg.database, RAW_TRADES_TABLE))
        return current_sequence_number(table)

    @staticmethod
    def _feed_position(query: StreamingQuery) -> int | None:
        """The ``raw_trades`` sequence number a feed query's last trigger ended at (None before any)."""
        offset = end_offset(query.recentProgress)
        return None if offset is None else int(offset["sequence_number"])

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
        """Valid rows to ``raw_trades``, invalid rows to the DLQ (driver, per micro-batch); see ``pipeline.ingest``."""
        write_ingest_batch(
            batch, batch_id, sink=self.router.sink, raw_zone=self.config.storage.raw_zone, stats=self.stats
        )

    def detector_frame(self, detector: BaseDetector[Any], read_delay_seconds: float = 0.0) -> DataFrame:
        """The detector's module output over its input: ``raw_trades`` commits, or the stream's valid trades."""
        if self.detectors_read_feed:
            from coattail_framework.feed import read_trade_feed

            return detector.process(read_trade_feed(self.spark, self.config, round(read_delay_seconds * 1000)))
        return detector.process(self.valid_trades(self._records(read_delay_seconds)))

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
        intervals = self.trigger_seconds()
        excess = None if drain else triggers.shard_read_excess(self.kinesis_triggers(), self.config.kinesis)
        if excess is not None:
            LOG.warning("%s", excess)
        delays = dict.fromkeys(intervals, 0.0) if drain else self.read_delays()
        self.prepare_checkpoints()
        if self.detectors_read_feed and self.detectors:  # the detector queries read it from their first trigger
            self.router.sink.ensure(RAW_TRADES_TABLE, UNIFIED_TRADE_EVENT, RAW_TRADES_PARTITION)
        self._drain_started_at = datetime.now(UTC) if drain else None
        self._listener = PipelineListener(self.stats, self.metrics, None)
        self.spark.streams.addListener(self._listener)
        ingest = self.ingest_frame(self._records(delays[INGEST_QUERY]))
        self.queries.append(self._start(ingest, INGEST_QUERY, self.write_ingest_batch, drain, intervals[INGEST_QUERY]))
        # A drain runs no early query: its stateful query puts every alert anyway, and the early
        # path is a latency path, which a backlog does not have (ADR-041).
        early_detectors = [] if drain else self.early_detectors()
        ledgers = {  # early alerts the stateful query records itself (ADR-029)
            detector.module_name: EarlyLedger(
                self.spark, detector, CheckpointWatermarks(self.spark, self._checkpoint(detector_query_name(detector)))
            )
            for detector in early_detectors
            if isinstance(detector, RecordsEarlyAlerts)
        }
        for detector in self.detectors:

            def handler(batch: DataFrame, batch_id: int, detector: BaseDetector[Any] = detector) -> None:
                ledger = ledgers.get(detector.module_name)
                output = batch if ledger is None else ledger.record(batch, batch_id)
                self.write_detector_batch(detector, output, batch_id)

            name = detector_query_name(detector)
            frame = self.detector_frame(detector, delays[name])
            self.queries.append(self._start(frame, name, handler, drain, intervals[name]))
        for detector in early_detectors:
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
            self.queries.append(self._start(frame, name, early, drain, intervals[name]))
        started = [f"{q.name} (every {intervals[q.name]:g} s, reads {delays[q.name]:g} s in)" for q in self.queries]
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

    def await_termination(self, deadline: float | None = None) -> None:
        """Block until every query has stopped; one query failing stops the others, then raises.

        ``deadline`` (``time.monotonic``; None: none): see ``run``'s ``time_limit_seconds``.
        """
        while any(query.isActive for query in self.queries):
            if self._failed() is not None:
                self.stop(timeout_seconds=0)
                break
            self._stop_at_deadline(deadline)
            try:
                self.spark.streams.awaitAnyTermination(timeout=1)
            except Exception:  # noqa: BLE001 - the failed query is reported below
                LOG.debug("a query terminated with an error")
            self.spark.streams.resetTerminated()
        if (failed := self._failed()) is not None:
            raise QueryFailedError(f"query {failed.name} failed: {failed.exception()}")

    def run(
        self, *, drain: bool = False, handle_signals: bool = True, time_limit_seconds: float | None = None
    ) -> PipelineStats:
        """Start, wait (SIGTERM/SIGINT stop gracefully when ``handle_signals``), return the totals.

        ``time_limit_seconds`` (a drain only; None: none) bounds the drain: once it passes,
        every query is stopped after its running batch (at most ``DRAIN_STOP_GRACE_SECONDS``)
        and ``DrainTimeLimitError`` names the queries still running and the rows each read.
        """
        if time_limit_seconds is not None and not drain:
            raise ValueError("time_limit_seconds bounds a drain: pass drain=True, or no limit")
        deadline = None if time_limit_seconds is None else time.monotonic() + time_limit_seconds
        if handle_signals:
            self.install_signal_handlers()
        self.start(drain=drain)
        try:
            if drain and any(query.name not in self._available_now for query in self.queries):
                self._stop_when_drained(deadline)
            self.await_termination(deadline)
        finally:
            self._detach_listener()
        if drain:
            self.check_drained()
        return self.stats

    def _stop_at_deadline(self, deadline: float | None) -> None:
        """Once ``deadline`` (``time.monotonic``) passed: stop every query, raise ``DrainTimeLimitError``."""
        if deadline is None or time.monotonic() < deadline:
            return
        pending = [query.name for query in self.queries if query.isActive]
        self.stop(timeout_seconds=DRAIN_STOP_GRACE_SECONDS)  # also waits for the last batches' progress
        read = {query.name: self.stats.input_rows[query.name] for query in self.queries}
        raise DrainTimeLimitError(
            f"drain of {self.config.kinesis.stream_name} did not finish in time: {', '.join(pending)} still "
            f"running; rows read {read}; every query was stopped",
            pending=pending,
            rows_read=read,
        )

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
        self.check_feed_drained()
        kinesis = self.config.kinesis
        if kinesis.source != "coattail-kinesis":
            LOG.warning(
                "drain completeness not checked: the %s source's offsets are not readable here; "
                "compare the rows read (%s) with the stream yourself",
                kinesis.source,
                dict(self.stats.input_rows),
            )
            return None
        feed = self.feed_queries()
        drained = {
            query.name: DrainedQuery(end_positions(query.recentProgress), self.stats.input_rows[query.name])
            for query in self.queries
            if query.name not in feed
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

    def check_feed_drained(self) -> None:
        """After a drain: raise ``DrainIncompleteError`` if a ``raw_trades`` query stopped before the last commit."""
        feed = self.feed_queries()
        if not feed:
            return
        last = self.raw_trades_sequence_number()
        short = {
            query.name: position
            for query in self.queries
            if query.name in feed and (position := self._feed_position(query)) != last
        }
        if short:
            raise DrainIncompleteError(
                f"drain incomplete: {RAW_TRADES_TABLE} ends at commit {last} (data sequence number), but "
                + ", ".join(f"{name} stopped at {position}" for name, position in sorted(short.items()))
            )

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
