"""What a detector plugin declares about itself, readable without PySpark (ADR-031).

Each detector distribution publishes, beside its class (group ``coattail.detectors``), a
``DetectorInfo`` under the light group ``coattail.detector_info`` with the same name. The
info states the module's id, its feature tier and every alert type it emits with the keys
and JSON types of that type's ``details`` payload. The platform reads only these: the
configuration selects modules by tier (``select_modules``), the API serves and describes
alert types, the producer never looks at detectors. The info module must import nothing
but this one (no PySpark, no pydantic settings that pull it in): the API process loads it.

Example (``coattail_detector_big_fill/metadata.py``)::

    BIG_FILL = DetectorInfo(
        module_id="MOD-900",
        module_name="big-fill",
        tier="small",
        alert_types=(
            AlertType(
                "big_fill",
                details=(DetailField("notional", "number"), DetailField("fill_count", "integer")),
                view=AlertView(path="big-fills", kind="listing", min_filter="notional"),
            ),
        ),
    )

and in its ``pyproject.toml``::

    [project.entry-points."coattail.detector_info"]
    big-fill = "coattail_detector_big_fill.metadata:BIG_FILL"
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

Tier = Literal["small", "medium", "large"]
TIERS: tuple[Tier, ...] = get_args(Tier)
"""Feature tiers from smallest to largest; a tier includes every module of the smaller ones."""

DetailType = Literal["string", "number", "integer", "boolean", "timestamp"]
"""JSON type of one ``details`` value. ``timestamp``: an ISO 8601 string (Spark's ``to_json``)."""

AlertViewKind = Literal["listing", "latest_per_pair", "latest_per_key"]

_ALERT_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_MODULE_ID = re.compile(r"^[A-Z][A-Z0-9]{0,15}-[0-9]{3,8}$")
_MODULE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_PATH = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


@dataclass(frozen=True)
class DetailField:
    """One key of an alert's ``details`` JSON object; ``null`` (or absent) is allowed when ``nullable``."""

    name: str
    type: DetailType
    nullable: bool = True

    def accepts(self, value: object) -> bool:
        """Whether ``value`` (decoded from JSON) is of this field's type."""
        if value is None:
            return self.nullable
        if self.type in ("string", "timestamp"):
            return isinstance(value, str)
        if self.type == "boolean":
            return isinstance(value, bool)
        if self.type == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class AlertView:
    """A route of its own the alert API serves for one alert type (``GET /<path>``).

    ``listing``: the type's alerts newest first, paged like ``/alerts``, optionally only those
    whose numeric ``details[min_filter]`` is at least the ``min_<min_filter>`` parameter.
    ``latest_per_pair``: for one canonical ``BASE/QUOTE`` symbol, the latest alert of each
    venue pair (the alert's ``exchange`` is ``exchange_a|exchange_b``).
    ``latest_per_key``: for one venue symbol, the latest alert of each distinct combination
    of the ``details`` values named by ``key`` (e.g. MOD-008's cohort statistics per
    exchange, side, notional bucket and horizon), latest first.
    """

    path: str
    kind: AlertViewKind
    min_filter: str | None = None
    key: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertType:
    """One ``alert_type`` value a detector emits and the schema of its ``details`` payload."""

    name: str
    details: tuple[DetailField, ...]
    view: AlertView | None = None

    def __post_init__(self) -> None:
        if not _ALERT_TYPE.match(self.name):
            raise ValueError(f"alert type {self.name!r} must be lower-case letters, digits and underscores")
        names = [field.name for field in self.details]
        if len(set(names)) != len(names):
            raise ValueError(f"alert type {self.name!r} declares a details key twice: {names}")
        view = self.view
        if view is not None:
            if not _PATH.match(view.path):
                raise ValueError(f"alert type {self.name!r}: view path {view.path!r} must be one lower-case segment")
            if (view.kind == "latest_per_key") != bool(view.key):
                raise ValueError(
                    f"alert type {self.name!r}: a view has key fields exactly when its kind is latest_per_key"
                )
            missing = [name for name in view.key if self.field(name) is None]
            if missing:
                raise ValueError(f"alert type {self.name!r}: view key {missing} names undeclared details keys")
            if view.min_filter is not None:
                field = self.field(view.min_filter)
                if view.kind != "listing" or field is None or field.type not in ("number", "integer"):
                    raise ValueError(
                        f"alert type {self.name!r}: min_filter {view.min_filter!r} must name a numeric "
                        "details key of a listing view"
                    )

    def field(self, name: str) -> DetailField | None:
        """The declared ``details`` key ``name``, or None."""
        return next((field for field in self.details if field.name == name), None)

    @property
    def details_schema(self) -> dict[str, str]:
        """``{key: JSON type}`` of the ``details`` payload, in declaration order."""
        return {field.name: field.type for field in self.details}

    def details_problems(self, details: Mapping[str, object]) -> list[str]:
        """What in a decoded ``details`` object disagrees with the declaration (empty: it matches).

        A nullable key may be absent: Spark's ``to_json`` leaves null fields out."""
        problems = [
            f"missing key {field.name!r}" for field in self.details if field.name not in details and not field.nullable
        ]
        problems += [f"undeclared key {key!r}" for key in details if self.field(key) is None]
        problems += [
            f"{field.name!r} should be {field.type}{' or null' if field.nullable else ''}, got {details[field.name]!r}"
            for field in self.details
            if field.name in details and not field.accepts(details[field.name])
        ]
        return problems


@dataclass(frozen=True)
class DetectorInfo:
    """A detector's declaration: its id, entry-point name, feature tier and alert types."""

    module_id: str
    module_name: str
    tier: Tier
    alert_types: tuple[AlertType, ...]

    def __post_init__(self) -> None:
        if not _MODULE_ID.match(self.module_id):
            raise ValueError(f"module_id {self.module_id!r} must look like an upper-case prefix, '-' and digits")
        if not _MODULE_NAME.match(self.module_name):
            raise ValueError(f"module_name {self.module_name!r} must be lower-case letters, digits and dashes")
        if self.tier not in TIERS:
            raise ValueError(f"{self.module_name}: tier {self.tier!r} is not one of {', '.join(TIERS)}")
        if not self.alert_types:
            raise ValueError(f"{self.module_name}: declares no alert type")

    @property
    def alert_type_names(self) -> tuple[str, ...]:
        """The ``alert_type`` values, in declaration order (``BaseDetector.alert_types``)."""
        return tuple(alert_type.name for alert_type in self.alert_types)


def tier_rank(tier: str) -> int:
    """0 for ``small``, 1 for ``medium``, 2 for ``large``."""
    return TIERS.index(tier)


def select_modules(
    infos: Iterable[DetectorInfo],
    feature_tier: str,
    disabled: Iterable[str] = (),
    modules: Mapping[str, Mapping[str, object]] | None = None,
) -> list[str]:
    """Module names to run: tier at or below ``feature_tier`` or ``modules.<name>.enabled: true``
    (one module switched on above the tier), minus ``disabled`` and ``modules.<name>.enabled:
    false``; smallest tier first, then by module id."""
    sections = modules or {}
    off = set(disabled) | {name for name, section in sections.items() if section.get("enabled", True) is False}
    on = {name for name, section in sections.items() if section.get("enabled") is True}
    chosen = [
        info
        for info in infos
        if (tier_rank(info.tier) <= tier_rank(feature_tier) or info.module_name in on) and info.module_name not in off
    ]
    return [info.module_name for info in sorted(chosen, key=lambda info: (tier_rank(info.tier), info.module_id))]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` (PEP 562): ``name`` from ``package.<exports[name]>`` on first use.

    A plugin package's ``__init__`` stays light (its ``metadata`` declaration is read by
    processes without PySpark) while ``from package import Detector`` still works::

        _LAZY = {"BigFillDetector": "detector", "BigFillConfig": "config"}
        __all__ = [*_LAZY]
        __getattr__ = lazy_exports(__name__, _LAZY)
    """

    def exported(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return exported
