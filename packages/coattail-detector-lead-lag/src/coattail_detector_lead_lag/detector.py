"""MOD-010 lead-lag: which venue's price of an instrument moves first, and when that changes.

Every configured venue symbol is a leg of an instrument and legs on different venues are
paired exactly as MOD-003 pairs them (``coattail_detector_spread``: canonical symbol with
``modules.spread.quote_equivalents``, venue a < venue b). Every ``step_seconds`` of event time,
per pair: the legs' last trade prices on a grid of ``grid_ms``, log returns over the last
``window_seconds``, the cross-correlation ``rho(k)`` of a's returns at ``t`` with b's at
``t + k`` for lags up to ``max_lag_seconds`` each way, and ``k*`` = the lag of the largest
``|rho|`` (``correlation.py``, ``state.py``). One ``lead_lag`` row per pair and window.

``process`` builds one stateful streaming plan on the driver: trades of paired legs ->
watermark (``watermark_delay_seconds``) -> one ``applyInPandasWithState`` per instrument with an
event-time timeout (``pandas_functions.py``). Static input (reprocessing) runs the same state
machine through ``applyInPandas``.

Alerts (``build_alerts``, per micro-batch of output, driver): ``leader_change`` from rows whose
significant leader differs from the one of the pair's previous ``min_consecutive`` significant
windows; severity by ``|rho(k*)|``; ``exchange`` = ``a|b``, ``symbol`` = the instrument; id parts:
instrument, both legs, window end; ``detected_at`` = window end.

Example::

    detector = LeadLagDetector()
    detector.configure(config)
    rows = detector.process(valid_trades)        # streaming lead_lag rows
    alerts = detector.build_alerts(batch)        # inside foreachBatch
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_detector_lead_lag.config import LeadLagConfig
from coattail_detector_lead_lag.metadata import DETECTOR_INFO
from coattail_detector_lead_lag.pandas_functions import lead_lag_batch_function, lead_lag_state_function
from coattail_detector_lead_lag.schema import LEAD_LAG, STATE
from coattail_detector_lead_lag.state import Pair, Settings, leg_key
from coattail_detector_spread.config import SpreadConfig
from coattail_detector_spread.legs import Leg, legs_of, pairs_of
from coattail_framework.alerts import alert_frame
from coattail_framework.detector import BaseDetector, module_settings
from coattail_framework.errors import ConfigError
from coattail_framework.keyed_state import event_rows, keyed_state, watermark_ms
from coattail_framework.partitioning import day
from coattail_framework.quality.rules import positive_finite
from coattail_framework.schemas import EVENT_TIME_COLUMN

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

SPREAD_MODULE = "spread"
"""The section whose quote equivalence makes the legs of an instrument (MOD-003's)."""
_LEADER_CHANGE = DETECTOR_INFO.alert_types[0]


class LeadLagDetector(BaseDetector[LeadLagConfig]):
    """Cross-venue lead-lag per instrument and venue pair (``lead_lag``) and ``leader_change`` alerts."""

    config_model: ClassVar[type[LeadLagConfig]] = LeadLagConfig
    info = DETECTOR_INFO
    module_id = DETECTOR_INFO.module_id
    module_name = DETECTOR_INFO.module_name
    alert_types = DETECTOR_INFO.alert_type_names
    output_table = "lead_lag"
    output_schema = LEAD_LAG
    partition_spec = (day("window_end"),)

    spread: SpreadConfig
    """``modules.spread``: MOD-003's settings, read whether or not MOD-003 runs."""
    legs: tuple[Leg, ...] = ()
    pairs: tuple[tuple[int, int], ...] = ()
    """Index pairs into ``legs``, exactly MOD-003's."""

    def on_configured(self, config: CoattailConfig) -> None:
        """Read MOD-003's quote equivalence and derive its legs and pairs from ``symbols``."""
        self.spread = module_settings(config, SPREAD_MODULE, SpreadConfig)
        self.legs = legs_of(config, self.spread)
        self.pairs = pairs_of(self.legs)
        if not self.pairs:
            raise ConfigError(
                f"{config.source_of(('symbols',))}: no instrument under symbols is quoted on two exchanges "
                f"(after modules.spread.quote_equivalents), so MOD-010 has no pair of venues to correlate; map "
                f"one instrument on a second venue or add 'lead-lag' to disabled_modules"
            )

    @property
    def state_settings(self) -> Settings:
        """The state machine's settings (µs, grid cells) and the pairs of every instrument."""
        settings = self.settings
        pairs: dict[str, tuple[Pair, ...]] = {}
        for a, b in self.pairs:
            leg_a, leg_b = self.legs[a], self.legs[b]
            pairs[leg_a.instrument] = (
                *pairs.get(leg_a.instrument, ()),
                Pair(leg_a.exchange, leg_a.symbol, leg_b.exchange, leg_b.symbol),
            )
        return Settings(
            grid_us=settings.grid_ms * 1000,
            window_cells=settings.window_cells,
            max_lag_cells=settings.max_lag_cells,
            step_us=settings.step_seconds * 1_000_000,
            min_correlation=settings.min_correlation,
            min_gain=settings.min_gain,
            min_samples=settings.min_samples,
            max_leg_silence_us=round(settings.max_leg_silence_seconds * 1_000_000),
            min_consecutive=settings.min_consecutive,
            pairs=pairs,
        )

    def _trades(self, events: DataFrame) -> DataFrame:
        """Trades of paired legs with a time and a finite positive price, with their leg and instrument."""
        paired = {index for pair in self.pairs for index in pair}
        instrument_of = {
            leg_key(leg.exchange, leg.symbol): leg.instrument for i, leg in enumerate(self.legs) if i in paired
        }
        leg = F.concat_ws(":", F.col("exchange"), F.col("symbol"))
        usable = F.col(EVENT_TIME_COLUMN).isNotNull() & leg.isin(*instrument_of) & positive_finite(F.col("price"))
        mapping = F.create_map(*(F.lit(text) for item in instrument_of.items() for text in item))
        return events.where(usable).withColumn("leg", leg).withColumn("instrument", F.element_at(mapping, leg))

    def process(self, events: DataFrame) -> DataFrame:
        """``LEAD_LAG`` rows of ``events`` (streaming: as the watermark passes step ends; static: all passed)."""
        delay_ms = watermark_ms(self.settings.watermark_delay_seconds)
        keys = ("instrument",)
        return keyed_state(
            event_rows(self._trades(events), delay_ms=delay_ms, keys=keys, columns=("leg", "trade_id", "price")),
            keys,
            streaming=events.isStreaming,
            state_function=lead_lag_state_function(self.state_settings),
            batch_function=lead_lag_batch_function(self.state_settings, delay_ms * 1000),
            output_schema=LEAD_LAG,
            state_schema=STATE,
            static_newest=True,
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        """``leader_change`` alerts of one static batch of ``lead_lag`` rows."""
        message = F.format_string(
            "%s %s|%s: %s now leads by %s s (correlation %s at that lag, %s at 0); %s led the previous %d "
            "significant windows (window %s to %s UTC)",
            F.col("symbol"),
            F.col("exchange_a"),
            F.col("exchange_b"),
            F.col("leader"),
            F.abs(F.col("lag_seconds")).cast("string"),
            F.format_string("%.2f", F.col("correlation_at_lag")),
            F.format_string("%.2f", F.col("correlation_at_zero")),
            F.col("previous_leader"),
            F.lit(self.settings.min_consecutive),
            F.date_format(F.col("window_start"), "yyyy-MM-dd HH:mm:ss"),
            F.date_format(F.col("window_end"), "HH:mm:ss"),
        )
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type=_LEADER_CHANGE.name,
            id_parts=[
                F.col("symbol"),
                F.col("exchange_a"),
                F.col("symbol_a"),
                F.col("exchange_b"),
                F.col("symbol_b"),
                F.unix_micros(F.col("window_end")),
            ],
            symbol=F.col("symbol"),
            exchange=F.concat_ws("|", F.col("exchange_a"), F.col("exchange_b")),
            severity=F.when(
                F.col("leader_change"), self.settings.thresholds.column(F.abs(F.col("correlation_at_lag")))
            ),
            detected_at=F.col("window_end"),
            message=message,
            details=_details(),
        )


def _details() -> list[Column]:
    """The output columns named by ``leader_change``'s ``details`` declaration."""
    return [F.col(field.name) for field in _LEADER_CHANGE.details]
