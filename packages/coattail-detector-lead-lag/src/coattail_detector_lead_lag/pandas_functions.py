"""The ``applyInPandasWithState`` (streaming) and ``applyInPandas`` (static) functions of MOD-010.

Run in the Spark Python workers, once per instrument: they turn the instrument's trades (a
pandas DataFrame with ``TRADE_COLUMNS``) into ``(leg, state.Trade)`` values, advance the
instrument's ``state.InstrumentState`` to the watermark and return the ``lead_lag`` rows it
wrote. Built on the driver by ``LeadLagDetector.process`` from its settings.

Streaming: the watermark is Spark's (``GroupState.getCurrentWatermarkMs``); the event-time
timeout is set to fire once the watermark reaches the next step end whose window holds a
trade, so an instrument that went silent still has its last windows evaluated while other
instruments move the watermark. Static (reprocessing stored trades): the watermark is the
newest trade time of the whole input minus ``watermark_delay_seconds``, where a stream of the
same trades ends (``coattail_framework.stateful.static_watermark_us``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped]

from coattail_detector_lead_lag.schema import LEAD_LAG
from coattail_detector_lead_lag.state import InstrumentState, Settings, Trade
from coattail_framework.stateful import StateFunction, static_watermark_us, timeout_ms

if TYPE_CHECKING:
    from pyspark.sql.streaming.state import GroupState

TRADE_COLUMNS = ("leg", "event_us", "trade_id", "price")
"""Columns the functions read: ``leg`` (``state.leg_key``), trade time in µs since the epoch (UTC), id, price."""
TIME_COLUMNS = ("window_start", "window_end")


def instrument_trades(frame: Any) -> list[tuple[str, Trade]]:
    """The ``(leg, Trade)`` values of one instrument's pandas rows (``TRADE_COLUMNS``)."""
    columns = [frame[name].tolist() for name in TRADE_COLUMNS]
    return [
        (leg, Trade.of(int(event_us), trade_id if isinstance(trade_id, str) else None, float(price)))
        for leg, event_us, trade_id, price in zip(*columns, strict=True)
    ]


def lead_lag_frame(instrument: str, rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``LEAD_LAG`` rows of one instrument (times as UTC timestamps)."""
    frame = pd.DataFrame(rows, columns=[name for name in LEAD_LAG.fieldNames() if name != "symbol"])
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], unit="us", utc=True)
    frame.insert(2, "symbol", instrument)
    return frame[LEAD_LAG.fieldNames()]


def lead_lag_state_function(settings: Settings) -> StateFunction:
    """The ``applyInPandasWithState`` function: the instrument's windows up to Spark's watermark."""

    def update(key: tuple[Any, ...], batches: Iterable[Any], state: GroupState) -> Iterator[Any]:
        (instrument,) = key
        current = InstrumentState.from_json(state.get[0]) if state.exists else InstrumentState()
        trades = [trade for batch in batches if len(batch) for trade in instrument_trades(batch)]
        watermark_ms = state.getCurrentWatermarkMs()
        rows = current.advance(trades, watermark_ms * 1000, settings.pairs[instrument], settings)
        state.update((current.to_json(),))
        due = current.next_due_us(settings)
        if due is not None:
            state.setTimeoutTimestamp(max(timeout_ms(due), watermark_ms))
        if rows:
            yield lead_lag_frame(instrument, rows)

    return update


def lead_lag_batch_function(settings: Settings, watermark_delay_us: int) -> Callable[[tuple[Any, ...], Any], Any]:
    """The ``applyInPandas`` function for static input: every trade of an instrument at once."""

    def evaluate(key: tuple[Any, ...], frame: Any) -> Any:
        (instrument,) = key
        trades = instrument_trades(frame)
        watermark = static_watermark_us(frame, watermark_delay_us)
        return lead_lag_frame(
            instrument, InstrumentState().advance(trades, watermark, settings.pairs[instrument], settings)
        )

    return evaluate
