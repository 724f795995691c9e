"""Helpers of detectors' ``applyInPandasWithState`` functions: pure, no Spark.

Run in Spark's Python workers (the state functions of MOD-001, MOD-004, MOD-005, MOD-008,
MOD-010) and in tests. Times are microseconds since the epoch (UTC) unless named ``_ms``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql.streaming.state import GroupState

StateFunction = Callable[[tuple[Any, ...], Iterable[Any], "GroupState"], Iterator[Any]]
"""An ``applyInPandasWithState`` function: (key, the key's pandas batches, its state) -> output frames."""
BatchFunction = Callable[[tuple[Any, ...], Any], Any]
"""An ``applyInPandas`` function: (key, every row of the key as one pandas frame) -> output frame."""


def timeout_ms(event_us: int) -> int:
    """The event-time timeout (ms) that fires once the watermark reaches ``event_us``.

    Spark fires an event-time timeout when the watermark (ms) is strictly greater than it; an
    event at ``event_us`` is due when ``watermark_ms * 1000 >= event_us``, so the timeout is
    one millisecond before the first watermark that makes it due.

    >>> timeout_ms(60_000_000), timeout_ms(60_000_001)
    (59999, 60000)
    """
    return -(-event_us // 1000) - 1


NEWEST_US_COLUMN = "newest_us"
"""Static input: the newest trade time of the whole input (µs), on every row (``keyed_state.keyed_state``)."""


def static_watermark_us(frame: Any, delay_us: int) -> int:
    """Where a stream of the same static input ends: its newest trade time minus the delay (0 when empty).

    ``frame``: one key's pandas rows carrying ``NEWEST_US_COLUMN``.
    """
    return int(frame[NEWEST_US_COLUMN].iloc[0]) - delay_us if len(frame) else 0
