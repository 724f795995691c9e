"""MOD-010 lead-lag: which venue's price moves first, per instrument and venue pair (entry point ``lead-lag``).

Importing the package imports nothing heavy: ``metadata`` (the ``DETECTOR_INFO`` published
under ``coattail.detector_info``) is read by processes without PySpark; the names below are
imported on first use.
"""

from __future__ import annotations

from coattail_framework.plugins import lazy_exports

_LAZY = {"LEAD_LAG": "schema", "LeadLagConfig": "config", "LeadLagDetector": "detector"}
__all__ = [*_LAZY]

__getattr__ = lazy_exports(__name__, _LAZY)
