"""MOD-001 volume-anomaly: per-minute quote volume of each (exchange, symbol) against its last hour.

``process`` builds one stateful streaming plan on the driver: valid trades -> watermark
on ``timestamp`` (``watermark_delay_seconds``) -> one ``applyInPandasWithState`` per
(exchange, symbol) with an event-time timeout, which does both the tumbling windows and
the rolling baseline (``windows.KeyState``). A windowed aggregation cannot feed
``applyInPandasWithState`` in the same query, so the windowing lives in the state
function; this runs on PySpark 3.5 and 4.x alike. The output works in APPEND mode: each
window is emitted once, when the watermark passes its end. ``build_alerts`` turns each
micro-batch of output rows into ``volume_spike`` alerts (``alerts``).

Example::

    detector = VolumeAnomalyDetector()
    detector.configure(config)               # validates modules.volume-anomaly
    aggregates = detector.process(valid_trades)
    query = aggregates.writeStream.outputMode("append").foreachBatch(sink).start()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pyspark.sql import DataFrame

from coattail_detector_volume_anomaly.alerts import volume_spike_alerts
from coattail_detector_volume_anomaly.config import VolumeAnomalyConfig
from coattail_detector_volume_anomaly.metadata import DETECTOR_INFO
from coattail_detector_volume_anomaly.quality import usable_trades, volume_quality_rules
from coattail_detector_volume_anomaly.schema import VOLUME_AGGREGATES, VOLUME_STATE
from coattail_detector_volume_anomaly.windows import volume_batch_function, volume_state_function
from coattail_framework.detector import BaseDetector
from coattail_framework.keyed_state import event_rows, keyed_state, watermark_ms
from coattail_framework.partitioning import day
from coattail_framework.quality.rules import QualityRule

KEY_COLUMNS = ("exchange", "symbol")


class VolumeAnomalyDetector(BaseDetector[VolumeAnomalyConfig]):
    """Quote volume per tumbling window and its z-score against the key's rolling baseline."""

    config_model: ClassVar[type[VolumeAnomalyConfig]] = VolumeAnomalyConfig
    info = DETECTOR_INFO
    module_id = DETECTOR_INFO.module_id
    module_name = DETECTOR_INFO.module_name
    alert_types = DETECTOR_INFO.alert_type_names
    output_table = "volume_aggregates"
    output_schema = VOLUME_AGGREGATES
    partition_spec = (day("window_start"),)

    def quality_rules(self) -> Sequence[QualityRule]:
        """Exchange, taker side and a positive quote volume must be present (see ``quality``)."""
        return volume_quality_rules()

    def process(self, events: DataFrame) -> DataFrame:
        """``VOLUME_AGGREGATES`` rows of ``events``.

        Streaming: windows are emitted as the watermark (newest event time seen minus
        ``watermark_delay_seconds``) passes their end; Spark drops trades at or before the
        previous micro-batch's watermark before they reach the state, so a trade never
        lands in a window already emitted. Static (backfills over stored
        trades): ``applyInPandasWithState`` is streaming-only, so the same window and
        baseline logic runs through ``applyInPandas`` and every window is emitted.
        """
        delay_ms = watermark_ms(self.settings.watermark_delay_seconds)
        columns = ("quantity", "quote_volume", "side")
        return keyed_state(
            event_rows(usable_trades(events), delay_ms=delay_ms, keys=KEY_COLUMNS, columns=columns),
            KEY_COLUMNS,
            streaming=events.isStreaming,
            state_function=volume_state_function(self.settings),
            batch_function=volume_batch_function(self.settings),
            output_schema=VOLUME_AGGREGATES,
            state_schema=VOLUME_STATE,
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        """``volume_spike`` alerts of one static batch of ``VOLUME_AGGREGATES`` rows."""
        return volume_spike_alerts(output, self.settings, self.module_id)
