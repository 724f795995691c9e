"""The ``applyInPandasWithState`` (streaming) and ``applyInPandas`` (static) functions of MOD-008.

Run in the Spark Python workers, once per (exchange, symbol): they turn the key's trades (a
pandas DataFrame with ``TRADE_COLUMNS``) into ``state.Trade`` values, advance the key's
``state.KeyState`` to the watermark and return the ``whale_markouts`` rows it wrote. Built on
the driver by ``WhaleAlphaDetector.process`` from its settings.

Streaming: the watermark is Spark's (``GroupState.getCurrentWatermarkMs``); the event-time
timeout is set to fire once the watermark makes the key's next event due, so markouts resolve
while the key is silent. Static (reprocessing stored trades): the watermark is the newest trade
time of the whole input minus ``watermark_delay_seconds``, where a stream of the same trades
ends (``coattail_framework.stateful.static_watermark_us``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped]

from coattail_detector_whale_alpha.schema import WHALE_MARKOUTS
from coattail_detector_whale_alpha.state import KeyState, Settings, Trade
from coattail_framework.stateful import StateFunction, static_watermark_us, timeout_ms

if TYPE_CHECKING:
    from pyspark.sql.streaming.state import GroupState

TRADE_COLUMNS = ("event_us", "trade_id", "price", "quantity", "quote_volume", "side", "taker_order_id")
"""Columns the functions read; ``event_us`` is the trade time in µs since the epoch (UTC)."""
TIME_COLUMNS = ("order_time", "horizon_end", "exit_time")


def _none(value: Any) -> Any:
    """pandas' missing values (NaN, NaT, None, pd.NA) as None; anything else unchanged."""
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else value


def key_trades(frame: Any) -> list[Trade]:
    """The ``Trade`` values of one key's pandas rows (``TRADE_COLUMNS``)."""
    columns = [frame[name].tolist() for name in TRADE_COLUMNS]
    return [
        Trade.of(int(event_us), _none(trade_id), float(price), float(quantity), _none(quote), _none(side), _none(taker))
        for event_us, trade_id, price, quantity, quote, side, taker in zip(*columns, strict=True)
    ]


def markouts_frame(exchange: str, symbol: str, rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``WHALE_MARKOUTS`` rows of one key (times as UTC timestamps)."""
    frame = pd.DataFrame(rows, columns=[n for n in WHALE_MARKOUTS.fieldNames() if n not in ("exchange", "symbol")])
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], unit="us", utc=True)
    frame.insert(0, "symbol", symbol)
    frame.insert(0, "exchange", exchange)
    return frame[WHALE_MARKOUTS.fieldNames()]


def markout_state_function(settings: Settings) -> StateFunction:
    """The ``applyInPandasWithState`` function: the key's events up to Spark's watermark."""

    def update(key: tuple[Any, ...], batches: Iterable[Any], state: GroupState) -> Iterator[Any]:
        exchange, symbol = key
        current = KeyState.from_json(state.get[0]) if state.exists else KeyState()
        trades = [trade for batch in batches if len(batch) for trade in key_trades(batch)]
        rows = current.advance(trades, state.getCurrentWatermarkMs() * 1000, settings)
        state.update((current.to_json(),))
        due = current.next_event_us(settings)
        if due is not None:
            state.setTimeoutTimestamp(max(timeout_ms(due), state.getCurrentWatermarkMs()))
        if rows:
            yield markouts_frame(exchange, symbol, rows)

    return update


def markout_batch_function(settings: Settings, watermark_delay_us: int) -> Callable[[tuple[Any, ...], Any], Any]:
    """The ``applyInPandas`` function for static input: every trade of a key at once."""

    def markouts(key: tuple[Any, ...], frame: Any) -> Any:
        exchange, symbol = key
        trades = key_trades(frame)
        current = KeyState()
        watermark = static_watermark_us(frame, watermark_delay_us)
        return markouts_frame(exchange, symbol, current.advance(trades, watermark, settings))

    return markouts
