"""``coattail-stream-job load-history``: one symbol's Binance aggTrades for a time range, as Parquet.

    coattail-stream-job load-history --symbol BTCUSDT \\
        --start 2024-08-08T23:54:00Z --end 2024-08-09T00:05:00Z [--out s3://bucket/raw/history/aggtrades]

Loads trades with ``start <= trade time < end`` (``--end`` is exclusive; times are ISO 8601,
UTC when no offset is given, a bare date means midnight UTC) into ``--out``, by default
``{storage.raw_zone}/history/aggtrades`` of the configuration (``--config``, else
``$COATTAIL_CONFIG``, else ``config/features.yaml``), partitioned ``date=YYYY-MM-DD/symbol=SYMBOL/``.
Rerunning the same command continues after the last stored trade. Exit codes: 0 done,
2 bad arguments or configuration, 75 banned by Binance (HTTP 418; rerun after the time
printed), 130 interrupted (rerun to continue). Runs in the CLI's process; PySpark must be
importable (the Arrow schema is derived from the Spark schema of ``TradeEvent``).
"""

from __future__ import annotations

import argparse
import sys

from coattail_stream_job.arguments import positive_int, utc_time

EXIT_BANNED = 75
"""``EX_TEMPFAIL``: Binance banned this IP; a scheduler should retry after the ban."""
EXIT_INTERRUPTED = 130
DEFAULT_BASE_URL = "https://api.binance.com"
HISTORY_FOLDER = "history/aggtrades"
"""Where the history goes below ``storage.raw_zone`` when ``--out`` is not given."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``load-history`` arguments."""
    parser.add_argument("--symbol", required=True, type=str.upper, help="Binance spot symbol, e.g. BTCUSDT")
    parser.add_argument("--start", required=True, type=utc_time, help="first trade time, inclusive (ISO 8601, UTC)")
    parser.add_argument("--end", required=True, type=utc_time, help="trade time to stop at, exclusive (ISO 8601, UTC)")
    parser.add_argument("--out", help="destination folder or s3:// URI (default {storage.raw_zone}/history/aggtrades)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"Binance REST base URL ({DEFAULT_BASE_URL})")
    parser.add_argument("--config", help="configuration file (default $COATTAIL_CONFIG, else config/features.yaml)")
    parser.add_argument(
        "--rows-per-file", type=positive_int, default=100_000, help="trades per Parquet file (default 100000)"
    )
    parser.add_argument(
        "--weight-per-minute",
        type=positive_int,
        default=6000,
        help="request weight this loader may use per minute, Binance's limit by default (6000)",
    )


def main(args: argparse.Namespace) -> int:
    """Run the load; returns the exit code (see the module docstring)."""
    import asyncio

    from coattail_framework.config import ConfigLoader
    from coattail_framework.errors import ConfigError
    from coattail_stream_job.history.job import load_history
    from coattail_stream_job.history.loader import HistoryBanError

    if args.end <= args.start:
        raise ConfigError(f"--end {args.end.isoformat()} must be after --start {args.start.isoformat()}")
    config = ConfigLoader(args.config).load()
    destination = args.out or f"{config.storage.raw_zone.rstrip('/')}/{HISTORY_FOLDER}"
    try:
        stats = asyncio.run(
            load_history(
                config,
                symbol=args.symbol,
                start=args.start,
                end=args.end,
                destination=destination,
                base_url=args.base_url,
                rows_per_file=args.rows_per_file,
                weight_per_minute=args.weight_per_minute,
            )
        )
    except HistoryBanError as ban:
        print(f"coattail-stream-job load-history: {ban}", file=sys.stderr)  # noqa: T201
        return EXIT_BANNED
    except KeyboardInterrupt:
        print("coattail-stream-job load-history: interrupted; rerun the same command to continue", file=sys.stderr)  # noqa: T201
        return EXIT_INTERRUPTED
    print(f"{stats.summary()}; destination {destination}")  # noqa: T201
    return 0
