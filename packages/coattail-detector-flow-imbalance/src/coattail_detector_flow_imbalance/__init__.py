"""MOD-004 flow-imbalance: taker-order flow imbalance per window (entry point ``flow-imbalance``).

Per (exchange, symbol), the taker orders of each tumbling event-time window give buy and sell
notionals, an imbalance and a net flow; the net flow is compared with the key's previous
windows (quiet ones as zeros), and a one-sided window far outside them raises a
``flow_imbalance`` alert. See ``detector.FlowImbalanceDetector``.

Importing the package imports nothing heavy: ``metadata`` (the ``DETECTOR_INFO`` published
under ``coattail.detector_info``) is read by processes without PySpark; the names below are
imported on first use.
"""

from __future__ import annotations

from coattail_framework.plugins import lazy_exports

_LAZY = {"FLOW_IMBALANCE": "schema", "FlowImbalanceConfig": "config", "FlowImbalanceDetector": "detector"}
__all__ = [*_LAZY]

__getattr__ = lazy_exports(__name__, _LAZY)
