"""Binance REST aggTrade records to ``TradeEvent`` rows: the live path's normalization, reused.

An ``aggTrades`` record (``a, p, q, f, l, T, m, M``) is the websocket ``aggTrade`` payload
without ``e``/``E``/``s``; the connector's ``agg_trade_record_payload`` adds them back and
its pure ``normalize_message`` turns it into the ``TradeEvent`` the live producer emits, so
history and live trades share one schema (``UNIFIED_TRADE_EVENT``). ``trade_id`` is the
aggregate id ``a``; ``ingestion_timestamp`` is when the loader received the page (UTC).
Pure functions; run in the loader's process.

Example::

    >>> from datetime import datetime, timezone
    >>> record = {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781,
    ...           "T": 1498793709153, "m": True, "M": True}
    >>> event = normalize_record(record, "BNBBTC", datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> event.event_id, event.side, event.timestamp.isoformat()
    ('binance:BNBBTC:26129', 'sell', '2017-06-30T03:35:09.153000+00:00')
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from coattail_connector_binance.backfill import agg_trade_record_payload
from coattail_connector_binance.normalize import normalize_message
from coattail_framework.events import TradeEvent

VENUE = "binance"
"""The venue id of Binance spot in the configuration and in every ``event_id``."""


def record_id(record: object) -> int | None:
    """The aggregate id ``a`` of a record, or None when it has no valid one."""
    if not isinstance(record, dict):
        return None
    value = record.get("a")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def record_time_ms(record: object) -> int | None:
    """The trade time ``T`` of a record (ms since the epoch, UTC), or None when invalid."""
    if not isinstance(record, dict):
        return None
    value = record.get("T")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def normalize_record(record: dict[str, Any], symbol: str, received_at: datetime) -> TradeEvent:
    """The ``TradeEvent`` of one aggTrade record; ``ValueError`` names the invalid field."""
    (event,) = normalize_message(agg_trade_record_payload(record, symbol), exchange=VENUE, received_at=received_at)
    return event


def events_table(events: Sequence[TradeEvent], schema: pa.Schema) -> pa.Table:
    """``events`` as an Arrow table of ``schema`` (decimals become doubles, times UTC microseconds)."""
    columns: dict[str, list[Any]] = {}
    for field in schema:
        values = [getattr(event, field.name) for event in events]
        if pa.types.is_floating(field.type):
            values = [float(value) if isinstance(value, Decimal) else value for value in values]
        columns[field.name] = values
    return pa.Table.from_pydict(columns, schema=schema)
