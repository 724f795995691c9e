"""Options of the ``coattail-kinesis`` source, validated once on the driver.

Spark hands a Python data source its options with lower-cased keys, as strings:

=====================  =========================================================================
``streamname``         the Kinesis data stream (required)
``region``             AWS region of the stream (required), e.g. ``us-east-1``
``endpointurl``        endpoint override (moto locally); unset = the region's AWS endpoint
``startingposition``   ``TRIM_HORIZON`` (default), ``LATEST`` or ``AT_TIMESTAMP``; used only when
                       the checkpoint holds no offset yet
``startingtimestamp``  ISO 8601 instant for ``AT_TIMESTAMP``; without an offset it means UTC
``maxrecordspertrigger``  most records per micro-batch over all shards (default 10,000)
``maxbytespertrigger``  most bytes of record data per micro-batch, split evenly over the shards
                       read (default 8 MiB; ``none`` = no cap); a shard's batch takes at least one
                       record. The fetched records travel to executors inside the input
                       partitions, so this bounds the driver's and executors' memory per batch
``minpollintervalms``  least milliseconds between two ``GetRecords`` of one shard (default 200,
                       Kinesis's 5 calls/s; raise it when other consumers share the stream)
``idlepollintervalms`` least milliseconds between polls of a shard found caught up (default 1,000)
``readdelayms``        milliseconds each trigger waits before it reads (default 0): shifts this
                       query's batches within its trigger interval, away from other queries on
                       the same interval (``PipelineRunner.read_delays``); not in ``availableNow``
``readfailuremaxattempts``  failed reads of one shard in a row (``GetShardIterator``/``GetRecords``,
                       throttling aside) that stop the query (default 10, > 0)
``readfailuremaxseconds``   seconds a shard's reads may keep failing before the query stops
                       (default 60, > 0); whichever limit comes first (``limits.ReadFailureLimit``)
=====================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coattail_kinesis.limits import READ_FAILURE_MAX_ATTEMPTS, READ_FAILURE_MAX_SECONDS


class KinesisOptionsError(ValueError):
    """An option of the ``coattail-kinesis`` source is unknown or invalid; the message names it."""


MAX_BYTES_PER_TRIGGER = 8 * 1024 * 1024
"""Default byte cap of one micro-batch (8 MiB: about 28,000 trades of ~300 bytes)."""

OPTION_NAMES = {
    "streamname": "stream_name",
    "region": "region",
    "endpointurl": "endpoint_url",
    "startingposition": "starting_position",
    "startingtimestamp": "starting_timestamp",
    "maxrecordspertrigger": "max_records_per_trigger",
    "maxbytespertrigger": "max_bytes_per_trigger",
    "minpollintervalms": "min_poll_interval_ms",
    "idlepollintervalms": "idle_poll_interval_ms",
    "readdelayms": "read_delay_ms",
    "readfailuremaxattempts": "read_failure_max_attempts",
    "readfailuremaxseconds": "read_failure_max_seconds",
}


class KinesisSourceOptions(BaseModel):
    """The validated options; picklable, so the reader carries it to executors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream_name: str = Field(min_length=1)
    region: str = Field(min_length=1)
    endpoint_url: str | None = None
    starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] = "TRIM_HORIZON"
    starting_timestamp: datetime | None = None
    max_records_per_trigger: int = Field(10_000, ge=1)
    max_bytes_per_trigger: int | None = Field(MAX_BYTES_PER_TRIGGER, ge=1)
    min_poll_interval_ms: int = Field(200, ge=1)
    idle_poll_interval_ms: int = Field(1_000, ge=1)
    read_delay_ms: int = Field(0, ge=0)
    read_failure_max_attempts: int = Field(READ_FAILURE_MAX_ATTEMPTS, gt=0)
    read_failure_max_seconds: float = Field(READ_FAILURE_MAX_SECONDS, gt=0)

    @field_validator("max_bytes_per_trigger", mode="before")
    @classmethod
    def _none(cls, value: object) -> object:
        return None if isinstance(value, str) and value.lower() == "none" else value

    @field_validator("starting_position", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("starting_timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _timestamp_when_needed(self) -> KinesisSourceOptions:
        if self.starting_position == "AT_TIMESTAMP" and self.starting_timestamp is None:
            raise ValueError("startingtimestamp is required when startingposition is AT_TIMESTAMP")
        return self

    @classmethod
    def from_spark(cls, options: Mapping[str, str]) -> KinesisSourceOptions:
        """The options Spark passed to ``.option(...)``; raises KinesisOptionsError naming the bad one."""
        fields: dict[str, str] = {}
        for key, value in options.items():
            name = OPTION_NAMES.get(key.lower())
            if name is None:
                raise KinesisOptionsError(
                    f"coattail-kinesis: unknown option {key!r}; known options: {', '.join(sorted(OPTION_NAMES))}"
                )
            fields[name] = value
        try:
            return cls.model_validate(fields)
        except ValidationError as error:
            by_field = {field: option for option, field in OPTION_NAMES.items()}
            lines = []
            for problem in error.errors():
                option = by_field.get(str(problem["loc"][0]), "options") if problem["loc"] else "options"
                lines.append(f"coattail-kinesis: option {option}: {problem['msg']}")
            raise KinesisOptionsError("\n".join(lines)) from error
