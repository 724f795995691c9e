"""``TradeEvent`` rows as Arrow tables for the history's Parquet files.

The events come from the venue connector's ``TradeHistory.normalize`` (the live path's
normalization), so history and live trades share one schema (``UNIFIED_TRADE_EVENT``).
Pure; runs in the loader's process.

Example::

    table = events_table(events, to_arrow_schema(UNIFIED_TRADE_EVENT))
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

from coattail_framework.events import TradeEvent


def events_table(events: Sequence[TradeEvent], schema: pa.Schema) -> pa.Table:
    """``events`` as an Arrow table of ``schema`` (decimals become doubles, times UTC microseconds)."""
    columns: dict[str, list[Any]] = {}
    for field in schema:
        values = [getattr(event, field.name) for event in events]
        if pa.types.is_floating(field.type):
            values = [float(value) if isinstance(value, Decimal) else value for value in values]
        columns[field.name] = values
    return pa.Table.from_pydict(columns, schema=schema)
