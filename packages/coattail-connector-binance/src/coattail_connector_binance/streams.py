"""Binance stream names and websocket URLs: which streams go on which connection.

Pure functions, used by the connector (producer process) and the simulator. One stream
connects to ``{base}/ws/{stream}``; several to the combined endpoint
``{base}/stream?streams=a/b`` (messages then arrive wrapped in ``{"stream", "data"}``).
Binance allows at most 1024 streams per connection, so more are split across connections.

Example::

    >>> stream_names(["BTCUSDT", "ETHUSDT"], "trade")
    ['btcusdt@trade', 'ethusdt@trade']
    >>> stream_url("wss://stream.binance.com:9443", ["btcusdt@trade", "ethusdt@trade"])
    'wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade'
"""

from __future__ import annotations

from collections.abc import Sequence

from coattail_connector_binance.settings import MAX_STREAMS_PER_CONNECTION, StreamKind


def stream_name(symbol: str, stream: StreamKind) -> str:
    """``BTCUSDT`` + ``trade`` -> ``btcusdt@trade`` (stream names are lower case)."""
    return f"{symbol.lower()}@{stream}"


def stream_names(symbols: Sequence[str], stream: StreamKind) -> list[str]:
    """The stream name of each symbol, in order, without duplicates."""
    return list(dict.fromkeys(stream_name(symbol, stream) for symbol in symbols))


def symbol_of_stream(name: str) -> str:
    """``btcusdt@trade`` -> ``BTCUSDT``."""
    return name.split("@", 1)[0].upper()


def stream_url(base_url: str, streams: Sequence[str]) -> str:
    """The websocket URL serving ``streams`` on one connection."""
    if not streams:
        raise ValueError("a Binance connection needs at least one stream; configure at least one symbol")
    if len(streams) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(
            f"{len(streams)} streams on one connection exceed Binance's limit of {MAX_STREAMS_PER_CONNECTION}; "
            "split them with plan_connections()"
        )
    base = base_url.rstrip("/")
    if len(streams) == 1:
        return f"{base}/ws/{streams[0]}"
    return f"{base}/stream?streams={'/'.join(streams)}"


def plan_connections(streams: Sequence[str], per_connection: int = MAX_STREAMS_PER_CONNECTION) -> list[list[str]]:
    """Split streams into groups of at most ``per_connection`` (<= 1024), in order."""
    if not 1 <= per_connection <= MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"per_connection must be between 1 and {MAX_STREAMS_PER_CONNECTION}, got {per_connection}")
    unique = list(dict.fromkeys(streams))
    return [unique[start : start + per_connection] for start in range(0, len(unique), per_connection)]
