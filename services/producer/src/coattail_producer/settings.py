"""The producer's own settings: batching, buffering, retries, health endpoint, metrics cadence.

These are process settings, not pipeline configuration: they come from the command line
(``coattail-producer --help``) with the defaults below, while everything shared with the
rest of the pipeline (stream name, AWS endpoint, venues, symbols, metrics namespace)
comes from ``CoattailConfig``. Times are seconds, sizes bytes.

Example::

    settings = ProducerSettings(health_port=0, publisher=PublisherSettings(linger_seconds=0.01))
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coattail_kinesis.limits import PUT_RECORDS_MAX_BYTES, PUT_RECORDS_MAX_RECORDS, RECORD_MAX_BYTES

DOCKER_STOP_GRACE_SECONDS = 10.0
"""What ``docker stop`` waits between SIGTERM and SIGKILL unless ``--stop-timeout`` (or
``docker stop -t``) says otherwise."""
DEFAULT_SHUTDOWN_DEADLINE_SECONDS = 8.0
"""The SIGTERM deadline: under ``DOCKER_STOP_GRACE_SECONDS``, leaving 2 s for a
``put_records`` call in flight at the deadline, the last metrics push and the exit. For a
longer flush raise both: ``--shutdown-deadline 25`` with ``docker run --stop-timeout 30``
(ECS ``stopTimeout``, Kubernetes ``terminationGracePeriodSeconds``)."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublisherSettings(_Settings):
    """How ``KinesisPublisher`` batches, buffers and retries."""

    linger_seconds: float = Field(default=0.05, ge=0, le=10)
    """How long the oldest buffered record may wait for its batch to fill before it is sent."""
    buffer_records: int = Field(default=20_000, ge=1)
    """Records held (buffered or in flight) before ``put`` makes connectors wait."""
    max_batch_records: int = Field(default=PUT_RECORDS_MAX_RECORDS, ge=1, le=PUT_RECORDS_MAX_RECORDS)
    max_batch_bytes: int = Field(default=PUT_RECORDS_MAX_BYTES, ge=1, le=PUT_RECORDS_MAX_BYTES)
    max_record_bytes: int = Field(default=RECORD_MAX_BYTES, ge=1, le=RECORD_MAX_BYTES)
    retry_base_seconds: float = Field(default=0.1, gt=0)
    """First backoff after a failed call; doubles per consecutive failed call (with jitter)."""
    retry_max_seconds: float = Field(default=5.0, gt=0)
    stall_seconds: float = Field(default=30.0, gt=0)
    """The publisher reports unhealthy when its oldest unpublished record is older than this."""

    @model_validator(mode="after")
    def _coherent(self) -> PublisherSettings:
        if self.max_record_bytes > self.max_batch_bytes:
            raise ValueError(
                f"max_record_bytes ({self.max_record_bytes}) must not exceed max_batch_bytes ({self.max_batch_bytes})"
            )
        if self.retry_base_seconds > self.retry_max_seconds:
            raise ValueError(
                f"retry_base_seconds ({self.retry_base_seconds}) must not exceed "
                f"retry_max_seconds ({self.retry_max_seconds})"
            )
        return self


class ProducerSettings(_Settings):
    """Everything the producer process needs besides ``CoattailConfig``."""

    publisher: PublisherSettings = Field(default_factory=PublisherSettings)
    health_host: str = "127.0.0.1"
    """Interface of the health endpoint; loopback unless a container needs another."""
    health_port: int = Field(default=8080, ge=0, le=65535)
    """Port of the health endpoint; 0 picks a free one (tests)."""
    health_interval_seconds: float = Field(default=5.0, gt=0)
    """Period of the health-check loop that logs connector and publisher state changes."""
    metrics_interval_seconds: float = Field(default=60.0, gt=0)
    """Period of the CloudWatch ``put_metric_data`` push."""
    shutdown_deadline_seconds: float = Field(default=DEFAULT_SHUTDOWN_DEADLINE_SECONDS, gt=0)
    """On SIGTERM: time to stop connectors and flush; records still unpublished then are dropped and counted.

    Must stay below the orchestrator's stop grace period (10 s for ``docker stop``), or the
    process is SIGKILLed mid-flush and the drops go unreported."""
    connector_restart_seconds: float = Field(default=1.0, gt=0)
    """Wait before restarting a connector whose ``connect()`` raised."""
