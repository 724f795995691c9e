"""Trigger scheduling: each stream-job query's trigger interval and its turn within it (ADR-022, ADR-027).

Pure planning on the Spark driver, before the queries start (``PipelineRunner.start``).
Every duration is in seconds. A query's live trigger is its entry in
``streaming.query_trigger_seconds`` (keyed ``ingest``, a module name or
``<module name>-early``), else ``streaming.trigger_seconds`` (ADR-022). Spark starts a
processing-time batch at the next multiple of its interval since the Unix epoch (UTC),
so queries with the same interval would all plan and run at the same instant: with
``streaming.stagger_triggers`` (``coattail-kinesis`` source only, its ``readDelayMs``) the
n queries on one interval T wait 0, T/n, 2T/n, ... in start order (ADR-027). A drain runs
with ``availableNow`` where the source supports it, else with a short processing-time
trigger (``DRAIN_TRIGGER_SECONDS``).

Example::

    >>> read_delays({"ingest": 10.0, "detector-spread": 10.0, "detector-whale": 1.0}, stagger=True)
    {'ingest': 0.0, 'detector-spread': 5.0, 'detector-whale': 0.0}
    >>> processing_time(drain=False, available_now=False, live_seconds=2.5)
    '2.5 seconds'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from coattail_framework.config.model import EARLY_SUFFIX, CoattailConfig, KinesisConfig, StreamingConfig
from coattail_framework.errors import ConfigError
from coattail_framework.pipeline.ingest import INGEST_QUERY
from coattail_kinesis.limits import GET_RECORDS_CALLS_PER_SECOND

DRAIN_TRIGGER_SECONDS = 0.5
"""Processing-time trigger of a drain where the source has no ``availableNow`` (PySpark 4.0/4.1)."""
DRAIN_FEED_TRIGGER_SECONDS = 2.0
"""Processing-time trigger of a ``raw_trades`` (feed) query in a drain: ingest commits a batch every few
seconds then, and each idle trigger reads the table's metadata, so polling faster only burns the cores."""


def check_trigger_keys(config: CoattailConfig, module_names: Iterable[str]) -> None:
    """Refuse a ``query_trigger_seconds`` entry naming neither ingest nor a module of any tier (a typo).

    ``module_names``: the active detectors' modules (known even when no tier lists them).
    Raises ``ConfigError`` naming the unknown keys, the file they came from and the known ones.
    """
    modules = {name for tier in config.tiers.values() for name in tier}
    modules |= set(module_names)
    known = {INGEST_QUERY, *modules, *(f"{module}{EARLY_SUFFIX}" for module in modules)}
    unknown = sorted(set(config.streaming.query_trigger_seconds) - known)
    if unknown:
        raise ConfigError(
            f"{config.source_of(('streaming', 'query_trigger_seconds'))}: streaming.query_trigger_seconds "
            f"names {', '.join(unknown)}, neither ingest nor a module or its early query; "
            f"known: {', '.join(sorted(known))}"
        )


def query_triggers(streaming: StreamingConfig, trigger_keys: Mapping[str, str]) -> dict[str, float]:
    """Each query's live trigger (seconds), by query name, in the order of ``trigger_keys``.

    ``trigger_keys``: query name -> its key in ``streaming.query_trigger_seconds`` (``ingest``,
    the module name, or ``<module name>-early`` for an early query), in start order.
    """
    return {name: streaming.trigger_for(key) for name, key in trigger_keys.items()}


def reads_per_shard_second(triggers: Mapping[str, float], min_poll_interval_ms: int) -> float:
    """Most ``GetRecords`` calls per second per shard the live queries make once caught up.

    A caught-up query reads each shard once per batch, at most once per max(trigger,
    ``kinesis.min_poll_interval_ms``).
    """
    floor_s = min_poll_interval_ms / 1000
    return sum(1 / max(trigger, floor_s) for trigger in triggers.values())


def shard_read_excess(triggers: Mapping[str, float], kinesis: KinesisConfig) -> str | None:
    """Why the live triggers will be throttled (more reads per shard than Kinesis allows), or None.

    Only the ``coattail-kinesis`` source paces its reads by the trigger; with ``aws-kinesis``: None.
    """
    reads = reads_per_shard_second(triggers, kinesis.min_poll_interval_ms)
    if kinesis.source != "coattail-kinesis" or reads <= GET_RECORDS_CALLS_PER_SECOND:
        return None
    return (
        f"the queries' triggers ({', '.join(f'{name} {seconds:g} s' for name, seconds in triggers.items())}) "
        f"and kinesis.min_poll_interval_ms ({kinesis.min_poll_interval_ms}) allow {reads:.1f} GetRecords/s per "
        f"shard, above Kinesis's {GET_RECORDS_CALLS_PER_SECOND} shared by all consumers: reads will be throttled; "
        "lengthen the triggers of queries that do not need them (streaming.query_trigger_seconds)"
    )


def read_delays(triggers: Mapping[str, float], *, stagger: bool) -> dict[str, float]:
    """Seconds each live query's source waits on every trigger before reading, by query name.

    ``triggers`` in start order. With ``stagger`` the n queries on one interval T wait 0,
    T/n, 2T/n, ... in that order: four cold queries on 10 s take their turns instead of
    holding both cores together while the hot path waits (ADR-027). A query alone on its
    interval waits for nothing; without ``stagger`` none waits.
    """
    if not stagger:
        return dict.fromkeys(triggers, 0.0)
    by_interval: dict[float, list[str]] = {}
    for name, seconds in triggers.items():
        by_interval.setdefault(seconds, []).append(name)
    return {
        name: index * seconds / len(names) for seconds, names in by_interval.items() for index, name in enumerate(names)
    }


def staggers(streaming: StreamingConfig, kinesis: KinesisConfig) -> bool:
    """True when queries sharing an interval take turns: ``stagger_triggers`` on, ``coattail-kinesis`` source."""
    return streaming.stagger_triggers and kinesis.source == "coattail-kinesis"


def supports_available_now(kinesis_source: str) -> bool:
    """True when a drain can use ``availableNow``: ``aws-kinesis``, or ``coattail-kinesis`` on PySpark 4.2+."""
    if kinesis_source != "coattail-kinesis":
        return True
    from coattail_kinesis.source import SUPPORTS_AVAILABLE_NOW

    return SUPPORTS_AVAILABLE_NOW


def processing_time(*, drain: bool, available_now: bool, live_seconds: float, feed: bool = False) -> str | None:
    """A query's processing-time trigger (``"<seconds> seconds"``), or None for ``availableNow``.

    Live: ``live_seconds``. Drain: ``availableNow`` when the source supports it, else
    ``DRAIN_TRIGGER_SECONDS`` (Spark would otherwise run one unbounded batch), or
    ``DRAIN_FEED_TRIGGER_SECONDS`` for a query reading ``raw_trades`` (``feed``).
    """
    if drain and available_now:
        return None
    if drain:
        return f"{DRAIN_FEED_TRIGGER_SECONDS if feed else DRAIN_TRIGGER_SECONDS} seconds"
    return f"{live_seconds} seconds"
