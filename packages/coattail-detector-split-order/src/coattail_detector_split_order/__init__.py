"""MOD-005 split-order: one actor splitting a large order into equal clips (entry point ``split-order``).

Importing the package imports nothing heavy: ``metadata`` (the ``DETECTOR_INFO`` published
under ``coattail.detector_info``) is read by processes without PySpark; the names below are
imported on first use.
"""

from __future__ import annotations

from coattail_framework.plugins import lazy_exports

_LAZY = {"SPLIT_ORDER_SEQUENCES": "schema", "SplitOrderConfig": "config", "SplitOrderDetector": "detector"}
__all__ = [*_LAZY]

__getattr__ = lazy_exports(__name__, _LAZY)
