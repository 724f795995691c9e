"""Find connector and detector plugins and build the active detectors.

Three entry-point groups, each loaded only when first asked for (ADR-031):

- ``coattail.connectors``: connector classes (name = venue connector id, e.g. ``binance``);
  the producer loads only these.
- ``coattail.detector_info``: each detector's ``DetectorInfo`` (tier, alert types and their
  ``details`` schema), light modules without PySpark; configuration (which modules a
  ``feature_tier`` selects) and the alert API read only these.
- ``coattail.detectors``: detector classes (name = module name, the same as its info's);
  the stream job loads them.

Published by separately installed distributions; the framework names none of them.

Example::

    registry = ModuleRegistry()
    registry.active_modules(config)                 # names, from the light declarations
    detectors = registry.get_active_detectors(config)   # configured instances (imports PySpark)

A plugin that fails to import is recorded with its error and logged; asking for it (or
for an active module that is not installed) raises ``PluginError`` naming the
distribution to install. A class that does not subclass the right base, or a detector
whose class disagrees with its declaration, is refused.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from coattail_framework.connector import BaseConnector
from coattail_framework.detector import BaseDetector
from coattail_framework.errors import PluginError
from coattail_framework.plugins import DetectorInfo, select_modules

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

LOG = logging.getLogger(__name__)

CONNECTOR_GROUP = "coattail.connectors"
DETECTOR_GROUP = "coattail.detectors"
DETECTOR_INFO_GROUP = "coattail.detector_info"
PluginKind = Literal["connector", "detector", "detector_info"]
_GROUPS: dict[PluginKind, str] = {
    "connector": CONNECTOR_GROUP,
    "detector": DETECTOR_GROUP,
    "detector_info": DETECTOR_INFO_GROUP,
}
_BASES: dict[PluginKind, type] = {"connector": BaseConnector, "detector": BaseDetector, "detector_info": DetectorInfo}

EntryPointsFn = Callable[[str], Iterable[importlib.metadata.EntryPoint]]


def _entry_points(group: str) -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=group)


def distribution_name(kind: PluginKind, name: str) -> str:
    """The conventional distribution of a plugin: ``coattail-detector-<name>``."""
    return f"coattail-{'connector' if kind == 'connector' else 'detector'}-{name}"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that is installed but could not be loaded."""

    kind: PluginKind
    name: str
    entry_point: str
    distribution: str
    error: str

    def describe(self) -> str:
        """One line: what failed, where it comes from and why."""
        return (
            f"{self.kind} plugin {self.name!r} ({self.entry_point}, from {self.distribution}) "
            f"failed to load: {self.error}"
        )


class ModuleRegistry:
    """Connector classes, detector declarations and detector classes by name.

    Each group is read from its entry points the first time it is needed (or by
    ``discover``); ``register`` adds plugins by hand.
    """

    def __init__(self, entry_points: EntryPointsFn = _entry_points) -> None:
        self._entry_points = entry_points
        self._loaded: dict[PluginKind, dict[str, object]] = {}
        self._registered: dict[PluginKind, dict[str, object]] = {kind: {} for kind in _GROUPS}
        self._failures: dict[tuple[PluginKind, str], PluginFailure] = {}

    @property
    def connectors(self) -> dict[str, type[BaseConnector]]:
        """Connector classes by entry-point name (loads only the connector group)."""
        return self._group("connector")  # type: ignore[return-value]

    @property
    def detectors(self) -> dict[str, type[BaseDetector]]:  # type: ignore[type-arg]
        """Detector classes by module name (loads the detector classes: PySpark)."""
        return self._group("detector")  # type: ignore[return-value]

    @property
    def detector_infos(self) -> dict[str, DetectorInfo]:
        """Detector declarations by module name (light: no detector class is imported)."""
        return self._group("detector_info")  # type: ignore[return-value]

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that were found but could not be loaded (in the groups loaded so far)."""
        return list(self._failures.values())

    def discover(self, *kinds: PluginKind) -> ModuleRegistry:
        """Load the groups of ``kinds`` now (all three when none is given); failures are logged and kept."""
        for kind in kinds or tuple(_GROUPS):
            self._group(kind)
        return self

    def register(self, cls: type, name: str | None = None) -> None:
        """Add a connector or detector class by hand (tests, notebooks).

        A detector class that declares ``info`` registers that declaration too, so that
        ``feature_tier`` can select it.
        """
        kind: PluginKind
        if isinstance(cls, type) and issubclass(cls, BaseDetector):
            kind = "detector"
        elif isinstance(cls, type) and issubclass(cls, BaseConnector):
            kind = "connector"
        else:
            raise PluginError(f"{cls!r} is neither a BaseDetector nor a BaseConnector subclass")
        key = name or self._default_name(kind, cls)
        self._registered[kind][key] = cls
        info = getattr(cls, "info", None)
        if kind == "detector" and isinstance(info, DetectorInfo):
            self._registered["detector_info"][key] = info

    def get_connector(self, name: str) -> type[BaseConnector]:
        """The connector class published as ``name``; raises ``PluginError`` if unavailable."""
        return self._get("connector", name)  # type: ignore[return-value]

    def get_detector(self, name: str) -> type[BaseDetector]:  # type: ignore[type-arg]
        """The detector class published as ``name``; raises ``PluginError`` if unavailable."""
        return self._get("detector", name)  # type: ignore[return-value]

    def get_detector_info(self, name: str) -> DetectorInfo:
        """The declaration published as ``name``; raises ``PluginError`` if unavailable."""
        return self._get("detector_info", name)  # type: ignore[return-value]

    def active_modules(self, config: CoattailConfig) -> list[str]:
        """Module names ``config`` runs: installed detectors whose declared tier is at or below
        ``feature_tier``, minus ``disabled_modules`` and ``modules.<name>.enabled: false``."""
        return select_modules(
            self.detector_infos.values(), config.feature_tier, config.disabled_modules, config.modules
        )

    def get_active_detectors(self, config: CoattailConfig) -> list[BaseDetector]:  # type: ignore[type-arg]
        """Instantiated and configured detectors for ``active_modules(config)``, in order."""
        detectors = []
        for name in self.active_modules(config):
            cls = self.get_detector(name)
            self._check_declaration(name, cls, self.get_detector_info(name))
            detector = cls()
            detector.configure(config)
            detectors.append(detector)
        return detectors

    @staticmethod
    def _check_declaration(name: str, cls: type[BaseDetector], info: DetectorInfo) -> None:  # type: ignore[type-arg]
        """Refuse a detector class that disagrees with the declaration published beside it."""
        declared = (info.module_name, info.module_id, info.alert_type_names)
        found = (cls.module_name, cls.module_id, tuple(cls.alert_types))
        if declared != found:
            raise PluginError(
                f"detector {name!r}: its class declares (module_name, module_id, alert_types) {found}, "
                f"its {DETECTOR_INFO_GROUP} entry point {declared}; make them agree"
            )

    def _group(self, kind: PluginKind) -> dict[str, object]:
        if kind not in self._loaded:
            self._loaded[kind] = self._load(kind)
        return {**self._loaded[kind], **self._registered[kind]}

    def _load(self, kind: PluginKind) -> dict[str, object]:
        loaded: dict[str, object] = {}
        for entry_point in self._entry_points(_GROUPS[kind]):
            distribution = entry_point.dist.name if entry_point.dist else distribution_name(kind, entry_point.name)
            try:
                plugin = entry_point.load()
                self._check(kind, entry_point.name, plugin)
            except Exception as error:  # noqa: BLE001 - any import error is reported, not raised here
                failure = PluginFailure(
                    kind, entry_point.name, entry_point.value, distribution, f"{type(error).__name__}: {error}"
                )
                self._failures[(kind, entry_point.name)] = failure
                LOG.error("%s", failure.describe())
                continue
            loaded[entry_point.name] = plugin
        return loaded

    def _get(self, kind: PluginKind, name: str) -> object:
        plugins = self._group(kind)
        if name in plugins:
            return plugins[name]
        if (failure := self._failures.get((kind, name))) is not None:
            raise PluginError(failure.describe())
        what = "connector" if kind == "connector" else "detector"
        raise PluginError(
            f"{what} {name!r} is configured but not installed: pip install {distribution_name(kind, name)} "
            f"(it must publish entry point {name!r} in group {_GROUPS[kind]})"
        )

    @staticmethod
    def _check(kind: PluginKind, name: str, loaded: object) -> None:
        base = _BASES[kind]
        if kind == "detector_info":
            if not isinstance(loaded, DetectorInfo):
                raise PluginError(f"entry point {name!r} in {_GROUPS[kind]} is {loaded!r}, not a DetectorInfo")
            if loaded.module_name != name:
                raise PluginError(
                    f"entry point {name!r} in {_GROUPS[kind]} declares module_name {loaded.module_name!r}"
                )
        elif not (isinstance(loaded, type) and issubclass(loaded, base)):
            raise PluginError(f"entry point {name!r} in {_GROUPS[kind]} is {loaded!r}, not a {base.__name__} subclass")
        elif issubclass(loaded, BaseDetector) and (missing := loaded.missing_declarations()):
            raise PluginError(f"entry point {name!r} in {_GROUPS[kind]}: {loaded.__name__} does not declare {missing}")

    @staticmethod
    def _default_name(kind: PluginKind, cls: type) -> str:
        name = getattr(cls, "module_name", None) if kind == "detector" else getattr(cls, "default_exchange", None)
        if not isinstance(name, str):
            raise PluginError(f"{cls.__name__} declares no name; pass register(cls, name=...)")
        return name
