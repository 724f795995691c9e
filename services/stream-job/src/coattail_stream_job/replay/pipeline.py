"""Replay orchestration: recordings -> producer replay -> Kinesis -> stream job (drain) -> sinks read back.

Runs in one process (the Spark driver): moto serves Kinesis, DynamoDB, S3 and CloudWatch
on 127.0.0.1 from a thread, the producer's replay runs the exchange simulators and the
unchanged connectors on an asyncio loop until every frame is published, then the
``PipelineRunner`` drains the stream (ingest and one query per configured detector, drain
triggers) until each query has read every published event and closed its final watermark
(``drain_replayed``; a failed query raises the runner's ``QueryFailedError``, records left
unread its ``DrainIncompleteError``). Everything the run leaves is under ``out``:

- ``iceberg/`` — the SQLite catalog and the warehouse (``raw_trades``, every detector's
  table, ``alerts``); ``raw/dlq/`` — dead letters by reason; ``checkpoints/``;
- ``alerts.jsonl`` — the DynamoDB alert table read back, one ``BASE_ALERT_RECORD`` per
  line (``detected_at`` ISO 8601 UTC, ``ttl_epoch`` seconds), sorted by time then id;
- ``tables/<table>.parquet`` — every Iceberg table of the run as one Parquet file (Arrow
  types as the table's scan gives them: timestamps ``timestamp[us, tz=UTC]``), so a
  backtest's outputs are read without a catalog (``pyarrow.parquet.read_table``, pandas,
  DuckDB, Spark);
- ``summary.json`` — events read, valid, invalid by rule, late rows per query, rows per
  Iceberg table (``table_rows``, each equal to its Parquet file's), alerts per module and
  severity, producer figures and wall times.

Recorded event times are kept, and the stream job reads the whole replay as ONE
micro-batch (``kinesis.max_records_per_trigger`` is raised to the number of published
events): a watermark cannot move between two venues' records, so which trades count as
late does not depend on how the shards interleave, and two replays of the same input
give the same rows and the same alert ids. Venues named by a replayed file are enabled
for the run even when the configuration switches their live connector off.

``kinesis:FILE`` puts FILE's lines into the stream as they are, beside the recordings
(``coattail_producer.raw_records``: empty lines skipped, lines over 1 MiB rejected, both
counted). The stream job then waits for every record put, trades and raw lines alike:
each ends in ``raw_trades`` or the dead-letter path. ``summary.json`` counts them under
``events.raw_records`` and in ``events.published``.

Example::

    summary = run_replay(load_config("config/features.yaml"),
                         ["binance:tests/data/binance/ws/spot_btcusdt_20240808.gz"], Path("out"))
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from coattail_framework.aws.alert_table import decode_alert_item
from coattail_framework.aws.clients import aws_client
from coattail_framework.config.model import CoattailConfig
from coattail_framework.errors import CoattailError
from coattail_framework.schemas import BASE_ALERT_RECORD

if TYPE_CHECKING:
    import pyarrow as pa

LOG = logging.getLogger(__name__)

OWNED_PATHS = ("iceberg", "raw", "checkpoints", "tables", "alerts.jsonl", "summary.json", "report.html")
"""What a replay writes under its output folder (removed first: every replay starts empty)."""

STOP_GRACE_SECONDS = 10.0
"""Once the limit passed: how long the running stage may take to stop (queries end their batch, producer tasks)."""

Progress = Callable[[str], None]
T = TypeVar("T")


class ReplayError(CoattailError):
    """The replay could not run: a recording missing, events lost by the producer, no alert where one was due."""


class TimeLimitError(ReplayError):
    """The run's time limit passed; the message names the stage that did not finish."""


@dataclass
class ReplayOutcome:
    """What a replay left: the summary document, the Iceberg tables and the DynamoDB alerts read back."""

    summary: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    alerts: list[dict[str, Any]]


@dataclass
class StageClock:
    """Prints ``[  12.3s] stage`` lines, keeps each stage's wall time (seconds) and the run's time limit.

    ``limit_seconds`` (None: no limit) counts from the clock's start; each stage asks
    ``remaining()`` to bound its waits and ``check()`` between steps, which raises
    ``TimeLimitError`` naming the running stage. ``clock`` is injectable for tests.
    """

    progress: Progress
    limit_seconds: float | None = None
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    stages: dict[str, float] = field(default_factory=dict)
    _current: tuple[str, float] | None = None

    def __post_init__(self) -> None:
        self.started = self.clock()

    def stage(self, name: str, detail: str = "") -> None:
        """Close the running stage and open ``name``; ``TimeLimitError`` if the limit passed while it ran."""
        if self._current is not None:
            self.check()
        self.finish()
        now = self.clock()
        self._current = (name, now)
        self.progress(f"[{now - self.started:7.1f}s] {name}{': ' + detail if detail else ''}")

    def finish(self) -> None:
        """Close the running stage."""
        if self._current is not None:
            name, since = self._current
            self.stages[name] = round(self.clock() - since, 3)
            self._current = None

    @property
    def total(self) -> float:
        """Seconds since the clock started."""
        return round(self.clock() - self.started, 3)

    def remaining(self) -> float:
        """Seconds left before the limit (infinite without one; <= 0 once it passed)."""
        if self.limit_seconds is None:
            return float("inf")
        return self.limit_seconds - (self.clock() - self.started)

    def time_limit_error(self, unfinished: str = "") -> TimeLimitError:
        """The error for the running stage: which stage, for how long, and how to give it more time."""
        name, since = self._current if self._current is not None else ("before the first stage", self.started)
        return TimeLimitError(
            f"time limit of {self.limit_seconds:g} s passed during stage {name!r} (running for "
            f"{self.clock() - since:.1f} s){': ' + unfinished if unfinished else ''}; it was stopped. "
            "Raise --time-limit if the machine is slow, or look above for errors that kept it from finishing"
        )

    def check(self) -> None:
        """Raise ``TimeLimitError`` naming the running stage once the limit has passed."""
        if self.remaining() <= 0:
            raise self.time_limit_error()


async def within_limit(clock: StageClock, work: Awaitable[T], *, poll_seconds: float = 0.1) -> T:
    """``work``'s result, or, once ``clock``'s limit passes, ``work`` cancelled and ``TimeLimitError``.

    The cancelled work gets ``STOP_GRACE_SECONDS`` to run its cleanup (the producer replay
    stops its simulators in a ``finally``); tasks it leaves are cancelled by ``asyncio.run``.
    """
    task = asyncio.ensure_future(work)
    while not task.done():
        remaining = clock.remaining()
        if remaining <= 0:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
            raise clock.time_limit_error()
        await asyncio.wait({task}, timeout=min(poll_seconds, remaining))
    return task.result()


def replay_config(config: CoattailConfig, venues: Sequence[str], published: int | None = None) -> CoattailConfig:
    """``config`` with the replayed venues enabled and, once known, one micro-batch for ``published`` events.

    Trade times are judged against each record's ``ingestion_timestamp`` (``quality.event_time_reference:
    ingestion``): the connectors stamp it with the recording's clock, while Kinesis arrival is today.
    """
    exchanges = {
        venue: exchange.model_copy(update={"enabled": True}) if venue in venues else exchange
        for venue, exchange in config.exchanges.items()
    }
    quality = config.quality.model_copy(update={"event_time_reference": "ingestion"})
    update: dict[str, Any] = {"exchanges": exchanges, "quality": quality}
    if published is not None:
        limit = max(config.kinesis.max_records_per_trigger, published)
        # One micro-batch, whatever the records' bytes (the byte cap would split it).
        update["kinesis"] = config.kinesis.model_copy(
            update={"max_records_per_trigger": limit, "max_bytes_per_trigger": None}
        )
    return config.model_copy(update=update)


def clear_outputs(out: Path) -> None:
    """Remove what an earlier replay left under ``out`` (only the paths a replay owns)."""
    for name in OWNED_PATHS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def read_alert_items(config: CoattailConfig) -> list[dict[str, Any]]:
    """Every item of the DynamoDB alert table as a ``BASE_ALERT_RECORD`` dict, by time then id."""
    table = aws_client("dynamodb", region=config.aws.region, endpoint_url=config.aws.endpoint_url)
    items: list[dict[str, Any]] = []
    paginator = table.get_paginator("scan")
    for page in paginator.paginate(TableName=config.dynamodb.table_name):
        for item in page["Items"]:
            alert = decode_alert_item(item)
            items.append({name: alert.get(name) for name in BASE_ALERT_RECORD.fieldNames()})
    return sorted(items, key=lambda item: (str(item["detected_at"]), str(item["alert_id"])))


def read_tables(config: CoattailConfig) -> dict[str, pa.Table]:
    """Every Iceberg table of ``iceberg.database`` read back whole (its current snapshot), by table name."""
    from coattail_framework.iceberg import open_catalog

    catalog = open_catalog(config.iceberg, config.aws)
    database = config.iceberg.database
    if database not in {namespace[0] for namespace in catalog.list_namespaces()}:
        return {}
    return {
        identifier[-1]: catalog.load_table(identifier).scan().to_arrow()
        for identifier in sorted(catalog.list_tables(database))
    }


def write_parquet_tables(tables: Mapping[str, pa.Table], folder: Path) -> dict[str, Path]:
    """Each table as ``folder/<table>.parquet`` (zstd, one file), by table name; ``folder`` is created.

    Each file is written beside its name and renamed once complete, so a run killed mid-write
    leaves no truncated ``.parquet`` (only a ``.parquet.partial``, and no ``summary.json``).
    """
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, table in tables.items():
        path = folder / f"{name}.parquet"
        partial = path.with_name(f"{path.name}.partial")
        pq.write_table(table, partial, compression="zstd")
        partial.replace(path)
        written[name] = path
    return written


def alert_counts(alerts: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``{module_id: {severity: count}}`` of alert records."""
    counts: dict[str, Counter[str]] = {}
    for alert in alerts:
        counts.setdefault(str(alert["module_id"]), Counter())[str(alert["severity"])] += 1
    return {module: dict(sorted(by_severity.items())) for module, by_severity in sorted(counts.items())}


def records_put(producer: dict[str, Any]) -> int:
    """Records the producer replay put into the stream: published trades plus raw-record lines put."""
    raw = producer.get("raw")
    return int(producer["published"]) + (int(raw["put"]) if raw else 0)


def build_summary(
    stats: dict[str, Any],
    producer: dict[str, Any],
    tables: dict[str, list[dict[str, Any]]],
    alerts: Sequence[dict[str, Any]],
    clock: StageClock,
    recordings: Sequence[str],
    config_path: str,
    severities: Mapping[str, str],
) -> dict[str, Any]:
    """The ``summary.json`` document (counts from the sinks read back, plus the job's totals).

    ``severities`` maps each data-quality rule to ``error`` (the row is invalid) or ``warn``.
    """
    quality: dict[str, int] = stats["quality"]

    def failures(severity: str) -> dict[str, int]:
        return {
            rule: quality[rule] for rule, level in sorted(severities.items()) if level == severity and quality.get(rule)
        }

    return {
        "recordings": list(recordings),
        "config": config_path,
        "events": {
            "published": records_put(producer),
            "raw_records": producer.get("raw"),
            "read": stats["input_rows"].get("ingest", 0),
            "valid": len(tables.get("raw_trades", [])),
            "invalid": quality.get("invalid", 0),
            "invalid_by_rule": failures("error"),
            "warnings_by_rule": failures("warn"),
            "dead_letters_by_reason": stats["dead_letters"],
        },
        "late_rows": {query: rows for query, rows in sorted(stats["late_rows"].items())},
        "table_rows": {name: len(rows) for name, rows in tables.items()},
        "alerts": {"total": len(alerts), "by_module": alert_counts(alerts)},
        "producer": producer,
        "wall_seconds": {"total": clock.total, **clock.stages},
    }


def drain_replayed(runner: Any, published: int, clock: StageClock) -> dict[str, Any]:
    """Drain the stream with ``runner`` (``PipelineRunner.run(drain=True)``), within ``clock``'s limit; the totals.

    The runner's drain stops each query once it has read what the stream holds and closed
    its final watermark, then ``check_drained`` fails loudly if any query left a record
    that was published before it started, so the totals count every published record.
    When ``clock``'s time limit passes first, the runner stops its queries and
    ``TimeLimitError`` names the queries still running and what each had read.
    """
    from coattail_framework.pipeline.completeness import DrainTimeLimitError

    try:
        stats = runner.run(drain=True, handle_signals=False, time_limit_seconds=max(0.0, clock.remaining()))
    except DrainTimeLimitError as late:
        raise clock.time_limit_error(
            f"{', '.join(late.pending)} still running; queries had read {late.rows_read} of {published} "
            "published event(s)"
        ) from late
    snapshot: dict[str, Any] = stats.snapshot()
    return snapshot


def run_replay(
    config: CoattailConfig,
    recordings: Sequence[str | Path],
    out: Path,
    *,
    config_path: str = "",
    progress: Progress = print,
    clock: StageClock | None = None,
) -> ReplayOutcome:
    """Replay ``recordings`` through the whole pipeline into ``out`` (see the module docstring).

    ``clock`` carries the stage lines and the run's time limit (default: no limit); each
    stage is stopped when the limit passes and ``TimeLimitError`` names it.
    """
    from pyspark.sql import SparkSession

    from coattail_stream_job.local_extra import require_local_extra

    require_local_extra("the local replay", spark=True)
    from coattail_devstack.localstack import start_local_stack
    from coattail_framework.pipeline import PipelineRunner
    from coattail_framework.spark import local_session
    from coattail_producer.replay import replay

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    clear_outputs(out)
    clock = clock or StageClock(progress)
    names = [str(recording) for recording in recordings]
    venues = [name.partition(":")[0] for name in names if ":" in name]
    clock.stage("local stack", f"moto on 127.0.0.1, Iceberg catalog under {out / 'iceberg'}")
    with start_local_stack(replay_config(config, venues), out) as stack:
        clock.stage("producer replay", f"{len(names)} recording(s) through the simulators and connectors")
        producer = asyncio.run(within_limit(clock, replay(stack.config, names)))
        report = producer.as_dict()
        published = records_put(report)
        progress(
            f"          published {producer.published} event(s) from "
            + ", ".join(f"{v.venue} {v.received}" for v in producer.venues.values())
        )
        if producer.raw is not None:
            raw = producer.raw
            progress(
                f"          raw records: {raw.lines_read} line(s) read, {raw.put} put, {raw.empty_lines} empty "
                f"(skipped), rejected {dict(raw.rejected) or 'none'}"
            )
        if not producer.clean:
            raise ReplayError(f"the producer replay lost events: {json.dumps(report)}")
        if published == 0:
            raise ReplayError(f"the producer replay put no record into the stream: {json.dumps(report)}")
        job_config = replay_config(stack.config, [*venues, *producer.venues], published)
        clock.stage("stream job", "Spark local[2]: ingest + " + ", ".join(job_config.active_modules))
        caller_session = SparkSession.getActiveSession()
        spark = local_session("coattail-replay")
        spark.sparkContext.setLogLevel("ERROR")
        runner = PipelineRunner(spark, job_config)
        try:
            stats = drain_replayed(runner, published, clock)
        finally:
            if caller_session is None:  # a session the caller had (a test's) stays theirs to stop
                spark.stop()
        severities = {rule.name: rule.severity for rule in runner.checker.rules}
        clock.stage("sinks", "reading DynamoDB and Iceberg back")
        alerts = read_alert_items(job_config)
        arrow_tables = read_tables(job_config)
        write_parquet_tables(arrow_tables, out / "tables")
        tables = {name: table.to_pylist() for name, table in arrow_tables.items()}
        clock.check()
        clock.finish()
        summary = build_summary(stats, report, tables, alerts, clock, names, config_path, severities)
    (out / "alerts.jsonl").write_text("".join(json.dumps(alert, sort_keys=False) + "\n" for alert in alerts))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    progress(f"[{clock.total:7.1f}s] done: {out / 'summary.json'}")
    return ReplayOutcome(summary, tables, alerts)


DEMO_RECORDINGS = (
    "binance:binance/ws/spot_btcusdt_20240808.gz",
    "binance:binance/ws/spot_btcusdt_20240809.gz",
    "binance:binance/ws/spot_ethusdt_20240808.gz",
    "binance:binance/ws/spot_ethusdt_20240809.gz",
    "binance-usdm:binance/ws/usdm_btcusdt_20240808.gz",
    "coinbase:coinbase/ws/cryptofeed_COINBASE.ws.28.0",
)
"""The bundled real recordings the demo replays, relative to the data folder (``tests/data``)."""


def run_demo(
    config: CoattailConfig,
    data: Path,
    out: Path,
    *,
    config_path: str = "",
    progress: Progress = print,
    clock: StageClock | None = None,
) -> ReplayOutcome:
    """Replay the bundled recordings plus the labelled synthetic Coinbase BTC-USD file; print and write the report.

    ``clock``: as in ``run_replay``; its limit covers the synthetic input and the report too.
    """
    from coattail_stream_job.replay import report, synthetic

    clock = clock or StageClock(progress)

    recordings = []
    for entry in DEMO_RECORDINGS:
        venue, _, relative = entry.partition(":")
        if not (data / relative).is_file():
            raise ReplayError(f"{data / relative}: bundled recording not found; pass --data with the tests/data folder")
        recordings.append(f"{venue}:{data / relative}")
    plan = synthetic.SyntheticPlan()
    clock.stage("synthetic input", "Coinbase BTC-USD from the Binance BTCUSDT recordings")
    synthetic_file = synthetic.write_coinbase_btc_usd(
        [data / "binance/ws/spot_btcusdt_20240808.gz", data / "binance/ws/spot_btcusdt_20240809.gz"],
        out.resolve() / "synthetic",
        plan,
    )
    progress(f"SYNTHETIC input: {synthetic_file} — {plan.describe()}")
    outcome = run_replay(
        config,
        [*recordings, f"coinbase:{synthetic_file}"],
        out,
        config_path=config_path,
        progress=progress,
        clock=clock,
    )
    clock.stage("report", f"{out.resolve() / 'report.html'}")
    summary, tables, alerts = outcome.summary, outcome.tables, outcome.alerts
    labels = {"coinbase": [synthetic.PRODUCT]}
    summary["synthetic"] = {"files": [str(synthetic_file)], "venues": labels, "description": plan.describe()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    progress(report.summary_table(summary, tables, labels))
    notes = [
        f"{synthetic_file.name}: {plan.describe()}. Real recordings: Binance spot BTCUSDT/ETHUSDT, USD-M BTCUSDT "
        "(2024-08-08/09), Coinbase 2021 altcoin feed (its products are not configured: dead letters)."
    ]
    (out / "report.html").write_text(report.html_report(summary, tables, alerts, synthetic=labels, notes=notes))
    clock.finish()
    progress(f"report: {out.resolve() / 'report.html'}")
    if missing := synthetic.missing_cases(alerts, plan):
        raise ReplayError(
            f"the demo's synthetic cases raised no alert: {'; '.join(missing)}. See the Coinbase venue's "
            f"quarantined and connector counts in {out.resolve() / 'summary.json'}"
        )
    return outcome
