"""MOD-003 spread: the same instrument's VWAP on two exchanges, per tumbling window.

Every configured venue symbol is a leg of an instrument: its canonical symbol from
``symbols`` with ``quote_equivalents`` applied (binance BTCUSDT and coinbase BTC-USD are both
legs of BTC/USD). One watermarked aggregation per (window, instrument) keeps, for every leg
known at plan time from the configuration, its quote volume, base volume and trade count
(conditional sums); pairing the legs of different exchanges is then a stateless explode. A
pair is written when both legs traded in the window; a window seen on one exchange only
gives no row. Append output mode: a window is emitted once, when the watermark passes its
end. Native Spark only: the same plan runs on PySpark 3.5 and 4.x.

``process`` and ``build_alerts`` build plans on the driver; executors run them.

Example::

    detector = SpreadDetector()
    detector.configure(config)
    spreads = detector.process(valid_trades)          # streaming exchange_spreads rows
    alerts = detector.build_alerts(spreads_batch)     # inside foreachBatch
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_detector_spread.config import SpreadConfig
from coattail_detector_spread.legs import Leg, legs_of, pairs_of
from coattail_detector_spread.metadata import DETECTOR_INFO
from coattail_detector_spread.schema import EXCHANGE_SPREADS
from coattail_framework.alerts import alert_frame
from coattail_framework.detector import BaseDetector
from coattail_framework.errors import ConfigError
from coattail_framework.partitioning import day
from coattail_framework.schemas import EVENT_TIME_COLUMN

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

PERCENT = 100.0
BPS = 10_000.0


class SpreadDetector(BaseDetector[SpreadConfig]):
    """Cross-exchange VWAP spreads (``exchange_spreads``) and ``spread_divergence`` alerts."""

    config_model: ClassVar[type[SpreadConfig]] = SpreadConfig
    info = DETECTOR_INFO
    module_id = DETECTOR_INFO.module_id
    module_name = DETECTOR_INFO.module_name
    alert_types = DETECTOR_INFO.alert_type_names
    output_table = "exchange_spreads"
    output_schema = EXCHANGE_SPREADS
    partition_spec = (day("window_start"),)

    legs: tuple[Leg, ...] = ()
    pairs: tuple[tuple[int, int], ...] = ()

    def on_configured(self, config: CoattailConfig) -> None:
        """Derive the legs and the pairs to compare from ``symbols`` and the quote equivalence."""
        self.legs = legs_of(config, self.settings)
        self.pairs = pairs_of(self.legs)
        if not self.pairs:
            raise ConfigError(
                f"{config.source_of(('symbols',))}: no instrument under symbols is quoted on two exchanges "
                f"(after modules.spread.quote_equivalents), so MOD-003 has nothing to compare; map one "
                f"instrument on a second venue or add 'spread' to disabled_modules"
            )

    def _leg_of_trade(self) -> Column:
        """The leg index of a trade's (exchange, symbol); null when not configured."""
        matches = [
            ((F.col("exchange") == leg.exchange) & (F.col("symbol") == leg.symbol), F.lit(index))
            for index, leg in enumerate(self.legs)
        ]
        (first_match, first_index), *others = matches
        leg = F.when(first_match, first_index)
        for match, index in others:
            leg = leg.when(match, index)
        return leg

    def process(self, events: DataFrame) -> DataFrame:
        """Spread rows from valid trades; trades of unconfigured symbols are skipped."""
        instruments = F.array(*(F.lit(leg.instrument) for leg in self.legs))
        trades = (
            events.select(
                EVENT_TIME_COLUMN,
                self._leg_of_trade().alias("leg"),
                F.col("quantity"),
                F.coalesce(F.col("quote_volume"), F.col("price") * F.col("quantity")).alias("quote_volume"),
            )
            .where(
                F.col(EVENT_TIME_COLUMN).isNotNull()
                & F.col("leg").isNotNull()
                & (F.col("quantity") > 0)
                & (F.col("quote_volume") > 0)
            )
            .withColumn("instrument", F.get(instruments, F.col("leg")))
        )
        leg_totals = []
        for index in range(len(self.legs)):
            of_leg = F.col("leg") == index
            leg_totals += [
                F.sum(F.when(of_leg, F.col("quote_volume"))).alias(f"quote_{index}"),
                F.sum(F.when(of_leg, F.col("quantity"))).alias(f"base_{index}"),
                F.count(F.when(of_leg, F.lit(1))).alias(f"trades_{index}"),
            ]
        delay_ms = round(self.settings.watermark_delay_seconds * 1000)
        windows = (
            trades.withWatermark(EVENT_TIME_COLUMN, f"{delay_ms} milliseconds")
            .groupBy(F.window(EVENT_TIME_COLUMN, f"{self.settings.window_seconds} seconds"), "instrument")
            .agg(*leg_totals)
        )
        pairs = windows.select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            F.col("instrument").alias("symbol"),
            F.explode(F.array(*(self._pair(a, b) for a, b in self.pairs))).alias("pair"),
        ).where(F.col("pair").isNotNull())
        vwap_a, vwap_b = F.col("pair.vwap_a"), F.col("pair.vwap_b")
        mid = (vwap_a + vwap_b) / 2
        columns = {
            "window_start": F.col("window_start"),
            "window_end": F.col("window_end"),
            "symbol": F.col("symbol"),
            "mid_price": mid,
            "spread_pct": F.abs(vwap_a - vwap_b) / mid * PERCENT,
            "premium_bps": (vwap_b - vwap_a) / mid * BPS,
        }
        return pairs.select(
            *(columns.get(name, F.col(f"pair.{name}")).alias(name) for name in EXCHANGE_SPREADS.fieldNames())
        )

    def _pair(self, a: int, b: int) -> Column:
        """Legs ``a`` and ``b`` of a window row as a struct, or null unless both traded in it."""
        leg_a, leg_b = self.legs[a], self.legs[b]
        both_traded = (
            (F.col("instrument") == leg_a.instrument) & (F.col(f"trades_{a}") > 0) & (F.col(f"trades_{b}") > 0)
        )
        return F.when(
            both_traded,
            F.struct(
                F.lit(leg_a.exchange).alias("exchange_a"),
                F.lit(leg_a.symbol).alias("symbol_a"),
                F.lit(leg_b.exchange).alias("exchange_b"),
                F.lit(leg_b.symbol).alias("symbol_b"),
                (F.col(f"quote_{a}") / F.col(f"base_{a}")).alias("vwap_a"),
                (F.col(f"quote_{b}") / F.col(f"base_{b}")).alias("vwap_b"),
                F.col(f"quote_{a}").alias("quote_volume_a"),
                F.col(f"quote_{b}").alias("quote_volume_b"),
                F.col(f"trades_{a}").alias("trade_count_a"),
                F.col(f"trades_{b}").alias("trade_count_b"),
            ),
        )

    def build_alerts(self, output: DataFrame) -> DataFrame:
        """``spread_divergence`` alerts: spread above the mildest bound and both legs liquid enough."""
        liquid = F.least(F.col("quote_volume_a"), F.col("quote_volume_b")) >= F.lit(self.settings.min_quote_volume)
        message = F.format_string(
            "%s %s vs %s: %s%% spread, VWAP %s vs %s (%d s window from %s UTC)",
            F.col("symbol"),
            F.col("exchange_a"),
            F.col("exchange_b"),
            F.format_number(F.col("spread_pct"), 2),
            F.format_number(F.col("vwap_a"), 2),
            F.format_number(F.col("vwap_b"), 2),
            F.lit(self.settings.window_seconds),
            F.date_format(F.col("window_start"), "yyyy-MM-dd HH:mm:ss"),
        )
        return alert_frame(
            output,
            module_id=self.module_id,
            alert_type=DETECTOR_INFO.alert_type_names[0],
            id_parts=[
                F.col("symbol"),
                F.col("exchange_a"),
                F.col("symbol_a"),
                F.col("exchange_b"),
                F.col("symbol_b"),
                F.unix_micros(F.col("window_start")),
                F.unix_micros(F.col("window_end")),
            ],
            symbol=F.col("symbol"),
            exchange=F.concat_ws("|", F.col("exchange_a"), F.col("exchange_b")),
            severity=F.when(liquid, self.settings.thresholds.column(F.col("spread_pct"))),
            detected_at=F.col("window_end"),
            message=message,
            details=[F.col(name) for name in EXCHANGE_SPREADS.fieldNames()],
        )
