"""The streaming job: Kinesis -> parse -> data quality -> raw table and DLQ -> detectors -> router."""

from coattail_framework.pipeline.listener import PipelineListener, PipelineStats
from coattail_framework.pipeline.parse import parse_trades
from coattail_framework.pipeline.runner import PipelineRunner

__all__ = ["PipelineListener", "PipelineRunner", "PipelineStats", "parse_trades"]
