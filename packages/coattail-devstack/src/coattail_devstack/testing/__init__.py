"""The test kit every plugin's and service's suite uses (``coattail-devstack``).

- ``coattail_devstack.testing.fixtures``: a pytest plugin, registered through the ``pytest11``
  entry point (no conftest needed), with a session-scoped local ``spark`` session, an
  in-process moto server (``moto_endpoint``) and fake AWS credentials (``aws_env``).
- ``coattail_devstack.testing.contracts``: ``DetectorContract`` and ``ConnectorContract``,
  the contract tests a plugin's suite subclasses.
- ``run_detector_stream``: run a detector in isolation on lists of events as a STREAM
  (stateful operators only run on streams), one micro-batch per list, and collect its
  output rows and alerts.
- ``run_early_stream``: the same lists through the job's early-query handler (carry
  included), collecting the alerts it would put (``BaseDetector.early_alerts``).
- ``trade``: build a valid ``TradeEvent`` with terse arguments; ``TradeClock``: trades and
  times a number of seconds after one instant.
- ``coattail_devstack.testing.environment``: a child process's environment without AWS
  credentials.

Runs in the pytest process. The stream helpers need PySpark (``coattail-devstack[spark]``)
and are imported on first use; the rest does not.
"""

from __future__ import annotations

from typing import Any

from coattail_devstack.testing.events import TradeClock, trade

_STREAM = ("DetectorRun", "run_detector_stream", "run_early_stream", "write_event_batches")
__all__ = [*_STREAM, "TradeClock", "trade"]


def __getattr__(name: str) -> Any:
    """The stream helpers, imported when first asked for: they need PySpark, the rest does not."""
    if name in _STREAM:
        from coattail_devstack.testing import stream

        return getattr(stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
