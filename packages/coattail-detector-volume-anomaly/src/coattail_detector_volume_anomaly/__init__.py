"""Coat Tail Capital detector MOD-001 volume-anomaly (entry point ``volume-anomaly``).

Per (exchange, symbol), the quote volume of each tumbling event-time window is compared
with the same key's previous windows (quiet ones as zeros); a z-score above the configured
bound raises a ``volume_spike`` alert. See ``detector.VolumeAnomalyDetector``.
"""

from coattail_detector_volume_anomaly.config import VolumeAnomalySettings
from coattail_detector_volume_anomaly.detector import VolumeAnomalyDetector
from coattail_detector_volume_anomaly.schema import VOLUME_AGGREGATES

__all__ = ["VOLUME_AGGREGATES", "VolumeAnomalyDetector", "VolumeAnomalySettings"]
