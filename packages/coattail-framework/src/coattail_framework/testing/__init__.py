"""Helpers for plugin and platform tests.

- ``coattail_framework.testing.fixtures``: a pytest plugin with a session-scoped local
  ``spark`` session, an in-process moto server (``moto_endpoint``) and a ``local_config``
  factory. Enable it with ``pytest_plugins = ["coattail_framework.testing.fixtures"]``.
- ``run_detector_stream``: run a detector in isolation on lists of events as a STREAM
  (stateful operators only run on streams), one micro-batch per list, and collect its
  output rows and alerts.
- ``run_early_stream``: the same lists through the job's early-query handler (carry
  included), collecting the alerts it would put (``BaseDetector.early_alerts``).
- ``trade``: build a valid ``TradeEvent`` with terse arguments.
"""

from coattail_framework.testing.events import trade
from coattail_framework.testing.stream import DetectorRun, run_detector_stream, run_early_stream, write_event_batches

__all__ = ["DetectorRun", "run_detector_stream", "run_early_stream", "trade", "write_event_batches"]
