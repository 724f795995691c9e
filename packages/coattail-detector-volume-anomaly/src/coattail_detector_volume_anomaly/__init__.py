"""Coat Tail Capital detector MOD-001 volume-anomaly (entry point ``volume-anomaly``).

Per (exchange, symbol), the quote volume of each tumbling event-time window is compared
with the same key's previous windows (quiet ones as zeros); a z-score above the configured
bound raises a ``volume_spike`` alert. See ``detector.VolumeAnomalyDetector``.

Importing the package imports nothing heavy: ``metadata`` (the ``DETECTOR_INFO`` published
under ``coattail.detector_info``) is read by processes without PySpark; the names below are
imported on first use.
"""

from __future__ import annotations

from coattail_framework.plugins import lazy_exports

_LAZY = {"VOLUME_AGGREGATES": "schema", "VolumeAnomalyConfig": "config", "VolumeAnomalyDetector": "detector"}
__all__ = [*_LAZY]

__getattr__ = lazy_exports(__name__, _LAZY)
