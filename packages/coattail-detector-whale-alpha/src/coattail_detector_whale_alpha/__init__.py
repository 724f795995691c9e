"""MOD-008 whale-alpha: markouts of whale orders and their cohorts (entry point ``whale-alpha``).

Importing the package imports nothing heavy: ``metadata`` (the ``DETECTOR_INFO`` published
under ``coattail.detector_info``) is read by processes without PySpark; the names below are
imported on first use.
"""

from __future__ import annotations

from coattail_framework.plugins import lazy_exports

_LAZY = {"WHALE_MARKOUTS": "schema", "WhaleAlphaConfig": "config", "WhaleAlphaDetector": "detector"}
__all__ = [*_LAZY]

__getattr__ = lazy_exports(__name__, _LAZY)
