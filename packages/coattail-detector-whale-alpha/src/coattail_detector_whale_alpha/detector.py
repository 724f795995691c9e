"""MOD-008 whale-alpha: whether following a kind of whale order has paid.

For every whale order (exactly MOD-002's: same grouping, same ``modules.whale`` threshold)
the module writes its markouts to ``whale_markouts`` as each horizon resolves: entry = VWAP of
the trades in the ``entry_delay_seconds`` after the order (what a follower could get), exit =
last trade at or before ``order_time + h``, side-signed return in bps. Returns are pooled per
cohort (exchange, symbol, side, notional bucket) and horizon; each markout row carries its
cohort's statistics after it, each order's entry row (horizon 0) the signal: the cohort's
statistics at ``score_horizon_seconds`` as they stood at the order's time.

``process`` builds one stateful streaming plan on the driver: trades of USD-quoted
instruments -> watermark (``watermark_delay_seconds``) -> one ``applyInPandasWithState`` per
(exchange, symbol) with an event-time timeout (``markouts.py``, ``state.py``). Spark refuses
a stateful function after an aggregation (ADR-008), so the fills are grouped into orders
inside it, by MOD-002's own Python twin of its grouping (``coattail_detector_whale.fills``).
Static input (reprocessing) runs the same state machine through ``applyInPandas``.

Alerts (``build_alerts``, per micro-batch of output, driver):

- ``whale_alpha_signal`` from entry rows whose cohort holds at least ``min_cohort_orders``
  returns at the score horizon and whose ``signal_statistic`` is above ``thresholds``;
  ``detected_at`` = order time. Id parts: MOD-002's (exchange, symbol, side, order time µs,
  first trade id, taker order id) with MOD-008's module id.
- ``whale_markout`` (``low``) from every markout row with a return, ``detected_at`` = the
  horizon's end; the API's ``/alpha`` serves the latest per cohort and horizon.

Example::

    detector = WhaleAlphaDetector()
    detector.configure(config)
    markouts = detector.process(valid_trades)    # streaming whale_markouts rows
    alerts = detector.build_alerts(batch)        # inside foreachBatch
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_detector_whale.config import WhaleConfig
from coattail_detector_whale.detector import WhaleDetector
from coattail_detector_whale_alpha.config import WhaleAlphaConfig
from coattail_detector_whale_alpha.markouts import markout_batch_function, markout_state_function
from coattail_detector_whale_alpha.metadata import DETECTOR_INFO
from coattail_detector_whale_alpha.schema import STATE, WHALE_MARKOUTS
from coattail_detector_whale_alpha.state import Settings
from coattail_framework.alerts import alert_frame
from coattail_framework.detector import BaseDetector
from coattail_framework.keyed_state import event_rows, keyed_state, watermark_ms
from coattail_framework.partitioning import day
from coattail_framework.quality.rules import positive_finite
from coattail_framework.schemas import EVENT_TIME_COLUMN

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

KEY_COLUMNS = ("exchange", "symbol")
_SIGNAL_TYPE, _MARKOUT_TYPE = DETECTOR_INFO.alert_types


class WhaleAlphaDetector(BaseDetector[WhaleAlphaConfig]):
    """Whale order markouts (``whale_markouts``), ``whale_alpha_signal`` and ``whale_markout`` alerts."""

    config_model: ClassVar[type[WhaleAlphaConfig]] = WhaleAlphaConfig
    info = DETECTOR_INFO
    module_id = DETECTOR_INFO.module_id
    module_name = DETECTOR_INFO.module_name
    alert_types = DETECTOR_INFO.alert_type_names
    output_table = "whale_markouts"
    output_schema = WHALE_MARKOUTS
    partition_spec = (day("order_time"),)

    whale: WhaleConfig
    """``modules.whale``: MOD-002's settings, read whether or not MOD-002 runs."""
    _usd_pairs: tuple[str, ...] = ()

    def on_configured(self, config: CoattailConfig) -> None:
        """Read MOD-002's whale definition through its own ``configure`` (its key paths, its refusals)."""
        whale = WhaleDetector()
        whale.configure(config)
        self.whale, self._usd_pairs = whale.settings, whale.usd_pairs

    @property
    def state_settings(self) -> Settings:
        """The state machine's settings (µs) from this module's and MOD-002's."""
        settings = self.settings
        return Settings(
            min_notional_usd=self.whale.min_notional_usd,
            horizons_us=tuple(h * 1_000_000 for h in settings.horizons_seconds),
            entry_delay_us=round(settings.entry_delay_seconds * 1_000_000),
            notional_buckets=tuple(settings.notional_buckets),
            cohort_size=settings.cohort_size,
            score_horizon_us=settings.score_horizon_seconds * 1_000_000,
            max_pending_orders=settings.max_pending_orders,
            max_exit_age_us=round(settings.max_exit_age_seconds * 1_000_000),
        )

    def _trades(self, events: DataFrame) -> DataFrame:
        """Trades of USD-quoted instruments with a time and a finite positive price and size."""
        usd = F.concat_ws(":", F.col("exchange"), F.col("symbol")).isin(*self._usd_pairs)
        usable = positive_finite(F.col("price")) & positive_finite(F.col("quantity"))
        return events.where(F.col(EVENT_TIME_COLUMN).isNotNull() & usd & usable)

    def process(self, events: DataFrame) -> DataFrame:
        """``WHALE_MARKOUTS`` rows of ``events`` (streaming: as horizons resolve; static: all resolvable)."""
        delay_ms = watermark_ms(self.settings.watermark_delay_seconds)
        columns = ("trade_id", "price", "quantity", "quote_volume", "side", "taker_order_id")
        return keyed_state(
            event_rows(self._trades(events), delay_ms=delay_ms, keys=KEY_COLUMNS, columns=columns),
            KEY_COLUMNS,
            streaming=events.isStreaming,
            state_function=markout_state_function(self.state_settings),
            batch_function=markout_batch_function(self.state_settings, delay_ms * 1000),
            output_schema=WHALE_MARKOUTS,
            state_schema=STATE,
            static_newest=True,
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        """``whale_alpha_signal`` and ``whale_markout`` alerts of one static batch of ``whale_markouts`` rows."""
        return self._signals(output).unionByName(self._markouts(output))

    def _order_id_parts(self) -> list[Column]:
        return [
            F.col("exchange"),
            F.col("symbol"),
            F.col("side"),
            F.unix_micros(F.col("order_time")),
            F.col("first_trade_id"),
            F.col("taker_order_id"),
        ]

    def _signals(self, output: DataFrame) -> DataFrame:
        settings = self.settings
        statistic = F.col("signal_t") if settings.signal_statistic == "t" else F.col("signal_mean_bps")
        eligible = (F.col("horizon_seconds") == 0) & (F.col("signal_n") >= settings.min_cohort_orders)
        message = F.format_string(
            "%s %s: whale %s $%s; its cohort (%s %s) returned %s bps on average %s after entry, "
            "t=%s, hit %s%% over %d orders",
            F.col("symbol"),
            F.col("exchange"),
            F.upper(F.col("side")),
            F.format_number(F.col("notional"), 0),
            F.col("side"),
            F.col("notional_bucket"),
            F.format_string("%+.2f", F.col("signal_mean_bps")),
            _duration(F.col("signal_horizon_seconds")),
            _number("%.2f", F.col("signal_t")),
            F.format_string("%.0f", F.col("signal_hit_rate") * 100),
            F.col("signal_n"),
        )
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type=_SIGNAL_TYPE.name,
            id_parts=self._order_id_parts(),
            symbol=F.col("symbol"),
            exchange=F.col("exchange"),
            severity=F.when(eligible, settings.thresholds.column(statistic)),
            detected_at=F.col("order_time"),
            message=message,
            details=_details(_SIGNAL_TYPE.details),
        )

    def _markouts(self, output: DataFrame) -> DataFrame:
        eligible = (F.col("horizon_seconds") > 0) & F.col("return_bps").isNotNull()
        message = F.format_string(
            "%s %s: whale %s $%s, %s markout %s bps; cohort (%s %s) at %s: mean %s bps, t=%s, n=%d",
            F.col("symbol"),
            F.col("exchange"),
            F.upper(F.col("side")),
            F.format_number(F.col("notional"), 0),
            _duration(F.col("horizon_seconds")),
            F.format_string("%+.2f", F.col("return_bps")),
            F.col("side"),
            F.col("notional_bucket"),
            _duration(F.col("horizon_seconds")),
            F.format_string("%+.2f", F.col("cohort_mean_bps")),
            _number("%.2f", F.col("cohort_t")),
            F.col("cohort_n"),
        )
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type=_MARKOUT_TYPE.name,
            id_parts=[*self._order_id_parts(), F.col("horizon_seconds")],
            symbol=F.col("symbol"),
            exchange=F.col("exchange"),
            severity=F.when(eligible, F.lit("low")),
            detected_at=F.col("horizon_end"),
            message=message,
            details=_details(_MARKOUT_TYPE.details),
        )


def _details(fields: Sequence[object]) -> list[Column]:
    """The output columns named by an alert type's ``details`` declaration."""
    return [F.col(field.name) for field in fields]  # type: ignore[attr-defined]


def _number(spec: str, value: Column) -> Column:
    """``value`` formatted with ``spec``, ``n/a`` when null (``format_string`` would write ``null``)."""
    return F.when(value.isNull(), F.lit("n/a")).otherwise(F.format_string(spec, value))


def _duration(seconds: Column) -> Column:
    """``60 s`` below two minutes, else ``5 min``."""
    return F.when(seconds < 120, F.format_string("%d s", seconds)).otherwise(
        F.format_string("%d min", (seconds / 60).cast("long"))
    )
