"""Helpers of detectors' ``applyInPandasWithState`` functions: pure, no Spark.

Run in Spark's Python workers (the state functions of MOD-001, MOD-004, MOD-005, MOD-008,
MOD-010) and in tests. Times are microseconds since the epoch (UTC) unless named ``_ms``.
"""

from __future__ import annotations


def timeout_ms(event_us: int) -> int:
    """The event-time timeout (ms) that fires once the watermark reaches ``event_us``.

    Spark fires an event-time timeout when the watermark (ms) is strictly greater than it; an
    event at ``event_us`` is due when ``watermark_ms * 1000 >= event_us``, so the timeout is
    one millisecond before the first watermark that makes it due.

    >>> timeout_ms(60_000_000), timeout_ms(60_000_001)
    (59999, 60000)
    """
    return -(-event_us // 1000) - 1
