"""Coat Tail Capital connector for Coinbase Exchange (entry point ``coinbase``).

``CoinbaseConnector`` streams normalized trades of the ``matches`` channel with gap
backfill over REST; ``CoinbaseSimulator`` serves recorded frames on 127.0.0.1 with the
exchange's wire protocol and fault injection; ``normalize_match`` is the pure mapping.
"""

from coattail_connector_coinbase.connector import CoinbaseConnector, CoinbaseStats
from coattail_connector_coinbase.normalize import normalize_match, normalize_rest_trade
from coattail_connector_coinbase.settings import BackoffSettings, CoinbaseSettings
from coattail_connector_coinbase.simulator import CoinbaseSimulator, Faults

__version__ = "0.1.0"

__all__ = [
    "BackoffSettings",
    "CoinbaseConnector",
    "CoinbaseSettings",
    "CoinbaseSimulator",
    "CoinbaseStats",
    "Faults",
    "normalize_match",
    "normalize_rest_trade",
]
