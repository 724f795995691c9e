"""``DataQualityChecker``: split trade rows into valid and invalid, with per-rule counts.

Built and called on the driver (it only builds plans); works on static and streaming
DataFrames alike. Invalid rows carry ``dq_failed_rules`` (every ``error`` rule they
failed, in rule order) and ``dq_reason`` (the first); both outputs carry ``dq_warnings``
(the ``warn`` rules they failed — flagged, never dropped).

Per-batch counts are collected with Spark's ``observe``: for a static DataFrame
``metrics.get()`` returns them after an action; for a streaming query they arrive in
each ``StreamingQueryProgress.observedMetrics[metrics.name]`` (the pipeline's listener
publishes them through ``coattail_framework.metrics``).

Example::

    checker = DataQualityChecker(spark, config, extra_rules=detector.quality_rules())
    valid, invalid, metrics = checker.validate(events)
    valid.count(); metrics.get()   # {'total': 10, 'valid': 9, 'invalid': 1, 'completeness_price': 1, ...}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from coattail_framework.errors import ConfigError
from coattail_framework.quality.rules import QualityContext, QualityRule, default_rules

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

FAILED_RULES = "dq_failed_rules"
WARNINGS = "dq_warnings"
REASON = "dq_reason"
OBSERVATION_NAME = "coattail_dq"


@dataclass(frozen=True)
class QualityMetrics:
    """Handle on one ``validate`` call's counts: total, valid, invalid and one per rule."""

    name: str
    rules: tuple[str, ...]
    observation: Observation | None

    def get(self) -> dict[str, int]:
        """The counts of a static DataFrame; blocks until an action has run on it."""
        if self.observation is None:
            raise RuntimeError("streaming metrics arrive per batch: use from_progress(progress.observedMetrics)")
        return self.normalize(self.observation.get)

    def from_progress(self, observed: Mapping[str, Any]) -> dict[str, int] | None:
        """The counts in one ``progress.observedMetrics`` mapping, or None if absent."""
        row = observed.get(self.name)
        if row is None:
            return None
        return self.normalize(row.asDict() if hasattr(row, "asDict") else dict(row))

    @staticmethod
    def normalize(values: Mapping[str, Any]) -> dict[str, int]:
        """Counts as ints (an empty batch reports nulls, which mean 0)."""
        return {key: int(value or 0) for key, value in values.items()}


class DataQualityChecker:
    """Applies the default rules (minus ``quality.disabled_rules``) and modules' extra rules."""

    def __init__(self, spark: SparkSession, config: CoattailConfig, extra_rules: Sequence[QualityRule] = ()) -> None:
        self._spark = spark
        rules = [*default_rules(), *extra_rules]
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"quality rules defined twice: {', '.join(duplicates)} (rename the module's rule)")
        unknown = sorted(set(config.quality.disabled_rules) - set(names))
        if unknown:
            raise ConfigError(
                f"quality.disabled_rules names unknown rule(s) {', '.join(unknown)}; known: {', '.join(names)}"
            )
        self.rules: tuple[QualityRule, ...] = tuple(r for r in rules if r.name not in config.quality.disabled_rules)
        exchanges = config.enabled_exchanges.keys() or config.symbols.exchanges()
        self._context_base = QualityContext(
            allowed_exchanges=frozenset(exchanges),
            allowed_pairs=frozenset(f"{exchange}:{symbol}" for exchange, symbol, _ in config.symbols.pairs()),
            max_event_age_seconds=config.quality.max_event_age_seconds,
            quote_volume_tolerance=config.quality.quote_volume_tolerance,
            event_time_reference=config.quality.event_time_reference,
            max_event_time_ahead_seconds=config.quality.max_event_time_ahead_seconds,
            max_event_time_behind_seconds=config.quality.max_event_time_behind_seconds,
        )

    def _failures(self, ctx: QualityContext, severity: str) -> Column:
        failed = [
            F.when(~F.coalesce(rule.check(ctx), F.lit(False)), F.lit(rule.name))
            for rule in self.rules
            if rule.severity == severity
        ]
        if not failed:
            return F.array().cast("array<string>")
        return F.filter(F.array(*failed), lambda name: name.isNotNull())

    def flag(self, df: DataFrame) -> DataFrame:
        """``df`` plus ``dq_failed_rules`` and ``dq_warnings`` (no rows removed)."""
        ctx = QualityContext(**{**self._context_base.__dict__, "columns": frozenset(df.columns)})
        return df.withColumn(FAILED_RULES, self._failures(ctx, "error")).withColumn(
            WARNINGS, self._failures(ctx, "warn")
        )

    def observe(self, df: DataFrame) -> tuple[DataFrame, QualityMetrics]:
        """``flag(df)`` with the per-rule counts attached as an observation (see ``QualityMetrics``)."""
        flagged = self.flag(df)
        is_invalid = F.size(F.col(FAILED_RULES)) > 0
        every_failure = F.concat(F.col(FAILED_RULES), F.col(WARNINGS))
        counts = [
            F.count(F.lit(1)).alias("total"),
            F.sum(F.when(is_invalid, 0).otherwise(1)).alias("valid"),
            F.sum(F.when(is_invalid, 1).otherwise(0)).alias("invalid"),
            *(
                F.sum(F.when(F.array_contains(every_failure, rule.name), 1).otherwise(0)).alias(rule.name)
                for rule in self.rules
            ),
        ]
        observation = None if df.isStreaming else Observation(OBSERVATION_NAME)
        observed = flagged.observe(observation if observation is not None else OBSERVATION_NAME, *counts)
        return observed, QualityMetrics(OBSERVATION_NAME, tuple(rule.name for rule in self.rules), observation)

    @staticmethod
    def split(flagged: DataFrame) -> tuple[DataFrame, DataFrame]:
        """Valid and invalid rows of a flagged DataFrame (invalid ones gain ``dq_reason``)."""
        is_invalid = F.size(F.col(FAILED_RULES)) > 0
        valid = flagged.where(~is_invalid).drop(FAILED_RULES)
        invalid = flagged.where(is_invalid).withColumn(REASON, F.col(FAILED_RULES)[0])
        return valid, invalid

    def validate(self, df: DataFrame) -> tuple[DataFrame, DataFrame, QualityMetrics]:
        """``(valid_df, invalid_df, metrics)``; see the module docstring."""
        observed, metrics = self.observe(df)
        valid, invalid = self.split(observed)
        return valid, invalid, metrics
