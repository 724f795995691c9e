"""Which trades MOD-001 can count, as data-quality rules and as the filter ``process`` applies.

The platform's default rules already require symbol, price, quantity and timestamp. This
module also needs the exchange (half of its key), the taker side (buy/sell split) and a
positive quote volume (what it sums). While the module is active, the stream job adds
``volume_quality_rules()`` to its ``DataQualityChecker``, so a trade missing one of these
goes to the dead-letter path with the rule's name as its reason instead of vanishing.
``usable_trades`` applies the same predicates (plus the default ones on symbol, timestamp
and quantity) inside ``process``, so the detector also runs safely on input that skipped
the checker (tests, replays). Builds plans on the driver.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_framework.quality.rules import QualityContext, QualityRule, positive_finite
from coattail_framework.schemas import EVENT_TIME_COLUMN


def _exchange_present(_: QualityContext | None = None) -> Column:
    return F.col("exchange").isNotNull() & (F.length(F.trim(F.col("exchange"))) > 0)


def _side_known(_: QualityContext | None = None) -> Column:
    return F.col("side").isNotNull() & F.col("side").isin("buy", "sell")


def _positive(name: str) -> Column:
    return positive_finite(F.col(name))


def _quote_volume_positive(_: QualityContext | None = None) -> Column:
    return _positive("quote_volume")


def volume_quality_rules() -> list[QualityRule]:
    """The module's extra ``error`` rules (names prefixed so no other module's rule clashes)."""
    return [
        QualityRule("volume_anomaly_exchange_present", "error", "exchange is present", _exchange_present),
        QualityRule("volume_anomaly_side_known", "error", "side (taker side) is buy or sell", _side_known),
        QualityRule(
            "volume_anomaly_quote_volume_positive",
            "error",
            "quote_volume is present, finite and > 0",
            _quote_volume_positive,
        ),
    ]


def usable_trades(events: DataFrame) -> DataFrame:
    """``events`` without the rows the module cannot place or count (streaming or static)."""
    placed = F.col("symbol").isNotNull() & F.col(EVENT_TIME_COLUMN).isNotNull() & _exchange_present()
    counted = _side_known() & _quote_volume_positive() & _positive("quantity")
    return events.where(placed & counted)
