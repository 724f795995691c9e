"""Find connector and detector plugins and build the active detectors.

Plugins are classes published under the entry-point groups ``coattail.connectors``
(name = venue connector id, e.g. ``binance``) and ``coattail.detectors`` (name = module
name, e.g. ``whale``) by separately installed distributions. Runs in the process that
needs them (producer or stream-job driver).

Example::

    registry = ModuleRegistry()
    registry.discover()
    detectors = registry.get_active_detectors(config)   # configured instances

A plugin that fails to import is recorded with its error and logged; asking for it (or
for an active module that is not installed) raises ``PluginError`` naming the
distribution to install. A class that does not subclass the right base is refused.
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

if TYPE_CHECKING:
    from coattail_framework.config.model import CoattailConfig

LOG = logging.getLogger(__name__)

CONNECTOR_GROUP = "coattail.connectors"
DETECTOR_GROUP = "coattail.detectors"
PluginKind = Literal["connector", "detector"]
_GROUPS: dict[PluginKind, str] = {"connector": CONNECTOR_GROUP, "detector": DETECTOR_GROUP}
_BASES: dict[PluginKind, type] = {"connector": BaseConnector, "detector": BaseDetector}

EntryPointsFn = Callable[[str], Iterable[importlib.metadata.EntryPoint]]


def _entry_points(group: str) -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=group)


def distribution_name(kind: PluginKind, name: str) -> str:
    """The conventional distribution of a plugin: ``coattail-detector-whale``."""
    return f"coattail-{kind}-{name}"


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
    """Connector and detector classes by name, discovered or registered by hand."""

    def __init__(self, entry_points: EntryPointsFn = _entry_points) -> None:
        self._entry_points = entry_points
        self._classes: dict[PluginKind, dict[str, type]] = {"connector": {}, "detector": {}}
        self._failures: dict[tuple[PluginKind, str], PluginFailure] = {}

    @property
    def connectors(self) -> dict[str, type[BaseConnector]]:
        """Connector classes by entry-point name."""
        return dict(self._classes["connector"])

    @property
    def detectors(self) -> dict[str, type[BaseDetector]]:  # type: ignore[type-arg]
        """Detector classes by module name."""
        return dict(self._classes["detector"])

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that were found but could not be loaded."""
        return list(self._failures.values())

    def discover(self) -> ModuleRegistry:
        """Load every plugin of both groups; failures are logged and kept, never dropped."""
        for kind, group in _GROUPS.items():
            for entry_point in self._entry_points(group):
                distribution = entry_point.dist.name if entry_point.dist else distribution_name(kind, entry_point.name)
                try:
                    loaded = entry_point.load()
                    self._check(kind, entry_point.name, loaded)
                except Exception as error:  # noqa: BLE001 - any import error is reported, not raised here
                    failure = PluginFailure(
                        kind, entry_point.name, entry_point.value, distribution, f"{type(error).__name__}: {error}"
                    )
                    self._failures[(kind, entry_point.name)] = failure
                    LOG.error("%s", failure.describe())
                    continue
                self._classes[kind][entry_point.name] = loaded
                self._failures.pop((kind, entry_point.name), None)
        return self

    def register(self, cls: type, name: str | None = None) -> None:
        """Add a connector or detector class by hand (tests, notebooks)."""
        kind: PluginKind
        if isinstance(cls, type) and issubclass(cls, BaseDetector):
            kind = "detector"
        elif isinstance(cls, type) and issubclass(cls, BaseConnector):
            kind = "connector"
        else:
            raise PluginError(f"{cls!r} is neither a BaseDetector nor a BaseConnector subclass")
        key = name or self._default_name(kind, cls)
        self._classes[kind][key] = cls

    def get_connector(self, name: str) -> type[BaseConnector]:
        """The connector class published as ``name``; raises ``PluginError`` if unavailable."""
        return self._get("connector", name)

    def get_detector(self, name: str) -> type[BaseDetector]:  # type: ignore[type-arg]
        """The detector class published as ``name``; raises ``PluginError`` if unavailable."""
        return self._get("detector", name)

    def get_active_detectors(self, config: CoattailConfig) -> list[BaseDetector]:  # type: ignore[type-arg]
        """Instantiated and configured detectors for ``config.active_modules``, in order."""
        detectors = []
        for name in config.active_modules:
            detector = self.get_detector(name)()
            if detector.module_name != name:
                raise PluginError(
                    f"detector entry point {name!r} loads a class whose module_name is {detector.module_name!r}"
                )
            detector.configure(config)
            detectors.append(detector)
        return detectors

    def _get(self, kind: PluginKind, name: str) -> type:
        if name in self._classes[kind]:
            return self._classes[kind][name]
        if (failure := self._failures.get((kind, name))) is not None:
            raise PluginError(failure.describe())
        raise PluginError(
            f"{kind} {name!r} is configured but not installed: pip install {distribution_name(kind, name)} "
            f"(it must publish entry point {name!r} in group {_GROUPS[kind]})"
        )

    @staticmethod
    def _check(kind: PluginKind, name: str, loaded: object) -> None:
        base = _BASES[kind]
        if not (isinstance(loaded, type) and issubclass(loaded, base)):
            raise PluginError(f"entry point {name!r} in {_GROUPS[kind]} is {loaded!r}, not a {base.__name__} subclass")

    @staticmethod
    def _default_name(kind: PluginKind, cls: type) -> str:
        name = getattr(cls, "module_name", None) if kind == "detector" else getattr(cls, "default_exchange", None)
        if not isinstance(name, str):
            raise PluginError(f"{cls.__name__} declares no name; pass register(cls, name=...)")
        return name
