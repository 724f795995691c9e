"""MOD-004 flow-imbalance: how one-sided the taker flow of each window was, against the key's recent windows.

For every (exchange, symbol) whose quote counts as USD, fills are grouped into taker orders
exactly as MOD-002 does (``coattail_detector_whale.fills.taker_orders``); each order counts
in the tumbling window (``window_seconds``) of its trade time. When the watermark passes a
window's end, the window's buy and sell notionals ``B`` and ``S``, order counts and large-order
notionals give the imbalance ``(B - S) / (B + S)``, the large-order imbalance and the net flow
``B - S``, compared with the key's previous ``baseline_windows`` net flows (quiet windows as
zeros): population mean and std, ``z``. ``build_alerts`` raises ``flow_imbalance`` alerts
(``alerts``).

``process`` builds one stateful streaming plan on the driver: fills of USD-quoted instruments
-> watermark (``watermark_delay_seconds``) -> one ``applyInPandasWithState`` per (exchange,
symbol) with an event-time timeout (``flows.py``, ``state.py``). Spark refuses a stateful
function after an aggregation (ADR-008), so both the order grouping and the windows live in
the state function. Static input (reprocessing) runs the same state machine through
``applyInPandas`` and closes every window.

Example::

    detector = FlowImbalanceDetector()
    detector.configure(config)                 # modules.flow-imbalance, and modules.whale through MOD-002
    flows = detector.process(valid_trades)     # streaming flow_imbalance rows
    alerts = detector.build_alerts(batch)      # inside foreachBatch
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_detector_flow_imbalance.alerts import flow_imbalance_alerts
from coattail_detector_flow_imbalance.config import FlowImbalanceConfig
from coattail_detector_flow_imbalance.flows import FILL_COLUMNS, flow_batch_function, flow_state_function
from coattail_detector_flow_imbalance.metadata import DETECTOR_INFO
from coattail_detector_flow_imbalance.schema import FLOW_IMBALANCE, STATE
from coattail_detector_flow_imbalance.state import Settings
from coattail_detector_whale.detector import WhaleDetector
from coattail_detector_whale.fills import TAKER_SIDES
from coattail_framework.detector import BaseDetector
from coattail_framework.keyed_state import event_rows, keyed_state, watermark_ms
from coattail_framework.partitioning import day
from coattail_framework.quality.rules import positive_finite
from coattail_framework.schemas import EVENT_TIME_COLUMN

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

KEY_COLUMNS = ("exchange", "symbol")


class FlowImbalanceDetector(BaseDetector[FlowImbalanceConfig]):
    """Taker-order flow imbalance per window (``flow_imbalance``) and ``flow_imbalance`` alerts."""

    config_model: ClassVar[type[FlowImbalanceConfig]] = FlowImbalanceConfig
    info = DETECTOR_INFO
    module_id = DETECTOR_INFO.module_id
    module_name = DETECTOR_INFO.module_name
    alert_types = DETECTOR_INFO.alert_type_names
    output_table = "flow_imbalance"
    output_schema = FLOW_IMBALANCE
    partition_spec = (day("window_start"),)

    _usd_pairs: tuple[str, ...] = ()

    def on_configured(self, config: CoattailConfig) -> None:
        """Read ``modules.whale`` through MOD-002's own ``configure`` and keep the USD-quoted (exchange, symbol) pairs.

        MOD-002 validates its section (errors name ``modules.whale.<key>``) and refuses a
        configuration without a USD-quoted instrument, whether or not MOD-002 itself runs.
        """
        whale = WhaleDetector()
        whale.configure(config)
        self._usd_pairs = whale.usd_pairs

    @property
    def state_settings(self) -> Settings:
        """The state machine's settings (µs) from ``modules.flow-imbalance``."""
        return Settings.of(self.settings)

    def _fills(self, events: DataFrame) -> DataFrame:
        """Fills of USD-quoted instruments with a time, a taker side and a finite positive notional.

        Fills without a taker side are skipped, as MOD-002 skips them (its ``whale_side_known``
        rule flags them); ``taker_orders`` itself skips fills without a positive price or size.
        """
        usd = F.concat_ws(":", F.col("exchange"), F.col("symbol")).isin(*self._usd_pairs)
        counted = positive_finite(_quote_volume())
        return events.where(F.col(EVENT_TIME_COLUMN).isNotNull() & usd & F.col("side").isin(*TAKER_SIDES) & counted)

    def process(self, events: DataFrame) -> DataFrame:
        """``FLOW_IMBALANCE`` rows of ``events`` (streaming: as the watermark passes window ends; static: all)."""
        columns: list[str | Column] = [name for name in FILL_COLUMNS if name not in ("event_us", "quote_volume")]
        columns.append(_quote_volume().alias("quote_volume"))
        delay_ms = watermark_ms(self.settings.watermark_delay_seconds)
        return keyed_state(
            event_rows(self._fills(events), delay_ms=delay_ms, keys=KEY_COLUMNS, columns=columns),
            KEY_COLUMNS,
            streaming=events.isStreaming,
            state_function=flow_state_function(self.state_settings),
            batch_function=flow_batch_function(self.state_settings),
            output_schema=FLOW_IMBALANCE,
            state_schema=STATE,
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        """``flow_imbalance`` alerts of one static batch of ``FLOW_IMBALANCE`` rows."""
        return flow_imbalance_alerts(output, self.settings, self.module_id)


def _quote_volume() -> Column:
    """A fill's notional as MOD-002 reads it: ``quote_volume``, or price x quantity when the venue gave none."""
    return F.coalesce(F.col("quote_volume"), F.col("price") * F.col("quantity"))
