"""Wires one history load from the configuration: HTTP session, client, store, schema, progress.

Runs in the CLI's process on its event loop; tests call it with the Binance simulator's URL.

Example::

    stats = await load_history(config, symbol="BTCUSDT", start=start, end=end,
                               destination="s3://coattail-data/raw/history/aggtrades",
                               base_url="https://api.binance.com")
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiohttp

from coattail_framework.config import CoattailConfig
from coattail_stream_job.history.client import AggTradesClient
from coattail_stream_job.history.loader import DEFAULT_ROWS_PER_FILE, HistoryLoader
from coattail_stream_job.history.progress import LoadStats, ProgressReporter, default_reporter
from coattail_stream_job.history.store import open_store

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_ms(moment: datetime) -> int:
    """An aware datetime as milliseconds since the epoch (UTC)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


async def load_history(
    config: CoattailConfig,
    *,
    symbol: str,
    start: datetime,
    end: datetime,
    destination: str,
    base_url: str,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    weight_per_minute: int = 6000,
    progress: ProgressReporter | None = None,
) -> LoadStats:
    """Load ``symbol``'s trades with ``start <= T < end`` into ``destination``; see ``HistoryLoader``."""
    from coattail_framework.iceberg import to_arrow_schema
    from coattail_framework.schemas import UNIFIED_TRADE_EVENT

    store = open_store(destination, region=config.aws.region, endpoint_url=config.aws.endpoint_url)
    async with aiohttp.ClientSession() as session:
        client = AggTradesClient(session, base_url, weight_per_minute=weight_per_minute)
        loader = HistoryLoader(
            client,
            store,
            to_arrow_schema(UNIFIED_TRADE_EVENT),
            rows_per_file=rows_per_file,
            progress=progress or default_reporter(),
        )
        return await loader.load(symbol, epoch_ms(start), epoch_ms(end))
