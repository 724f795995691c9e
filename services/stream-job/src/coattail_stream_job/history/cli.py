"""``coattail-stream-job load-history``: one symbol's trades on one venue for a time range, as Parquet.

    coattail-stream-job load-history --symbol BTCUSDT \\
        --start 2024-08-08T23:54:00Z --end 2024-08-09T00:05:00Z [--out s3://bucket/raw/history/aggtrades]
    coattail-stream-job load-history --exchange coinbase --symbol BTC-USD --start ... --end ...

Loads trades with ``start <= trade time < end`` (``--end`` is exclusive; times are ISO 8601,
UTC when no offset is given, a bare date means midnight UTC) from the REST history of the
venue's connector (``--exchange``, default ``binance``: the connector ``exchanges.<venue>``
names in the configuration, which must offer trade history) into ``--out``, by default
``{storage.raw_zone}/history/aggtrades`` for ``binance`` and ``{storage.raw_zone}/history/<venue>``
for any other venue, partitioned ``date=YYYY-MM-DD/symbol=SYMBOL/``. The configuration is
``--config``, else ``$COATTAIL_CONFIG``, else ``config/features.yaml``. Rerunning the same
command continues after the last stored trade. Exit codes: 0 done, 2 bad arguments or
configuration, a refused request or retries exhausted, 75 banned by the venue (Binance's
HTTP 418; rerun after the time printed), 130 interrupted (rerun to continue). Runs in the
CLI's process; PySpark must be importable (the Arrow schema is derived from the Spark
schema of ``TradeEvent``).
"""

from __future__ import annotations

import argparse
import sys

from coattail_stream_job.arguments import positive_int, utc_time

EXIT_BANNED = 75
"""``EX_TEMPFAIL``: the venue banned this client; a scheduler should retry after the ban."""
EXIT_INTERRUPTED = 130
DEFAULT_EXCHANGE = "binance"
"""The venue loaded when ``--exchange`` is not given."""
HISTORY_FOLDER = "history/aggtrades"
"""Where Binance history goes below ``storage.raw_zone`` when ``--out`` is not given."""


def history_folder(exchange: str) -> str:
    """The default destination below ``storage.raw_zone``: ``history/aggtrades`` (binance), else ``history/<venue>``."""
    return HISTORY_FOLDER if exchange == DEFAULT_EXCHANGE else f"history/{exchange}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``load-history`` arguments."""
    parser.add_argument(
        "--exchange",
        default=DEFAULT_EXCHANGE,
        help=f"venue id under exchanges in the configuration, e.g. coinbase (default {DEFAULT_EXCHANGE})",
    )
    parser.add_argument(
        "--symbol", required=True, type=str.upper, help="the venue's symbol, e.g. BTCUSDT (Binance), BTC-USD (Coinbase)"
    )
    parser.add_argument("--start", required=True, type=utc_time, help="first trade time, inclusive (ISO 8601, UTC)")
    parser.add_argument("--end", required=True, type=utc_time, help="trade time to stop at, exclusive (ISO 8601, UTC)")
    parser.add_argument(
        "--out", help="destination folder or s3:// URI (default {storage.raw_zone}/history/aggtrades for binance)"
    )
    parser.add_argument(
        "--base-url",
        help="REST base URL, the connector's rest_url setting by default (Binance: https://api.binance.com)",
    )
    parser.add_argument("--config", help="configuration file (default $COATTAIL_CONFIG, else config/features.yaml)")
    parser.add_argument(
        "--rows-per-file", type=positive_int, default=100_000, help="trades per Parquet file (default 100000)"
    )
    parser.add_argument(
        "--weight-per-minute",
        type=positive_int,
        help="Binance request weight this loader may use per minute (default: the connector's "
        "rest_weight_limit_per_minute, Binance's limit of 6000)",
    )


def main(args: argparse.Namespace) -> int:
    """Run the load; returns the exit code (see the module docstring)."""
    import asyncio

    from coattail_framework.config import ConfigLoader
    from coattail_framework.errors import ConfigError
    from coattail_framework.history import HistoryFetchError
    from coattail_framework.resilience import RetryExhaustedError
    from coattail_stream_job.history.job import load_history
    from coattail_stream_job.history.loader import HistoryBanError

    if args.end <= args.start:
        raise ConfigError(f"--end {args.end.isoformat()} must be after --start {args.start.isoformat()}")
    config = ConfigLoader(args.config).load()
    destination = args.out or f"{config.storage.raw_zone.rstrip('/')}/{history_folder(args.exchange)}"
    try:
        stats = asyncio.run(
            load_history(
                config,
                exchange=args.exchange,
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
    except RetryExhaustedError as error:
        raise HistoryFetchError(f"{error}; rerun the same command to continue after the stored trades") from error
    except KeyboardInterrupt:
        print("coattail-stream-job load-history: interrupted; rerun the same command to continue", file=sys.stderr)  # noqa: T201
        return EXIT_INTERRUPTED
    print(f"{stats.summary()}; destination {destination}")  # noqa: T201
    return 0
