"""``coattail-stream-job reprocess``: today's detectors over ``raw_trades`` as it was at a snapshot.

    coattail-stream-job reprocess --as-of-snapshot 4617320145098133123 [--config FILE] [--json]
    coattail-stream-job reprocess --as-of-time 2024-08-09T00:00:00Z --local [--root .local-stack]

Runs on the Spark driver. Reads the Iceberg ``raw_trades`` table as of a snapshot id, or as
of a time (the snapshot current then), loads the detectors active in the CURRENT
configuration (thresholds may have changed since the live job ran) and runs each one's
``process`` over those trades as a stream, exactly as the live job does: the snapshot is
staged as Parquet files in trade-time order under
``{storage.checkpoint_root}/reprocess/<run>/`` and read one file per micro-batch with
``availableNow`` (``timetravel.stage_snapshot``). Module output goes to
``<output_table>_reprocessed`` and alerts to the Iceberg table ``alerts_reprocessed``,
never to DynamoDB; the live tables are only read. Each run replaces the
``*_reprocessed`` tables it writes, so they always hold one run's results.

The result is deterministic: the same snapshot and configuration give the same rows and
the same alert ids as the live job produced for the same trades (alert ids hash the
finding, not the run). Two differences are by design: trades arrive in trade-time order,
so none is late (the live job may have dropped some as late), and state the final
watermark has not passed (an open window, an order within its watermark delay of the
last trade) is not emitted, the same as in the live job.

Prints a comparison: alerts per module and severity in the live ``alerts`` table
(restricted to the snapshot's trade-time range unless ``--all-original``) and in the
reprocessed run, and the alert ids found on one side only; ``--json`` prints it as JSON.
With ``--local`` the catalog and staging folder are those of the embedded local stack
under ``--root`` (what ``run --local`` writes) and Spark runs local[2].

Exit codes: 0 done, 1 a detector's query failed, 2 bad arguments, configuration,
plugins or snapshot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coattail_framework.errors import CoattailError
from coattail_stream_job.arguments import positive_int, utc_time

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table
    from pyspark.sql import DataFrame, SparkSession

    from coattail_framework.config.model import CoattailConfig
    from coattail_framework.detector import BaseDetector
    from coattail_framework.sinks import AlertRouter
    from coattail_stream_job.comparison import AlertComparison
    from coattail_stream_job.timetravel import StagedSnapshot

LOG = logging.getLogger(__name__)

TABLE_SUFFIX = "_reprocessed"
ALERTS_REPROCESSED = f"alerts{TABLE_SUFFIX}"
DEFAULT_LOCAL_ROOT = Path(".local-stack")
DEFAULT_ROWS_PER_BATCH = 200_000
"""Trades per micro-batch of a reprocess run: its batches carry no late trade (they are in trade-time order), so
fewer, larger batches give the same rows (measured: a fixed cost of several seconds per batch, docs/BENCHMARKS.md)."""
EXIT_QUERY_FAILED = 1
APP_NAME = "coattail-reprocess"


class ReprocessError(CoattailError):
    """The reprocessing cannot start: no ``raw_trades`` table, or a bad argument."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``reprocess`` arguments."""
    as_of = parser.add_mutually_exclusive_group(required=True)
    as_of.add_argument("--as-of-snapshot", type=int, metavar="ID", help="raw_trades snapshot id to read")
    as_of.add_argument(
        "--as-of-time",
        type=utc_time,
        metavar="ISO8601",
        help="read raw_trades as it was at this time (UTC if no offset)",
    )
    parser.add_argument("--config", help="configuration file (default $COATTAIL_CONFIG, else config/features.yaml)")
    parser.add_argument("--local", action="store_true", help="the embedded local stack's catalog, local[2] Spark")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help=f"with --local: the local stack's folder (default {DEFAULT_LOCAL_ROOT})",
    )
    parser.add_argument(
        "--rows-per-batch",
        type=positive_int,
        default=DEFAULT_ROWS_PER_BATCH,
        help=f"trades per micro-batch of the replayed snapshot (default {DEFAULT_ROWS_PER_BATCH})",
    )
    parser.add_argument(
        "--all-original",
        action="store_true",
        help="compare with every live alert, not only those inside the snapshot's trade-time range",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


@dataclass
class ModuleTotals:
    """Rows each reprocessed table received (driver; the detector queries add under the lock)."""

    table_rows: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def main(args: argparse.Namespace) -> int:
    """Reprocess and print the comparison; returns the exit code (see the module docstring)."""
    from coattail_framework.config import ConfigLoader
    from coattail_framework.registry import ModuleRegistry
    from coattail_framework.sinks import AlertRouter
    from coattail_stream_job.timetravel import pinned, remove_folder, resolve_snapshot, stage_snapshot, utc

    if args.root is not None and not args.local:
        raise ReprocessError("--root only applies with --local (the folder of the embedded local stack)")
    config = ConfigLoader(args.config).load()
    if args.local:
        config = local_paths(config, args.root or DEFAULT_LOCAL_ROOT)
    detectors = ModuleRegistry().discover().get_active_detectors(config)
    router = AlertRouter.from_config(config)
    catalog = router.sink.catalog
    raw_trades = _load_raw_trades(catalog, config)
    snapshot = resolve_snapshot(raw_trades, snapshot_id=args.as_of_snapshot, as_of=args.as_of_time)
    run = f"snapshot-{snapshot.snapshot_id}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    scratch = f"{config.storage.checkpoint_root.rstrip('/')}/reprocess/{run}"
    LOG.info("reprocessing raw_trades snapshot %d with %s", snapshot.snapshot_id, [d.module_name for d in detectors])
    with pinned(raw_trades, snapshot.snapshot_id, tag=f"coattail-reprocess-{run}"):
        staged = stage_snapshot(raw_trades, snapshot.snapshot_id, f"{scratch}/input", rows_per_file=args.rows_per_batch)
    replace_tables(catalog, config.iceberg.database, [f"{d.output_table}{TABLE_SUFFIX}" for d in detectors])
    replace_tables(catalog, config.iceberg.database, [ALERTS_REPROCESSED])
    totals = ModuleTotals()
    if staged.files:
        from coattail_stream_job.session import job_session

        with job_session(APP_NAME, local=args.local) as spark:
            failure = stream_detectors(spark, detectors, router, staged, f"{scratch}/checkpoints", totals)
        if failure is not None:
            print(f"coattail-stream-job reprocess: {failure}; staged trades kept in {scratch}", file=sys.stderr)  # noqa: T201
            return EXIT_QUERY_FAILED
    remove_folder(scratch)
    comparison = _compare(catalog, config.iceberg.database, staged, all_original=args.all_original)
    result = {
        "snapshot": {
            "id": snapshot.snapshot_id,
            "committed_at": utc(snapshot.timestamp_ms).isoformat(),
            "trades": staged.rows,
            "micro_batches": staged.files,
            "first_trade": staged.first_trade.isoformat() if staged.first_trade else None,
            "last_trade": staged.last_trade.isoformat() if staged.last_trade else None,
        },
        "modules": [d.module_name for d in detectors],
        "table_rows": dict(sorted(totals.table_rows.items())),
        "original_alerts": "all" if args.all_original else "snapshot trade-time range",
        "comparison": comparison.as_dict(),
    }
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(_render(result, comparison) + "\n")
    sys.stdout.flush()
    return 0


def local_paths(config: CoattailConfig, root: Path) -> CoattailConfig:
    """``config`` with the local stack's catalog, raw zone and checkpoints under ``root`` (no AWS endpoint needed)."""
    from coattail_stream_job.local_extra import require_local_extra

    require_local_extra("reprocess --local")
    from coattail_devstack.localstack import local_config

    # Reprocessing reads and writes Iceberg only: keep the configured AWS section, drop the stack's endpoint.
    located = local_config(config, root, endpoint_url="http://127.0.0.1")
    return located.model_copy(update={"aws": config.aws})


def _load_raw_trades(catalog: Catalog, config: CoattailConfig) -> Table:
    from pyiceberg.exceptions import NoSuchTableError

    from coattail_framework.pipeline.ingest import RAW_TRADES_TABLE

    try:
        return catalog.load_table((config.iceberg.database, RAW_TRADES_TABLE))
    except NoSuchTableError:
        raise ReprocessError(
            f"Iceberg catalog {config.iceberg.uri if config.iceberg.catalog_type == 'sql' else 'glue'} has no table "
            f"{config.iceberg.database}.{RAW_TRADES_TABLE}: run the stream job first, or point --config/--root at "
            "the catalog it wrote"
        ) from None


def replace_tables(catalog: Catalog, database: str, tables: Sequence[str]) -> None:
    """Drop (and purge) the reprocessed tables of an earlier run; the sinks create them again on first write."""
    from pyiceberg.exceptions import NoSuchTableError

    for table in tables:
        try:
            catalog.purge_table((database, table))
        except NoSuchTableError:
            continue
        LOG.info("replaced %s.%s (results of an earlier reprocess run)", database, table)


def stream_detectors(
    spark: SparkSession,
    detectors: Sequence[BaseDetector[Any]],
    router: AlertRouter,
    staged: StagedSnapshot,
    checkpoints: str,
    totals: ModuleTotals,
) -> str | None:
    """Run every detector over the staged files (one query each, concurrently); the first failure, else None."""
    from pyspark.errors import StreamingQueryException

    from coattail_framework.schemas import UNIFIED_TRADE_EVENT

    queries = []
    for detector in detectors:
        name = f"reprocess-{detector.module_name}"
        events = spark.readStream.schema(UNIFIED_TRADE_EVENT).option("maxFilesPerTrigger", 1).parquet(staged.folder)

        def handler(batch: DataFrame, batch_id: int, detector: BaseDetector[Any] = detector, name: str = name) -> None:
            write_batch(router, detector, batch, batch_id, writer=name, totals=totals)

        writer = detector.process(events).writeStream.queryName(name).foreachBatch(handler)
        writer = writer.option("checkpointLocation", f"{checkpoints}/{detector.module_name}")
        queries.append(writer.trigger(availableNow=True).start())
    failure = None
    for query in queries:
        with contextlib.suppress(StreamingQueryException):  # the failure is read from query.exception() below
            query.awaitTermination()
        if failure is None and (error := query.exception()) is not None:
            failure = f"query {query.name} failed: {error}"
            for other in queries:
                other.stop()
    return failure


def write_batch(
    router: AlertRouter,
    detector: BaseDetector[Any],
    output: DataFrame,
    batch_id: int,
    *,
    writer: str,
    totals: ModuleTotals,
) -> None:
    """Module rows to ``<output_table>_reprocessed``, alerts to ``alerts_reprocessed`` (driver, per micro-batch)."""
    from coattail_framework.schemas import BASE_ALERT_RECORD
    from coattail_framework.sinks.router import ALERTS_PARTITION

    output = output.persist()
    try:
        rows = router.route_module_output(detector, output, batch_id, writer=writer, table_suffix=TABLE_SUFFIX)
        alerts = router.with_ttl(detector.build_alerts(output))
        alert_rows = router.sink.append(
            ALERTS_REPROCESSED, BASE_ALERT_RECORD, ALERTS_PARTITION, alerts, batch_id=batch_id, writer=writer
        ).rows
    finally:
        output.unpersist()
    with totals.lock:
        totals.table_rows[f"{detector.output_table}{TABLE_SUFFIX}"] += rows
        totals.table_rows[ALERTS_REPROCESSED] += alert_rows


def _alert_rows(catalog: Catalog, database: str, table: str, staged: StagedSnapshot | None) -> list[dict[str, Any]]:
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, LessThanOrEqual

    try:
        iceberg_table = catalog.load_table((database, table))
    except NoSuchTableError:
        LOG.info("no table %s.%s: no alerts on that side", database, table)
        return []
    where: BooleanExpression = AlwaysTrue()
    if staged is not None:
        if staged.first_trade is None or staged.last_trade is None:
            return []
        where = And(
            GreaterThanOrEqual(term="detected_at", value=staged.first_trade.isoformat()),
            LessThanOrEqual(term="detected_at", value=staged.last_trade.isoformat()),
        )
    rows: list[dict[str, Any]] = iceberg_table.scan(row_filter=where).to_arrow().to_pylist()
    return rows


def _compare(catalog: Catalog, database: str, staged: StagedSnapshot, *, all_original: bool) -> AlertComparison:
    from coattail_framework.sinks import ALERTS_TABLE
    from coattail_stream_job.comparison import compare_alerts

    original = _alert_rows(catalog, database, ALERTS_TABLE, None if all_original else staged)
    reprocessed = _alert_rows(catalog, database, ALERTS_REPROCESSED, None)
    return compare_alerts(original, reprocessed)


def _render(result: dict[str, Any], comparison: AlertComparison) -> str:
    snapshot = result["snapshot"]
    lines = [
        f"raw_trades snapshot {snapshot['id']} (committed {snapshot['committed_at']}): {snapshot['trades']} trades "
        f"from {snapshot['first_trade']} to {snapshot['last_trade']} in {snapshot['micro_batches']} micro-batches",
        f"modules: {', '.join(result['modules']) or 'none'}",
        "rows written: " + (", ".join(f"{t} {n}" for t, n in result["table_rows"].items()) or "none"),
        f"original alerts: {result['original_alerts']}",
        "",
        comparison.render(),
    ]
    return "\n".join(lines)
