"""MOD-003 spread: one instrument's VWAP compared across exchanges (entry point ``spread``)."""

from coattail_detector_spread.config import SpreadConfig
from coattail_detector_spread.detector import SpreadDetector
from coattail_detector_spread.schema import EXCHANGE_SPREADS

__all__ = ["EXCHANGE_SPREADS", "SpreadConfig", "SpreadDetector"]
