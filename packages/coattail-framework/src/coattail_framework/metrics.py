"""Operational metrics to CloudWatch (``put_metric_data``), batched; never fatal.

Used by the producer and the stream-job driver. Namespace from ``metrics.namespace``;
with ``metrics.enabled: false`` values are only logged at debug level. A failed publish
is logged and counted (``failed_publishes``), never raised: metrics must not stop a
pipeline.

Example::

    publisher = MetricsPublisher(config.metrics, config.aws)
    publisher.publish({"events_valid": 980, "events_invalid": 20}, dimensions={"query": "ingest"})
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from coattail_framework.aws.clients import aws_client

if TYPE_CHECKING:
    from coattail_framework.config.model import AwsConfig, MetricsConfig

LOG = logging.getLogger(__name__)
MAX_DATA_PER_CALL = 500
QUERY_FAILURES_METRIC = "query_failures"
"""The stream job's listener publishes 1 (no dimension) when a streaming query ends with an error;
deploy/'s ``stream-job-query-failures`` alarm watches it."""


class MetricsPublisher:
    """Publishes named values with dimensions; the client is created on first use."""

    def __init__(self, metrics: MetricsConfig, aws: AwsConfig) -> None:
        self._metrics = metrics
        self._aws = aws
        self._client: Any = None
        self.failed_publishes = 0

    def _cloudwatch(self) -> Any:
        if self._client is None:
            self._client = aws_client("cloudwatch", region=self._aws.region, endpoint_url=self._aws.endpoint_url)
        return self._client

    def publish(
        self,
        values: Mapping[str, float],
        *,
        dimensions: Mapping[str, str] | None = None,
        unit: str = "Count",
        timestamp: datetime | None = None,
    ) -> None:
        """Send ``values`` (metric name -> value, in ``unit``) with the same dimensions."""
        if not values:
            return
        if not self._metrics.enabled:
            LOG.debug("metrics (disabled): %s %s", dict(values), dict(dimensions or {}))
            return
        when = timestamp or datetime.now(UTC)
        dims = [{"Name": key, "Value": value} for key, value in sorted((dimensions or {}).items())]
        data = [
            {"MetricName": name, "Dimensions": dims, "Timestamp": when, "Value": float(value), "Unit": unit}
            for name, value in values.items()
        ]
        for start in range(0, len(data), MAX_DATA_PER_CALL):
            try:
                self._cloudwatch().put_metric_data(
                    Namespace=self._metrics.namespace, MetricData=data[start : start + MAX_DATA_PER_CALL]
                )
            except Exception as error:  # noqa: BLE001 - metrics are best effort by design
                self.failed_publishes += 1
                LOG.warning("metrics: put_metric_data to %s failed: %s", self._metrics.namespace, error)
