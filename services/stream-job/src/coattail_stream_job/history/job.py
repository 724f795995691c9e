"""Wires one history load from the configuration: the venue's trade history, store, schema, progress.

Runs in the CLI's process on its event loop; tests call it with a simulator's REST URL.

Example::

    stats = await load_history(config, exchange="coinbase", symbol="BTC-USD", start=start, end=end,
                               destination="s3://coattail-data/raw/history/coinbase")
"""

from __future__ import annotations

from datetime import datetime

from coattail_framework.config import CoattailConfig
from coattail_stream_job.history.cli import DEFAULT_EXCHANGE
from coattail_stream_job.history.client import open_trade_history
from coattail_stream_job.history.loader import DEFAULT_ROWS_PER_FILE, HistoryLoader, epoch_ms
from coattail_stream_job.history.progress import LoadStats, ProgressReporter, default_reporter
from coattail_stream_job.history.store import open_store


async def load_history(
    config: CoattailConfig,
    *,
    symbol: str,
    start: datetime,
    end: datetime,
    destination: str,
    exchange: str = DEFAULT_EXCHANGE,
    base_url: str | None = None,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    weight_per_minute: int | None = None,
    progress: ProgressReporter | None = None,
) -> LoadStats:
    """Load ``symbol``'s trades on ``exchange`` with ``start <= T < end`` into ``destination``.

    ``symbol`` is the venue's spelling (``BTCUSDT``, ``BTC-USD``); ``start``/``end`` aware UTC.
    ``base_url`` and ``weight_per_minute`` override the connector's ``rest_url`` and
    ``rest_weight_limit_per_minute``; None keeps its settings. See ``HistoryLoader``.
    """
    from coattail_framework.iceberg import to_arrow_schema
    from coattail_framework.schemas import UNIFIED_TRADE_EVENT

    store = open_store(destination, region=config.aws.region, endpoint_url=config.aws.endpoint_url)
    history = open_trade_history(
        config, exchange, symbol=symbol, rest_url=base_url, weight_per_minute=weight_per_minute
    )
    async with history:
        loader = HistoryLoader(
            history,
            store,
            to_arrow_schema(UNIFIED_TRADE_EVENT),
            rows_per_file=rows_per_file,
            progress=progress or default_reporter(),
        )
        return await loader.load(symbol, epoch_ms(start), epoch_ms(end))
