"""Data-quality rules: named Spark predicates over ``UNIFIED_TRADE_EVENT`` rows.

A rule's ``check`` builds a boolean Column that is true when the row PASSES; a null result
counts as a failure. ``error`` rules send the row to the dead-letter path, ``warn`` rules
only flag it. Validity rules pass on nulls: a missing value fails its completeness rule
once, not every rule that reads it. Rules build plans on the driver; Spark evaluates them
on the executors.

Example (a module's extra rule)::

    QualityRule(
        name="validity_side_known",
        severity="error",
        description="side is buy or sell",
        check=lambda ctx: F.col("side").isNull() | F.col("side").isin("buy", "sell"),
    )
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pyspark.sql import Column
from pyspark.sql import functions as F

Severity = Literal["error", "warn"]


@dataclass(frozen=True)
class QualityContext:
    """What rules may read besides the row: the allowed venues/symbols and rule parameters.

    ``allowed_pairs`` holds ``"exchange:symbol"`` strings; the others come from the
    ``quality`` configuration section (seconds; ``quote_volume_tolerance`` relative).
    ``event_time_reference`` is the clock trade times are judged against: ``arrival`` (the
    record's Kinesis arrival time, where the rows have one) or ``ingestion`` (the
    producer's receive time in the record: a replay's recorded clock).
    """

    allowed_exchanges: frozenset[str]
    allowed_pairs: frozenset[str]
    max_event_age_seconds: float
    quote_volume_tolerance: float
    columns: frozenset[str] = field(default_factory=frozenset)
    event_time_reference: Literal["arrival", "ingestion"] = "arrival"
    max_event_time_ahead_seconds: float = 60.0
    max_event_time_behind_seconds: float = 86_400.0


@dataclass(frozen=True)
class QualityRule:
    """A named check. ``check(ctx)`` is true for rows that pass."""

    name: str
    severity: Severity
    description: str
    check: Callable[[QualityContext], Column]


def _present(name: str) -> Callable[[QualityContext], Column]:
    def check(_: QualityContext) -> Column:
        column = F.col(name)
        if name in ("event_id", "symbol"):
            return column.isNotNull() & (F.length(F.trim(column)) > 0)
        return column.isNotNull()

    return check


def positive_finite(column: Column) -> Column:
    """``column`` is present, a number (not NaN), finite and above 0: an amount a detector can use."""
    return column.isNotNull() & ~F.isnan(column) & (column > 0) & (column < F.lit(float("inf")))


def _positive(name: str) -> Callable[[QualityContext], Column]:
    def check(_: QualityContext) -> Column:
        column = F.col(name)
        return column.isNull() | positive_finite(column)

    return check


def _symbol_allowed(ctx: QualityContext) -> Column:
    pair = F.concat_ws(":", F.col("exchange"), F.col("symbol"))
    return F.col("exchange").isNull() | F.col("symbol").isNull() | pair.isin(*sorted(ctx.allowed_pairs))


def _exchange_allowed(ctx: QualityContext) -> Column:
    return F.col("exchange").isNull() | F.col("exchange").isin(*sorted(ctx.allowed_exchanges))


def _recent(ctx: QualityContext) -> Column:
    lag_seconds = F.col("ingestion_timestamp").cast("double") - F.col("timestamp").cast("double")
    return (
        F.col("ingestion_timestamp").isNull()
        | F.col("timestamp").isNull()
        | (F.abs(lag_seconds) <= F.lit(ctx.max_event_age_seconds))
    )


def _event_time_bounded(ctx: QualityContext) -> Column:
    """Trade time within [reference - behind, reference + ahead]: no single trade moves a watermark."""
    use_arrival = ctx.event_time_reference == "arrival" and "kinesis_arrival" in ctx.columns
    reference = F.col("kinesis_arrival" if use_arrival else "ingestion_timestamp")
    ahead_seconds = F.col("timestamp").cast("double") - reference.cast("double")
    return (
        F.col("timestamp").isNull()
        | reference.isNull()
        | ahead_seconds.between(-ctx.max_event_time_behind_seconds, ctx.max_event_time_ahead_seconds)
    )


def _times_parsed(ctx: QualityContext) -> Column:
    if "times_ok" not in ctx.columns:
        return F.lit(True)
    return F.col("times_ok")


def _quote_volume_consistent(ctx: QualityContext) -> Column:
    expected = F.col("price") * F.col("quantity")
    gap = F.abs(F.col("quote_volume") - expected)
    return expected.isNull() | F.col("quote_volume").isNull() | (gap <= F.abs(expected) * ctx.quote_volume_tolerance)


def _json_parsed(ctx: QualityContext) -> Column:
    if "parse_ok" not in ctx.columns:
        return F.lit(True)
    return F.col("parse_ok")


def default_rules() -> list[QualityRule]:
    """The platform's rules, in the order their names are reported."""
    return [
        QualityRule("validity_json", "error", "the payload is a JSON object of the trade schema", _json_parsed),
        QualityRule("validity_time_format", "error", "time fields are times (years 1..9999)", _times_parsed),
        *(
            QualityRule(f"completeness_{name}", "error", f"{name} is present", _present(name))
            for name in ("event_id", "symbol", "price", "quantity", "timestamp", "ingestion_timestamp")
        ),
        QualityRule("validity_price_positive", "error", "price is a finite number > 0", _positive("price")),
        QualityRule("validity_quantity_positive", "error", "quantity is a finite number > 0", _positive("quantity")),
        QualityRule("validity_symbol_allowed", "error", "the (exchange, symbol) pair is configured", _symbol_allowed),
        QualityRule("validity_exchange_allowed", "error", "the exchange is enabled", _exchange_allowed),
        QualityRule(
            "timeliness_event_time",
            "error",
            "trade time within quality.max_event_time_ahead/behind_seconds of quality.event_time_reference",
            _event_time_bounded,
        ),
        QualityRule(
            "timeliness_recent",
            "warn",
            "trade time within quality.max_event_age_seconds of ingestion time",
            _recent,
        ),
        QualityRule(
            "consistency_quote_volume",
            "warn",
            "quote_volume = price x quantity within quality.quote_volume_tolerance",
            _quote_volume_consistent,
        ),
    ]
