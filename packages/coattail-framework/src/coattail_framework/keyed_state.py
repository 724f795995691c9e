"""The plan every stateful detector builds: event-time rows per key into one pandas state function.

MOD-001, MOD-004, MOD-005, MOD-008 and MOD-010 each run their windows or orders in a pure
Python state machine keyed by an instrument. The Spark around it is the same and lives here:
a watermark on ``timestamp``, the key and value columns plus ``event_us`` (the trade time in
µs since the epoch, UTC), then ``applyInPandasWithState`` with an event-time timeout on a
stream, or ``applyInPandas`` on static input (reprocessing stored trades), where
``applyInPandasWithState`` is not available. Builds plans on the driver; the functions run in
the Spark Python workers. Runs on PySpark 3.5 and 4.x.

Example::

    rows = event_rows(trades, delay_ms=2_000, keys=("exchange", "symbol"), columns=("price", "quantity"))
    output = keyed_state(rows, ("exchange", "symbol"), streaming=trades.isStreaming,
                         state_function=update, batch_function=batch, output_schema=OUT, state_schema=STATE)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming.state import GroupStateTimeout

from coattail_framework.schemas import EVENT_TIME_COLUMN
from coattail_framework.stateful import NEWEST_US_COLUMN, BatchFunction, StateFunction

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


def watermark_ms(delay_seconds: float) -> int:
    """A ``watermark_delay_seconds`` setting in whole milliseconds (Spark's watermark unit)."""
    return round(delay_seconds * 1000)


def event_rows(frame: DataFrame, *, delay_ms: int, keys: Sequence[str], columns: Sequence[str | Column]) -> DataFrame:
    """``frame`` watermarked ``delay_ms`` behind its newest trade: ``keys``, event time, ``event_us``, ``columns``.

    ``timestamp`` stays so Spark drops a row at or before the previous micro-batch's watermark
    before the state function sees it; the functions read ``event_us``.
    """
    return frame.withWatermark(EVENT_TIME_COLUMN, f"{delay_ms} milliseconds").select(
        *keys, EVENT_TIME_COLUMN, F.unix_micros(F.col(EVENT_TIME_COLUMN)).alias("event_us"), *columns
    )


def keyed_state(
    rows: DataFrame,
    keys: Sequence[str],
    *,
    streaming: bool,
    state_function: StateFunction,
    batch_function: BatchFunction,
    output_schema: StructType,
    state_schema: StructType,
    static_newest: bool = False,
) -> DataFrame:
    """The detector's output rows: ``state_function`` per key on a stream, ``batch_function`` on static input.

    Streaming: append mode, an event-time timeout (the function sets it to its next due event).
    Static: every row of a key at once; with ``static_newest`` each row also carries
    ``NEWEST_US_COLUMN``, the newest ``event_us`` of the whole input, so the function can put
    its watermark where a stream of the same trades would end (``stateful.static_watermark_us``):
    the watermark is global, not per key.
    """
    if streaming:
        return rows.groupBy(*keys).applyInPandasWithState(
            state_function,
            outputStructType=output_schema,
            stateStructType=state_schema,
            outputMode="append",
            timeoutConf=GroupStateTimeout.EventTimeTimeout,
        )
    if static_newest:
        rows = rows.crossJoin(F.broadcast(rows.agg(F.max("event_us").alias(NEWEST_US_COLUMN))))
    return rows.groupBy(*keys).applyInPandas(batch_function, schema=output_schema)
