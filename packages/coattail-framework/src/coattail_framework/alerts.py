"""Alert ids and severities: the pure functions every detector shares.

An alert id is a hash of the module id and the fields that identify the finding (the
window, the order, the pair), never of wall-clock time, so replaying the same trades gives
the same id and the DynamoDB conditional put turns a replay into a no-op. The Python and
the Spark forms give the same id for the same parts.

Example::

    >>> make_alert_id("MOD-900", "binance", "BTCUSDT", "1723161244123", "buy")
    '81387b007119a1775a284b729d3e050a'
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from typing import TypedDict, Unpack

from pydantic import BaseModel, ConfigDict, model_validator
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_framework.schemas import BASE_ALERT_RECORD, SEVERITIES

ALERT_ID_HEX_CHARS = 32
_SEPARATOR = "|"


def make_alert_id(module_id: str, *parts: str) -> str:
    """Deterministic alert id: the first 32 hex characters of SHA-256 over the parts."""
    digest = hashlib.sha256(_SEPARATOR.join((module_id, *parts)).encode("utf-8")).hexdigest()
    return digest[:ALERT_ID_HEX_CHARS]


def alert_id_column(module_id: str, *parts: Column) -> Column:
    """The Spark form of ``make_alert_id``: parts are cast to strings (null as empty)."""
    pieces = [F.lit(module_id), *(F.coalesce(p.cast("string"), F.lit("")) for p in parts)]
    return F.substring(F.sha2(F.concat_ws(_SEPARATOR, *pieces), 256), 1, ALERT_ID_HEX_CHARS)


class SeverityTiers(BaseModel):
    """Lower bounds of each severity: a value strictly above a bound earns that severity.

    Bounds left unset skip the severity. Bounds must grow from ``low`` to ``critical``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | None = None
    medium: float | None = None
    high: float | None = None
    critical: float | None = None

    @model_validator(mode="after")
    def _increasing(self) -> SeverityTiers:
        bounds = self.ordered()
        for (lower_name, lower), (upper_name, upper) in itertools.pairwise(bounds):
            if upper <= lower:
                raise ValueError(f"{upper_name} ({upper}) must be greater than {lower_name} ({lower})")
        if not bounds:
            raise ValueError("at least one severity bound must be set")
        return self

    def ordered(self) -> list[tuple[str, float]]:
        """The set bounds, mildest first."""
        return [(name, value) for name in SEVERITIES if (value := getattr(self, name)) is not None]

    @property
    def threshold(self) -> float:
        """The alerting threshold: the mildest bound."""
        return self.ordered()[0][1]

    def classify(self, value: float) -> str | None:
        """The severity of ``value``, or None when it is not above the mildest bound."""
        severity = None
        for name, bound in self.ordered():
            if value > bound:
                severity = name
        return severity

    def column(self, value: Column) -> Column:
        """The Spark form of ``classify``: null when below every bound."""
        expression = F.lit(None).cast("string")
        for name, bound in self.ordered():
            expression = F.when(value > F.lit(bound), F.lit(name)).otherwise(expression)
        return expression


def severity_rank(severity: str) -> int:
    """0 for ``low`` up to 3 for ``critical``; raises for an unknown severity."""
    return SEVERITIES.index(severity)


def as_parts(values: Sequence[object]) -> tuple[str, ...]:
    """Strings for ``make_alert_id`` (None becomes "", matching the Spark form)."""
    return tuple("" if value is None else str(value) for value in values)


class AlertSpec(TypedDict):
    """How a module's output rows become ``BASE_ALERT_RECORD`` columns (``alert_columns``, ``alert_frame``)."""

    module_id: str
    alert_type: str
    id_parts: Sequence[Column]
    symbol: Column
    exchange: Column
    severity: Column
    detected_at: Column
    message: Column
    details: Sequence[Column]


def alert_columns(**spec: Unpack[AlertSpec]) -> tuple[Column, ...]:
    """The ``BASE_ALERT_RECORD`` columns of ``alert_frame``, to build once and select on every batch (driver)."""
    columns = {
        "alert_id": alert_id_column(spec["module_id"], *spec["id_parts"]),
        "alert_type": F.lit(spec["alert_type"]),
        "module_id": F.lit(spec["module_id"]),
        "symbol": spec["symbol"],
        "exchange": spec["exchange"],
        "severity": spec["severity"],
        "detected_at": spec["detected_at"],
        "message": spec["message"],
        "ttl_epoch": F.lit(None).cast("long"),
        "details": F.to_json(F.struct(*spec["details"])),
    }
    return tuple(columns[field.name].cast(field.dataType).alias(field.name) for field in BASE_ALERT_RECORD)


def alert_frame(rows: DataFrame, **spec: Unpack[AlertSpec]) -> DataFrame:
    """``BASE_ALERT_RECORD`` rows from module output ``rows`` (driver; builds a plan).

    Rows whose ``severity`` is null (below every threshold) are dropped. ``details``
    columns are serialized as one JSON object; ``ttl_epoch`` is left null for the router.
    """
    return select_alerts(rows, alert_columns(**spec))


def select_alerts(rows: DataFrame, columns: Sequence[Column]) -> DataFrame:
    """``rows`` projected on ``alert_columns`` output, without the rows below every severity."""
    return rows.select(*columns).where(F.col("severity").isNotNull())
