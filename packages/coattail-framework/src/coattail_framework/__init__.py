"""Coat Tail Capital plugin framework.

The contracts plugins implement (``BaseConnector``, ``BaseDetector``, ``TradeEvent``,
``ExchangeSimulator``), the registry that finds them through entry points, the
configuration, the Spark schemas and the data-quality rules. Modules that need PySpark
(``schemas``, ``alerts``, ``quality``, ``pipeline``) import it; the rest do not. The local stack
and the test kit are the ``coattail-devstack`` distribution (ADR-037).
"""

from coattail_framework.config import CoattailConfig, ConfigLoader, SymbolCatalog, load_config
from coattail_framework.connector import BaseConnector, ConnectorStats
from coattail_framework.detector import BaseDetector
from coattail_framework.errors import CoattailError, ConfigError, PluginError
from coattail_framework.events import TradeEvent
from coattail_framework.registry import CONNECTOR_GROUP, DETECTOR_GROUP, ModuleRegistry
from coattail_framework.simulator import ExchangeSimulator

__version__ = "0.1.0"

__all__ = [
    "CONNECTOR_GROUP",
    "DETECTOR_GROUP",
    "BaseConnector",
    "BaseDetector",
    "CoattailConfig",
    "CoattailError",
    "ConfigError",
    "ConfigLoader",
    "ConnectorStats",
    "ExchangeSimulator",
    "ModuleRegistry",
    "PluginError",
    "SymbolCatalog",
    "TradeEvent",
    "load_config",
]
