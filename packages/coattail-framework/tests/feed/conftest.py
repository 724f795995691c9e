"""Fixtures of the feed tests: an append-only ``raw_trades`` table on a fresh SQLite catalog, and commits to it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.table import Table

from coattail_framework.config.model import AwsConfig, CoattailConfig, IcebergConfig, StorageConfig
from coattail_framework.iceberg import DEFAULT_TABLE_PROPERTIES, ensure_table, open_catalog, to_arrow_schema
from coattail_framework.pipeline.ingest import RAW_TRADES_PARTITION, RAW_TRADES_TABLE
from coattail_framework.schemas import UNIFIED_TRADE_EVENT

T0 = datetime(2024, 8, 8, 23, 0, tzinfo=UTC)
Commit = Callable[[list[str]], None]
"""Appends one commit holding one trade per event id (trade time: T0 + the id's number in seconds)."""


@pytest.fixture
def feed_config(tmp_path: Path) -> CoattailConfig:
    """A configuration whose catalog, warehouse and checkpoints are under ``tmp_path`` (no AWS needed)."""
    return CoattailConfig(
        aws=AwsConfig(),
        iceberg=IcebergConfig(uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=str(tmp_path / "warehouse")),
        storage=StorageConfig(raw_zone=str(tmp_path / "raw"), checkpoint_root=str(tmp_path / "checkpoints")),
    )


RawTrades = Callable[..., Table]
"""The configuration's ``raw_trades`` table as committed now, created like the sink creates it (plus the
keyword arguments as table properties, which apply only when it is created)."""


@pytest.fixture
def raw_trades(feed_config: CoattailConfig) -> RawTrades:
    def load(**properties: str) -> Table:
        catalog = open_catalog(feed_config.iceberg, feed_config.aws)
        return ensure_table(
            catalog,
            (feed_config.iceberg.database, RAW_TRADES_TABLE),
            UNIFIED_TRADE_EVENT,
            RAW_TRADES_PARTITION,
            {**DEFAULT_TABLE_PROPERTIES, **properties},
        )

    return load


def trade_rows(event_ids: list[str]) -> pa.Table:
    """One valid trade per id ``"<n>"``: binance BTCUSDT, trade time T0 + n seconds."""
    rows = [
        {
            "event_id": f"binance:BTCUSDT:{n}",
            "exchange": "binance",
            "symbol": "BTCUSDT",
            "price": 60_000.0,
            "quantity": 0.5,
            "quote_volume": 30_000.0,
            "side": "buy",
            "timestamp": T0 + timedelta(seconds=int(n)),
            "ingestion_timestamp": T0 + timedelta(seconds=int(n), milliseconds=300),
            "trade_id": n,
            "taker_order_id": None,
        }
        for n in event_ids
    ]
    return pa.Table.from_pylist(rows, schema=to_arrow_schema(UNIFIED_TRADE_EVENT))


@pytest.fixture
def commit(raw_trades: RawTrades) -> Commit:
    """Appends one commit to ``raw_trades`` (created on first use), as ingest would."""

    def append(event_ids: list[str]) -> None:
        raw_trades().append(trade_rows(event_ids), snapshot_properties={"coattail.writer": "ingest"})

    return append
