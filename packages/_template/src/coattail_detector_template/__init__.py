"""MOD-999 template: single trades of a large quote notional (entry point ``template``).

The package a new detector is copied from (see README.md). Importing it imports nothing
heavy: ``metadata`` (the ``DETECTOR_INFO`` published under ``coattail.detector_info``) is
read by processes without PySpark; the names below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"LARGE_TRADES": "schema", "TemplateConfig": "config", "TemplateDetector": "detector"}
__all__ = [*_LAZY]


def __getattr__(name: str) -> Any:
    """The detector, its config model and its schema, imported when first asked for (PySpark)."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"coattail_detector_template.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
