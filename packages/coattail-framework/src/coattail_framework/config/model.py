"""The validated configuration (``config/features.yaml`` merged with SSM and environment).

Every section has defaults that run the embedded local stack; ``ConfigLoader`` builds it.
Module settings stay raw here (``modules``): each detector validates its own section with
its own model when it is configured.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from coattail_framework.config.symbols import SymbolCatalog
from coattail_framework.plugins import Tier

EARLY_SUFFIX = "-early"
"""``streaming.query_trigger_seconds`` key of a module's early query: ``<module name>-early``."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExchangeConfig(_Section):
    """One venue: which connector plugin serves it and that connector's settings."""

    connector: str
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)


class AwsConfig(_Section):
    """Where AWS is. ``endpoint_url`` overrides every service (moto locally); None = AWS."""

    region: str = "us-east-1"
    endpoint_url: str | None = None


class KinesisConfig(_Section):
    """The trade stream and how the stream job reads it."""

    stream_name: str = "coattail-trades"
    shard_count: int = Field(1, ge=1)
    """Shards of the stream when ``capacity_mode`` is ``provisioned`` (the deploy and the local stack create it so)."""
    capacity_mode: Literal["provisioned", "on-demand"] = "provisioned"
    """How the deploy (``deploy/``) creates the stream: ``shard_count`` shards, or on-demand (Kinesis scales them)."""
    source: Literal["coattail-kinesis", "aws-kinesis"] = "coattail-kinesis"
    starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] = "TRIM_HORIZON"
    starting_timestamp: datetime | None = None
    max_records_per_trigger: int = Field(10_000, ge=1)
    max_bytes_per_trigger: int | None = Field(8 * 1024 * 1024, ge=1)
    """``coattail-kinesis``: most bytes of record data per micro-batch (null: no cap). Records
    travel to executors inside the input partitions: this bounds a batch's memory whatever the
    record sizes (a record may be 1 MiB). ``aws-kinesis`` bounds its fetches by records only."""
    min_poll_interval_ms: int = Field(1_000, ge=1)
    """``coattail-kinesis``: least milliseconds between two reads of a shard by one query. A
    query reads each shard once per batch, so at most once per max(its trigger, this). Every
    query of the stream job reads every shard, and Kinesis allows 5 reads/s per shard shared
    by all readers: the stream job warns at start when its queries' reads can add up to more
    (``PipelineRunner.reads_per_shard_second``); reads beyond the limit are throttled and
    backed off."""
    idle_poll_interval_ms: int = Field(2_000, ge=1)
    """``coattail-kinesis``: the read interval per shard once a query has caught up."""
    read_failure_max_attempts: int = Field(10, gt=0)
    """``coattail-kinesis``: failed reads of one shard in a row (HTTP 5xx, lost connections;
    throttling aside) after which the query stops with an error naming the shard. A successful
    read starts the count over; errors no retry can fix (access denied, KMS key, missing stream,
    credentials) stop the query at once."""
    read_failure_max_seconds: float = Field(60.0, gt=0)
    """``coattail-kinesis``: seconds from the first of a shard's failed reads in a row after which
    the query stops, whichever of this and ``read_failure_max_attempts`` comes first."""
    efo_consumer_name: str | None = None
    """Enhanced fan-out consumer name; only the ``aws-kinesis`` (EMR JVM) source uses it."""

    @model_validator(mode="after")
    def _timestamp_when_needed(self) -> KinesisConfig:
        if self.starting_position == "AT_TIMESTAMP" and self.starting_timestamp is None:
            raise ValueError("starting_timestamp is required when starting_position is AT_TIMESTAMP")
        return self


class DynamoDBConfig(_Section):
    """The hot alert store."""

    table_name: str = "coattail-alerts"
    ttl_days: int = Field(30, gt=0)
    """Days an alert stays in the table after it is written (``ttl_epoch`` = write time + this)."""


class SnapshotRetention(_Section):
    """Which snapshots of one Iceberg table outlive the expiry (ages from the expiry's clock, UTC).

    Kept: every snapshot younger than ``keep_all_minutes``; of older ones younger than
    ``keep_hourly_days``, the last one committed in each UTC hour (time travel to an older
    instant then reads the state at the end of the hour before). The current snapshot and
    each writer's latest (the sink's exactly-once check reads it) are always kept.
    """

    keep_all_minutes: float = Field(5.0, ge=0)
    keep_hourly_days: float = Field(0.0, ge=0)


class IcebergMaintenanceConfig(_Section):
    """Snapshot expiry of the tables the pyiceberg writer appends to (driver, after a commit).

    pyiceberg rewrites (and deep-copies) the whole table metadata, which lists every
    snapshot, on each commit: without expiry a table committed to every second costs about
    1 ms more per commit for each snapshot it has accumulated. ``expire_every_seconds``
    bounds how often one table is examined (0 = after every commit); ``retention`` applies
    to every table but those named in ``table_retention``.
    """

    enabled: bool = True
    expire_every_seconds: float = Field(60.0, ge=0)
    retention: SnapshotRetention = Field(default_factory=SnapshotRetention)
    table_retention: dict[str, SnapshotRetention] = Field(default_factory=dict)

    def retention_for(self, table: str) -> SnapshotRetention:
        """``table``'s retention: its ``table_retention`` entry, else ``retention``."""
        return self.table_retention.get(table, self.retention)


class IcebergConfig(_Section):
    """The Iceberg catalog. ``sql`` = SQLite + local warehouse (embedded); ``glue`` on AWS."""

    catalog_type: Literal["sql", "glue"] = "sql"
    catalog_name: str = "coattail"
    database: str = "coattail"
    uri: str = "sqlite:///.local-stack/iceberg/catalog.db"
    warehouse: str = ".local-stack/iceberg/warehouse"
    writer: Literal["pyiceberg", "spark"] = "pyiceberg"
    """``spark`` writes with Spark's Iceberg runtime (EMR) instead of pyiceberg."""
    maintenance: IcebergMaintenanceConfig = Field(default_factory=IcebergMaintenanceConfig)
    """Snapshot expiry for the ``pyiceberg`` writer (with ``spark``, run Iceberg's procedures on EMR)."""


class StorageConfig(_Section):
    """Where raw data, dead letters and checkpoints go (local paths or ``s3://`` URIs)."""

    raw_zone: str = ".local-stack/raw"
    checkpoint_root: str = ".local-stack/checkpoints"
    s3_bucket: str = "coattail-data"
    accept_new_checkpoints: bool = False
    """Start a query whose checkpoint is new (or reset) although its Iceberg tables hold its commits
    from another checkpoint. False: the stream job refuses to start and names them; a new checkpoint
    re-reads the stream from ``kinesis.starting_position`` (TRIM_HORIZON: duplicate rows). See ADR-028."""


class StreamingConfig(_Section):
    """Micro-batch triggers of the stream job's queries, in seconds (processing time).

    A query's trigger is its entry in ``query_trigger_seconds`` (keyed ``ingest`` or a module
    name), else ``trigger_seconds``. A hot path (a module with early alerts) wants a short
    trigger; windowed modules emit once per window and ``raw_trades`` commits once per
    batch, so a longer trigger there costs no alert latency and leaves the cores (and the
    stream's reads, see ``kinesis.min_poll_interval_ms``) to the hot path.
    """

    trigger_seconds: float = Field(1.0, gt=0)
    query_trigger_seconds: dict[str, float] = Field(default_factory=dict)
    early_alerts: bool = True
    """Run an early query beside each active detector that has one (``BaseDetector.early_alerts``);
    its trigger is keyed ``<module name>-early``, else the module's own."""
    stagger_triggers: bool = True
    """Spread the live queries that share a trigger interval evenly over it (``coattail-kinesis``
    source): Spark starts processing-time batches at multiples of the interval since the epoch,
    so without this every query on 10 s would plan and run its batch at the same instant, on
    the cores the hot path needs (ADR-027). A query alone on its interval starts on time."""
    detector_input: Literal["raw_trades", "kinesis"] = "raw_trades"
    """Where the detector queries read their trades (ADR-041). ``raw_trades``: the commits of the
    ingest query to the Iceberg ``raw_trades`` table (``coattail-feed``): the stream is read, parsed
    and checked once, by ingest. ``kinesis``: each detector query reads the stream itself (its own
    shard reads, parse and quality checks). Early queries (the hot path) read Kinesis either way."""

    @field_validator("query_trigger_seconds")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for query, seconds in value.items():
            if seconds <= 0:
                raise ValueError(f"{query}: a trigger must be greater than 0 seconds, got {seconds}")
        return value

    def trigger_for(self, query: str) -> float:
        """The trigger (seconds) of ``query``: ``ingest``, a module name or ``<module name>-early``."""
        if query in self.query_trigger_seconds:
            return self.query_trigger_seconds[query]
        if query.endswith(EARLY_SUFFIX):
            return self.trigger_for(query.removesuffix(EARLY_SUFFIX))
        return self.trigger_seconds


class QualityConfig(_Section):
    """Data-quality rule parameters. Rule names are those of ``quality.rules``."""

    max_event_age_seconds: float = Field(300.0, gt=0)
    """``timeliness_recent``: ingestion minus trade time above this is flagged (WARN)."""
    quote_volume_tolerance: float = Field(0.001, ge=0)
    """``consistency_quote_volume``: relative gap allowed between quote_volume and price x quantity."""
    event_time_reference: Literal["arrival", "ingestion"] = "arrival"
    """``timeliness_event_time`` (ERROR) judges trade times against the record's Kinesis arrival
    time (``arrival``: a live stream) or its ``ingestion_timestamp`` (``ingestion``: replays of
    recordings and reprocessing, whose producer clock is the recording's)."""
    max_event_time_ahead_seconds: float = Field(60.0, ge=0)
    """``timeliness_event_time``: a trade time further ahead of the reference is dead-lettered."""
    max_event_time_behind_seconds: float = Field(86_400.0, ge=0)
    """``timeliness_event_time``: a trade time further behind the reference is dead-lettered."""
    disabled_rules: list[str] = Field(default_factory=list)


class MetricsConfig(_Section):
    """CloudWatch metrics."""

    enabled: bool = True
    namespace: str = "CoatTail"


SECRETS_SEGMENT = "secrets"
"""Path segment of the SSM secrets subtree (``/coattail/<env>/secrets/...``); never under ``ssm.prefix``."""


class SsmConfig(_Section):
    """SSM Parameter Store overrides: every parameter under ``prefix`` overrides a key.

    Layout per environment: configuration under ``/coattail/<env>/config/`` (plain
    ``String`` parameters, read by path by every process that loads configuration) and
    secrets under ``/coattail/<env>/secrets/`` (``SecureString``, each read by name by the
    one service that needs it, e.g. ``/coattail/<env>/secrets/api/cursor-key``). The two
    subtrees are siblings, so a role allowed to read the configuration cannot read a
    secret. ``prefix`` is the configuration subtree; it may not contain ``secrets``.
    """

    enabled: bool = False
    prefix: str = Field("/coattail/prod/config/", pattern=r"^/.*/$")

    @field_validator("prefix")
    @classmethod
    def _not_the_secrets_subtree(cls, value: str) -> str:
        if SECRETS_SEGMENT in value.strip("/").split("/"):
            raise ValueError(
                f"must name the configuration subtree (/coattail/<env>/config/), not the {SECRETS_SEGMENT} one"
            )
        return value


def key_source(sources: dict[tuple[str, ...], str], path: tuple[str, ...]) -> str:
    """The origin recorded for ``path`` or its nearest recorded parent, else "defaults".

    When the value is a section whose keys were overridden by other layers, those layers
    are named instead (a section-level error is about the overridden keys).
    """
    overrides = sorted({origin for key, origin in sources.items() if len(key) > len(path) and key[: len(path)] == path})
    if overrides:
        return " + ".join(overrides)
    for length in range(len(path), -1, -1):
        if (origin := sources.get(tuple(path[:length]))) is not None:
            return origin
    return "defaults"


class CoattailConfig(BaseModel):
    """The whole configuration. ``active_modules`` is what the stream job runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature_tier: Tier = "small"
    """Runs every installed detector whose declared tier (``DetectorInfo.tier``) is at or below this."""
    disabled_modules: list[str] = Field(default_factory=list)
    modules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    symbols: SymbolCatalog = Field(default_factory=lambda: SymbolCatalog({}))
    exchanges: dict[str, ExchangeConfig] = Field(default_factory=dict)
    aws: AwsConfig = Field(default_factory=AwsConfig)
    kinesis: KinesisConfig = Field(default_factory=KinesisConfig)
    dynamodb: DynamoDBConfig = Field(default_factory=DynamoDBConfig)
    iceberg: IcebergConfig = Field(default_factory=IcebergConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    streaming: StreamingConfig = Field(default_factory=StreamingConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    ssm: SsmConfig = Field(default_factory=SsmConfig)

    _sources: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _venues_known(self) -> CoattailConfig:
        for venue in self.symbols.exchanges():
            if self.exchanges and venue not in self.exchanges:
                raise ValueError(f"symbols name venue {venue!r}, which is not under exchanges")
        return self

    @property
    def active_modules(self) -> list[str]:
        """Installed detectors of ``feature_tier`` or a smaller tier and those with ``enabled: true``,
        minus ``disabled_modules`` and ``enabled: false`` ones (``ModuleRegistry.active_modules``; reads the light
        ``coattail.detector_info`` entry points, never a detector class)."""
        from coattail_framework.registry import ModuleRegistry

        return ModuleRegistry().active_modules(self)

    @property
    def tiers(self) -> dict[str, list[str]]:
        """Per feature tier, the installed detectors it selects (before ``disabled_modules``)."""
        from coattail_framework.plugins import TIERS, select_modules
        from coattail_framework.registry import ModuleRegistry

        infos = ModuleRegistry().detector_infos.values()
        return {tier: select_modules(infos, tier) for tier in TIERS}

    @property
    def enabled_exchanges(self) -> dict[str, ExchangeConfig]:
        """Venues whose connector is enabled."""
        return {venue: exchange for venue, exchange in self.exchanges.items() if exchange.enabled}

    def source_of(self, path: tuple[str, ...]) -> str:
        """Where a key's value came from: the YAML file, an SSM parameter, an env var or defaults."""
        return key_source(self._sources, path)

    def with_sources(self, sources: dict[tuple[str, ...], str]) -> CoattailConfig:
        """This configuration with key provenance attached (used by the loader)."""
        self._sources.update(sources)
        return self
