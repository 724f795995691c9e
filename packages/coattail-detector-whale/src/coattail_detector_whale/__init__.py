"""MOD-002 whale: large taker orders rebuilt from their fills (entry point ``whale``)."""

from coattail_detector_whale.config import WhaleConfig
from coattail_detector_whale.detector import WhaleDetector
from coattail_detector_whale.schema import WHALE_TRADES

__all__ = ["WHALE_TRADES", "WhaleConfig", "WhaleDetector"]
