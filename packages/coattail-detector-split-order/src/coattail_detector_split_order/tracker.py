"""The ``applyInPandasWithState`` (streaming) and ``applyInPandas`` (static) functions of MOD-005.

Run in the Spark Python workers, once per (exchange, symbol, side): they turn the key's
trades (a pandas DataFrame with ``FILL_COLUMNS``) into MOD-002's ``Fill`` values, advance the
key's ``state.KeyState`` to the watermark and return the ``split_order_sequences`` rows it
wrote. Built on the driver by ``SplitOrderDetector.process`` from its settings.

Streaming: the watermark is Spark's (``GroupState.getCurrentWatermarkMs``); the event-time
timeout is set to fire once the watermark makes the key's next event due (a pending order, or
a sequence's close), so a sequence closes while its key is silent. Static (reprocessing stored
trades): the watermark is the newest trade time of the whole input minus
``watermark_delay_seconds`` (``coattail_framework.stateful.static_watermark_us``), where a stream of
the same trades ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped]

from coattail_detector_split_order.schema import SPLIT_ORDER_SEQUENCES
from coattail_detector_split_order.state import KeyState, Settings
from coattail_detector_whale.fills import Fill
from coattail_framework.stateful import StateFunction, static_watermark_us, timeout_ms

if TYPE_CHECKING:
    from pyspark.sql.streaming.state import GroupState

FILL_COLUMNS = ("event_us", "trade_id", "price", "quantity", "quote_volume", "taker_order_id")
"""Columns the functions read; ``event_us`` is the trade time in µs since the epoch (UTC)."""
TIME_COLUMNS = ("sequence_start", "sequence_end")
KEY_NAMES = ("exchange", "symbol")


def _none(value: Any) -> Any:
    """pandas' missing values (NaN, NaT, None, pd.NA) as None; anything else unchanged."""
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else value


def key_fills(side: str, frame: Any) -> list[Fill]:
    """The ``Fill`` values of one key's pandas rows (``FILL_COLUMNS``), all of taker side ``side``."""
    columns = [frame[name].tolist() for name in FILL_COLUMNS]
    return [
        Fill(int(event_us), side, _none(taker), _none(trade_id), float(price), float(quantity), _none(quote))
        for event_us, trade_id, price, quantity, quote, taker in zip(*columns, strict=True)
    ]


def sequences_frame(exchange: str, symbol: str, rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``SPLIT_ORDER_SEQUENCES`` rows of one key (times as UTC timestamps)."""
    frame = pd.DataFrame(rows, columns=[n for n in SPLIT_ORDER_SEQUENCES.fieldNames() if n not in KEY_NAMES])
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], unit="us", utc=True)
    frame.insert(0, "symbol", symbol)
    frame.insert(0, "exchange", exchange)
    return frame[SPLIT_ORDER_SEQUENCES.fieldNames()]


def sequence_state_function(settings: Settings) -> StateFunction:
    """The ``applyInPandasWithState`` function: the key's events up to Spark's watermark."""

    def update(key: tuple[Any, ...], batches: Iterable[Any], state: GroupState) -> Iterator[Any]:
        exchange, symbol, side = key
        current = KeyState.from_json(state.get[0]) if state.exists else KeyState()
        fills = [fill for batch in batches if len(batch) for fill in key_fills(side, batch)]
        rows = current.advance(fills, state.getCurrentWatermarkMs() * 1000, settings)
        state.update((current.to_json(),))
        due = current.next_event_us(settings)
        if due is not None:
            state.setTimeoutTimestamp(max(timeout_ms(due), state.getCurrentWatermarkMs()))
        if rows:
            yield sequences_frame(exchange, symbol, rows)

    return update


def sequence_batch_function(settings: Settings, watermark_delay_us: int) -> Callable[[tuple[Any, ...], Any], Any]:
    """The ``applyInPandas`` function for static input: every trade of a key at once."""

    def sequences(key: tuple[Any, ...], frame: Any) -> Any:
        exchange, symbol, side = key
        watermark = static_watermark_us(frame, watermark_delay_us)
        rows = KeyState().advance(key_fills(side, frame), watermark, settings)
        return sequences_frame(exchange, symbol, rows)

    return sequences
