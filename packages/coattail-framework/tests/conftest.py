"""Framework tests share one SparkSession and one moto server (the test kit's pytest plugin, coattail-devstack).

The framework's own nox session installs no detector plugin (the dev venv has them all), so
tests whose outcome depends on the installed modules' declarations use ``small_tier_declared``:
three Small-tier declarations named like the bundled detectors, and no others.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from coattail_framework.registry import DETECTOR_INFO_GROUP

DECLARED_MODULES = {"volume-anomaly": "MOD-001", "whale": "MOD-002", "spread": "MOD-003"}
"""Module name -> id of the declarations ``small_tier_declared`` installs (all tier ``small``)."""

_DECLARATIONS = """
from coattail_framework.plugins import AlertType, DetailField, DetectorInfo

def _info(module_id, module_name):
    alert = AlertType(module_name.replace("-", "_") + "_alert", details=(DetailField("value", "number"),))
    return DetectorInfo(module_id=module_id, module_name=module_name, tier="small", alert_types=(alert,))
"""


def _attribute(module_name: str) -> str:
    return module_name.replace("-", "_").upper()


@pytest.fixture
def small_tier_declared(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """``coattail.detector_info`` holds exactly ``DECLARED_MODULES`` (Small tier) for this test."""
    folder: Path = tmp_path_factory.mktemp("declarations")
    lines = [_DECLARATIONS] + [
        f"{name.replace('-', '_').upper()} = _info({module_id!r}, {name!r})"
        for name, module_id in DECLARED_MODULES.items()
    ]
    (folder / "small_tier_declarations.py").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(folder))
    real = importlib.metadata.entry_points

    def entry_points(**selection: Any) -> Iterable[importlib.metadata.EntryPoint] | Any:
        if selection.get("group") != DETECTOR_INFO_GROUP:
            return real(**selection)
        return [
            importlib.metadata.EntryPoint(name, f"small_tier_declarations:{_attribute(name)}", DETECTOR_INFO_GROUP)
            for name in DECLARED_MODULES
        ]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
