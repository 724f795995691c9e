"""The ``applyInPandasWithState`` (streaming) and ``applyInPandas`` (static) functions of MOD-004.

Run in the Spark Python workers, once per (exchange, symbol): they turn the key's fills (a
pandas DataFrame with ``FILL_COLUMNS``) into MOD-002's ``Fill`` values, advance the key's
``state.KeyState`` and return the ``flow_imbalance`` rows of the windows it closed. Built on
the driver by ``FlowImbalanceDetector.process`` from its settings.

Streaming: the watermark is Spark's (``GroupState.getCurrentWatermarkMs``); the event-time
timeout is set to fire once the watermark reaches the key's next due instant (its oldest
pending fill or its open window's end), so a key that went silent still closes its windows
while other keys move the watermark. Static (reprocessing stored trades): every fill is final
and every window closes, as in MOD-001.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped]

from coattail_detector_flow_imbalance.schema import FLOW_IMBALANCE
from coattail_detector_flow_imbalance.state import KeyState, Settings
from coattail_detector_whale.fills import Fill
from coattail_framework.stateful import StateFunction, timeout_ms

if TYPE_CHECKING:
    from pyspark.sql.streaming.state import GroupState

FILL_COLUMNS = Fill._fields
"""Columns the functions read, named as ``Fill``'s fields: ``event_us`` is the trade time in µs
since the epoch (UTC); ``quote_volume`` is never null (``process`` fills in price x quantity)."""
TIME_COLUMNS = ("window_start", "window_end")


def key_fills(frame: Any) -> list[Fill]:
    """The ``Fill`` values of one key's pandas rows (null ids arrive as None)."""
    return [Fill(*values) for values in zip(*(frame[name].tolist() for name in FILL_COLUMNS), strict=True)]


def flows_frame(exchange: str, symbol: str, rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``FLOW_IMBALANCE`` rows of one key (times as UTC timestamps)."""
    frame = pd.DataFrame(rows, columns=[n for n in FLOW_IMBALANCE.fieldNames() if n not in ("exchange", "symbol")])
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], unit="us", utc=True)
    frame.insert(0, "symbol", symbol)
    frame.insert(0, "exchange", exchange)
    return frame


def flow_state_function(settings: Settings) -> StateFunction:
    """The ``applyInPandasWithState`` function: the key's fills and windows up to Spark's watermark."""

    def update(key: tuple[Any, ...], batches: Iterable[Any], state: GroupState) -> Iterator[Any]:
        exchange, symbol = key
        current = KeyState.from_json(state.get[0]) if state.exists else KeyState()
        fills = [fill for batch in batches if len(batch) for fill in key_fills(batch)]
        rows = current.advance(fills, state.getCurrentWatermarkMs() * 1000, settings)
        state.update((current.to_json(),))
        due = current.next_due_us(settings)
        if due is not None:
            state.setTimeoutTimestamp(timeout_ms(due))
        if rows:
            yield flows_frame(exchange, symbol, rows)

    return update


def flow_batch_function(settings: Settings) -> Callable[[tuple[Any, ...], Any], Any]:
    """The ``applyInPandas`` function for static input: every fill of a key at once, every window closed."""

    def flows(key: tuple[Any, ...], frame: Any) -> Any:
        exchange, symbol = key
        return flows_frame(exchange, symbol, KeyState().advance(key_fills(frame), None, settings))

    return flows
