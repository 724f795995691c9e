"""Progress and quality metrics of the streaming queries, totalled and published.

``PipelineListener`` is a ``StreamingQueryListener``: Spark calls it on the driver, from
its listener thread, after every micro-batch of every query. It adds the batch's figures
to ``PipelineStats`` (read by the replay summary and tests) and publishes them to
CloudWatch through ``MetricsPublisher`` with the query name as dimension: input rows,
rows/s, batch duration (ms), rows dropped by the watermark (late events), and the data
quality counts observed by the ingest query; and ``query_failures`` when a query ends with
an error.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql.streaming.listener import StreamingQueryListener

from coattail_framework.metrics import QUERY_FAILURES_METRIC, MetricsPublisher
from coattail_framework.quality.checker import QualityMetrics

LOG = logging.getLogger(__name__)


@dataclass
class PipelineStats:
    """Running totals since the runner started (driver memory; guarded by a lock)."""

    input_rows: Counter[str] = field(default_factory=Counter)
    batches: Counter[str] = field(default_factory=Counter)
    late_rows: Counter[str] = field(default_factory=Counter)
    quality: Counter[str] = field(default_factory=Counter)
    table_rows: Counter[str] = field(default_factory=Counter)
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    early_alerts: Counter[str] = field(default_factory=Counter)
    """New DynamoDB items put by early queries, by module id (also counted in ``alerts`` by the stateful query)."""
    early_failures: Counter[str] = field(default_factory=Counter)
    """Early-query batches that raised, by module id (logged; the stateful query covers their orders)."""
    dead_letters: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, counter: str, key: Any, value: int) -> None:
        """Add ``value`` to ``counter[key]`` under the lock."""
        with self.lock:
            getattr(self, counter)[key] += value

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly copy of the totals."""
        with self.lock:
            return {
                "input_rows": dict(self.input_rows),
                "batches": dict(self.batches),
                "late_rows": dict(self.late_rows),
                "quality": dict(self.quality),
                "table_rows": dict(self.table_rows),
                "alerts": {f"{module}/{severity}": n for (module, severity), n in sorted(self.alerts.items())},
                "early_alerts": dict(self.early_alerts),
                "early_failures": dict(self.early_failures),
                "dead_letters": dict(self.dead_letters),
                "duplicates": self.duplicates,
            }


class PipelineListener(StreamingQueryListener):
    """Totals and publishes every query's progress (driver, Spark's listener thread)."""

    def __init__(self, stats: PipelineStats, publisher: MetricsPublisher, quality: QualityMetrics | None) -> None:
        self.stats = stats
        self.publisher = publisher
        self.quality = quality
        self._seen: dict[str, int] = {}
        self._seen_changed = threading.Condition()

    def wait_for(self, batches: dict[str, int], timeout_seconds: float = 30.0) -> bool:
        """Wait until the progress of each ``{query name: batch id}`` has been delivered.

        Spark delivers listener events asynchronously; call this after queries stop so
        that ``stats`` includes their last batches. False on timeout.
        """
        with self._seen_changed:
            return self._seen_changed.wait_for(
                lambda: all(self._seen.get(name, -1) >= batch for name, batch in batches.items()), timeout_seconds
            )

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's callback name
        LOG.info("query %s started (id %s, run %s)", event.name, event.id, event.runId)

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802 - Spark's callback name
        progress = event.progress
        name = progress.name or str(progress.id)
        late = sum(int(operator.numRowsDroppedByWatermark) for operator in progress.stateOperators)
        rows = int(progress.numInputRows)
        self.stats.add("input_rows", name, rows)
        self.stats.add("batches", name, 1)
        self.stats.add("late_rows", name, late)
        values: dict[str, float] = {"input_rows": rows, "late_rows": late}
        quality = self.quality.from_progress(progress.observedMetrics) if self.quality else None
        if quality:
            for key, count in quality.items():
                self.stats.add("quality", key, count)
            values |= {f"dq_{key}": count for key, count in quality.items()}
        try:
            self.publisher.publish(values, dimensions={"query": name})
            duration_ms = float(progress.batchDuration)
            self.publisher.publish({"batch_duration": duration_ms}, dimensions={"query": name}, unit="Milliseconds")
            self.publisher.publish(
                {"processed_rows_per_second": float(progress.processedRowsPerSecond or 0.0)},
                dimensions={"query": name},
                unit="Count/Second",
            )
        except Exception as error:  # noqa: BLE001 - a listener must never break the query
            LOG.warning("metrics for query %s not published: %s", name, error)
        with self._seen_changed:
            self._seen[name] = max(self._seen.get(name, -1), int(progress.batchId))
            self._seen_changed.notify_all()

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802 - Spark's callback name
        return None

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802 - Spark's callback name
        if event.exception:
            LOG.error("query %s terminated with an error: %s", event.id, event.exception)
            try:
                # No dimension: one alarm (deploy/, ``stream-job-query-failures``) watches every query.
                self.publisher.publish({QUERY_FAILURES_METRIC: 1})
            except Exception as error:  # noqa: BLE001 - a listener must never break the query
                LOG.warning("metric %s for query %s not published: %s", QUERY_FAILURES_METRIC, event.id, error)
        else:
            LOG.info("query %s terminated", event.id)
