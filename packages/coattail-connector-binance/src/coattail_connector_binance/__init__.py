"""Binance connector plugin for Coat Tail Capital: trade streams, gap backfill, local simulator.

Example::

    from coattail_connector_binance import BinanceConnector

    connector = BinanceConnector(settings={"symbols": ["BTCUSDT"]})
    async for event in connector.connect():
        print(event.to_json())
"""

from coattail_connector_binance.connector import BinanceConnector, UnrecoveredGap
from coattail_connector_binance.normalize import message_kind, normalize_message
from coattail_connector_binance.ratelimit import SlidingWindowLimiter
from coattail_connector_binance.settings import BinanceSettings
from coattail_connector_binance.simulator import BinanceSimulator
from coattail_connector_binance.streams import plan_connections, stream_names, stream_url

__all__ = [
    "BinanceConnector",
    "BinanceSettings",
    "BinanceSimulator",
    "SlidingWindowLimiter",
    "UnrecoveredGap",
    "message_kind",
    "normalize_message",
    "plan_connections",
    "stream_names",
    "stream_url",
]
