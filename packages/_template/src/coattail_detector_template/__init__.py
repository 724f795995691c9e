"""MOD-999 template: single trades of a large quote notional (entry point ``template``).

The package a new detector is copied from (see README.md). Importing it imports nothing
heavy: ``metadata`` (the ``DETECTOR_INFO`` published under ``coattail.detector_info``) is
read by processes without PySpark; the names below are imported on first use.
"""

from __future__ import annotations

from coattail_framework.plugins import lazy_exports

_LAZY = {"LARGE_TRADES": "schema", "TemplateConfig": "config", "TemplateDetector": "detector"}
__all__ = [*_LAZY]

__getattr__ = lazy_exports(__name__, _LAZY)
