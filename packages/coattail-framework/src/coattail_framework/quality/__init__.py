"""Data quality: rules over trade rows, the checker that applies them, the dead-letter writer."""

from coattail_framework.quality.checker import DataQualityChecker, QualityMetrics
from coattail_framework.quality.dlq import write_dead_letters
from coattail_framework.quality.rules import QualityContext, QualityRule, default_rules

__all__ = [
    "DataQualityChecker",
    "QualityContext",
    "QualityMetrics",
    "QualityRule",
    "default_rules",
    "write_dead_letters",
]
