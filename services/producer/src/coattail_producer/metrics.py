"""The producer's counters as metric samples: Prometheus text, JSON, and CloudWatch pushes.

Runs on the producer's event loop (collection, rendering) and in a worker thread (the
blocking ``put_metric_data`` call). Counters are cumulative since the process started;
CloudWatch receives their increase since the previous push, gauges as they are, and the
publish latency (enqueue to Kinesis acknowledgement) as a statistic set in milliseconds.

Example::

    samples = collect(publisher.stats, publisher.buffered, venues)
    print(render_prometheus(samples))
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from coattail_framework.connector import ConnectorStats
from coattail_producer.publisher import LatencyWindow, PublisherStats

LOG = logging.getLogger(__name__)

PROMETHEUS_PREFIX = "coattail_producer_"
CLOUDWATCH_MAX_DATA_PER_CALL = 1000
SERVICE_DIMENSION = ("Service", "coattail-producer")

MetricKind = Literal["counter", "gauge"]
MetricKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Sample:
    """One metric value. ``name`` is the CloudWatch name (``EventsPublished``); ``unit`` CloudWatch's."""

    name: str
    value: float
    kind: MetricKind
    help: str
    unit: str = "Count"
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def prometheus_name(self) -> str:
        """``coattail_producer_events_published_total`` for the counter ``EventsPublished``."""
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()
        return PROMETHEUS_PREFIX + snake + ("_total" if self.kind == "counter" else "")


@dataclass(frozen=True)
class VenueMetrics:
    """What the runner knows about one venue's connector."""

    received: int
    restarts: int
    healthy: bool
    stats: ConnectorStats
    quarantined: Mapping[str, int] = field(default_factory=dict)
    """Frames the connector quarantined, per reason (``BaseConnector.quarantined``)."""


_CONNECTOR_COUNTERS = {
    "messages": ("ConnectorMessages", "Websocket messages the connector read"),
    "trades": ("ConnectorTrades", "Trades the connector normalized"),
    "malformed": ("ConnectorMalformed", "Messages the connector could not normalize (kept for inspection)"),
    "reconnects": ("Reconnects", "Websocket reconnects"),
    "gaps": ("Gaps", "Trade id / sequence gaps detected"),
    "duplicates_dropped": ("DuplicatesDropped", "Duplicate trades the connector discarded"),
    "backfilled": ("Backfilled", "Trades recovered over REST after a gap"),
}


def collect(stats: PublisherStats, buffered: int, venues: Mapping[str, VenueMetrics]) -> list[Sample]:
    """Every metric of the process now."""
    samples = [
        Sample("EventsPublished", stats.published, "counter", "Events acknowledged by Kinesis"),
        Sample("EventsFailed", stats.failed, "counter", "Entries Kinesis rejected or a failed call carried (per try)"),
        Sample("EventsRetried", stats.retried, "counter", "Entries re-sent after a failure"),
        Sample("EventsReordered", stats.reordered, "counter", "Entries that overtook a failed entry of their key"),
        Sample("PutRecordsCalls", stats.calls, "counter", "put_records calls"),
        Sample("PutRecordsFailedCalls", stats.failed_calls, "counter", "put_records calls that failed as a whole"),
        Sample("BackpressureWaits", stats.backpressure_waits, "counter", "Puts that waited for buffer room"),
        Sample(
            "BackpressureSeconds",
            stats.backpressure_seconds,
            "counter",
            "Time connectors waited for buffer room",
            "Seconds",
        ),
        Sample("BufferedRecords", buffered, "gauge", "Records buffered or in flight"),
        Sample("EventsDropped", stats.dropped_total, "counter", "Events dropped, all reasons"),
    ]
    samples.extend(
        Sample("EventsDroppedByReason", count, "counter", "Events dropped, by reason", labels=(("reason", reason),))
        for reason, count in sorted(stats.dropped.items())
    )
    for venue, metrics in sorted(venues.items()):
        labels = (("exchange", venue),)
        samples.append(
            Sample("EventsReceived", metrics.received, "counter", "Events from the connector", labels=labels)
        )
        samples.append(Sample("ConnectorRestarts", metrics.restarts, "counter", "connect() restarts", labels=labels))
        samples.append(
            Sample("ConnectorHealthy", 1 if metrics.healthy else 0, "gauge", "Last health check", labels=labels)
        )
        counters = metrics.stats.as_dict()
        for field_name, (name, help_text) in _CONNECTOR_COUNTERS.items():
            samples.append(Sample(name, counters.get(field_name, 0), "counter", help_text, labels=labels))
        # A connector's own counters (Binance: non_market_trades, resyncs, ...) under a derived name.
        for field_name in sorted(counters.keys() - _CONNECTOR_COUNTERS.keys()):
            name = "Connector" + "".join(part.capitalize() for part in field_name.split("_"))
            help_text = f"Connector counter {field_name} ({type(metrics.stats).__name__})"
            samples.append(Sample(name, counters[field_name], "counter", help_text, labels=labels))
        for reason, count in sorted(metrics.quarantined.items()):
            samples.append(
                Sample(
                    "FramesQuarantined",
                    count,
                    "counter",
                    "Frames the connector quarantined, by reason",
                    labels=(*labels, ("reason", reason)),
                )
            )
    return samples


def _prometheus_labels(labels: Iterable[tuple[str, str]]) -> str:
    parts = [
        f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for key, value in labels
    ]
    return "{" + ",".join(parts) + "}" if parts else ""


def render_prometheus(samples: list[Sample], latency: LatencyWindow) -> str:
    """Prometheus text exposition format 0.0.4; latency as a summary in seconds."""
    lines: list[str] = []
    described: set[str] = set()
    for sample in samples:
        name = sample.prometheus_name
        if name not in described:
            described.add(name)
            lines.append(f"# HELP {name} {sample.help}")
            lines.append(f"# TYPE {name} {sample.kind}")
        lines.append(f"{name}{_prometheus_labels(sample.labels)} {sample.value:g}")
    latency_name = PROMETHEUS_PREFIX + "publish_latency_seconds"
    lines.append(f"# HELP {latency_name} Enqueue to Kinesis acknowledgement")
    lines.append(f"# TYPE {latency_name} summary")
    lines.append(f"{latency_name}_sum {latency.total:.6f}")
    lines.append(f"{latency_name}_count {latency.count}")
    return "\n".join(lines) + "\n"


def render_json(samples: list[Sample], latency: LatencyWindow) -> dict[str, Any]:
    """The same values as a JSON document: ``{"metrics": [...], "publish_latency_seconds": {...}}``."""
    return {
        "metrics": [
            {
                "name": sample.name,
                "kind": sample.kind,
                "unit": sample.unit,
                "labels": dict(sample.labels),
                "value": sample.value,
            }
            for sample in samples
        ],
        "publish_latency_seconds": {
            "count": latency.count,
            "sum": latency.total,
            "max": latency.maximum,
            "min": latency.minimum if latency.count else 0.0,
        },
    }


class CloudWatchEmitter:
    """Pushes samples to CloudWatch ``put_metric_data`` in batches, counters as increases."""

    def __init__(self, client: Any, namespace: str) -> None:
        self._client = client
        self._namespace = namespace
        self._last: dict[MetricKey, float] = {}
        self.pushes = 0
        self.failures = 0

    def metric_data(
        self, samples: list[Sample], latency: LatencyWindow, now: datetime
    ) -> list[tuple[dict[str, Any], tuple[MetricKey, float] | None]]:
        """``MetricData`` entries for one push, each with the counter total it accounts for.

        Counters are sent as their increase since the last successful push; the totals are
        committed only once CloudWatch accepted them, so a failed push is carried forward.
        """
        data: list[tuple[dict[str, Any], tuple[MetricKey, float] | None]] = []
        for sample in samples:
            key = (sample.name, sample.labels)
            value = sample.value
            commit: tuple[MetricKey, float] | None = None
            if sample.kind == "counter":
                value = sample.value - self._last.get(key, 0.0)
                commit = (key, sample.value)
            dimensions = [{"Name": SERVICE_DIMENSION[0], "Value": SERVICE_DIMENSION[1]}]
            dimensions.extend({"Name": label.capitalize(), "Value": text} for label, text in sample.labels)
            datum = {"MetricName": sample.name, "Dimensions": dimensions, "Timestamp": now, "Value": float(value)}
            datum["Unit"] = sample.unit
            data.append((datum, commit))
        if latency.count:
            datum = {
                "MetricName": "PublishLatency",
                "Dimensions": [{"Name": SERVICE_DIMENSION[0], "Value": SERVICE_DIMENSION[1]}],
                "Timestamp": now,
                "StatisticValues": {
                    "SampleCount": float(latency.count),
                    "Sum": latency.total * 1000,
                    "Minimum": latency.minimum * 1000,
                    "Maximum": latency.maximum * 1000,
                },
                "Unit": "Milliseconds",
            }
            data.append((datum, None))
        return data

    def push(self, samples: list[Sample], latency: LatencyWindow) -> int:
        """Send one push; returns the data points CloudWatch accepted. Blocking: run it in a worker thread.

        A failed call is logged and counted, never raised: metrics must not stop the producer.
        """
        data = self.metric_data(samples, latency, datetime.now(UTC))
        sent = 0
        for start in range(0, len(data), CLOUDWATCH_MAX_DATA_PER_CALL):
            chunk = data[start : start + CLOUDWATCH_MAX_DATA_PER_CALL]
            try:
                self._client.put_metric_data(Namespace=self._namespace, MetricData=[datum for datum, _ in chunk])
            except (BotoCoreError, ClientError) as error:
                self.failures += 1
                LOG.warning("metrics: put_metric_data to namespace %r failed: %s", self._namespace, error)
                continue
            for _, commit in chunk:
                if commit is not None:
                    self._last[commit[0]] = commit[1]
            sent += len(chunk)
        self.pushes += 1
        return sent
