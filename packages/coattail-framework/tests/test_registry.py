"""ModuleRegistry: entry-point discovery in a clean venv, hand registration and every error case."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from coattail_devstack.testing.venv import HEAVY_DISTRIBUTIONS, clean_venv, installed_distributions
from coattail_framework.config.model import CoattailConfig
from coattail_framework.detector import BaseDetector
from coattail_framework.errors import ConfigError, PluginError
from coattail_framework.registry import CONNECTOR_GROUP, DETECTOR_GROUP, DETECTOR_INFO_GROUP, ModuleRegistry

FRAMEWORK_DIR = Path(__file__).resolve().parents[1]
TEST_PLUGIN_DIR = Path(__file__).resolve().parent / "fixtures" / "coattail-test-plugin"
KINESIS_DIR = FRAMEWORK_DIR.parent / "coattail-kinesis"
"""The framework depends on coattail-kinesis (ADR-030), a sibling no package index holds."""

PLUGIN_MODULES = {
    "good_plugin": """
        from pydantic import BaseModel, Field
        from coattail_framework.detector import BaseDetector
        from coattail_framework.partitioning import day
        from coattail_framework.plugins import AlertType, DetailField, DetectorInfo

        INFO = DetectorInfo("MOD-901", "good", "small", (AlertType("good", (DetailField("n", "integer"),)),))
        LARGE = DetectorInfo("MOD-903", "later", "large", (AlertType("later", ()),))
        WRONG = DetectorInfo("MOD-999", "good", "small", (AlertType("good", ()),))

        class Settings(BaseModel):
            model_config = {"extra": "forbid"}
            min_usd: float = Field(100.0, gt=0)

        class GoodDetector(BaseDetector[Settings]):
            info = INFO
            module_id = INFO.module_id
            module_name = INFO.module_name
            alert_types = INFO.alert_type_names
            output_table = "good_rows"
            output_schema = None
            partition_spec = (day("timestamp"),)
            config_model = Settings

            def process(self, events):
                return events

            def build_alerts(self, output):
                return output

        class Impostor:
            module_name = "impostor"

        class Incomplete(BaseDetector[Settings]):
            module_id = "MOD-902"
            module_name = "incomplete"
            config_model = Settings
    """,
    "broken_plugin": """
        import a_dependency_that_is_not_installed
    """,
}


@pytest.fixture
def plugin_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, source in PLUGIN_MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in PLUGIN_MODULES:
        sys.modules.pop(name, None)


def _entry_points(mapping: dict[str, list[tuple[str, str]]]) -> object:
    def lookup(group: str) -> Iterable[EntryPoint]:
        return [EntryPoint(name, value, group) for name, value in mapping.get(group, [])]

    return lookup


def _config(**overrides: object) -> CoattailConfig:
    return CoattailConfig.model_validate(overrides)


GOOD_INFO = [("good", "good_plugin:INFO")]
GOOD = {DETECTOR_INFO_GROUP: GOOD_INFO, DETECTOR_GROUP: [("good", "good_plugin:GoodDetector")]}


def test_discovers_and_configures_an_entry_point_plugin(plugin_modules: None) -> None:
    registry = ModuleRegistry(_entry_points(GOOD))
    registry.discover()
    assert list(registry.detectors) == ["good"]
    assert registry.detector_infos["good"].tier == "small"
    (detector,) = registry.get_active_detectors(_config(modules={"good": {"min_usd": 5}}))
    assert detector.module_id == "MOD-901"
    assert detector.settings.min_usd == 5


def test_active_module_not_installed_names_the_distribution(plugin_modules: None) -> None:
    registry = ModuleRegistry(_entry_points({DETECTOR_INFO_GROUP: GOOD_INFO})).discover()
    with pytest.raises(PluginError) as error:
        registry.get_active_detectors(_config())
    assert str(error.value) == (
        "detector 'good' is configured but not installed: pip install coattail-detector-good "
        "(it must publish entry point 'good' in group coattail.detectors)"
    )


def test_plugin_that_fails_to_import_is_reported_with_its_error(
    plugin_modules: None, caplog: pytest.LogCaptureFixture
) -> None:
    registry = ModuleRegistry(
        _entry_points({DETECTOR_INFO_GROUP: GOOD_INFO, DETECTOR_GROUP: [("good", "broken_plugin:Detector")]})
    ).discover()
    (failure,) = registry.failures
    assert failure.error == "ModuleNotFoundError: No module named 'a_dependency_that_is_not_installed'"
    assert "failed to load" in caplog.text
    with pytest.raises(PluginError, match=r"detector plugin 'good' .*a_dependency_that_is_not_installed"):
        registry.get_active_detectors(_config())


def test_class_of_the_wrong_kind_is_refused(plugin_modules: None) -> None:
    registry = ModuleRegistry(
        _entry_points(
            {
                DETECTOR_GROUP: [("impostor", "good_plugin:Impostor")],
                CONNECTOR_GROUP: [("good", "good_plugin:GoodDetector")],
            }
        )
    ).discover()
    assert registry.detectors == {}
    assert registry.connectors == {}
    assert sorted(f.error.split(":")[0] for f in registry.failures) == ["PluginError", "PluginError"]
    with pytest.raises(PluginError, match="not a BaseConnector subclass"):
        registry.get_connector("good")


def test_register_by_hand_and_refusals(plugin_modules: None) -> None:
    import good_plugin

    registry = ModuleRegistry(_entry_points({}))
    registry.register(good_plugin.GoodDetector)
    assert list(registry.detectors) == ["good"]
    with pytest.raises(PluginError, match="neither a BaseDetector nor a BaseConnector"):
        registry.register(good_plugin.Impostor)


def test_subclass_missing_abstract_methods_cannot_be_instantiated(plugin_modules: None) -> None:
    import good_plugin

    with pytest.raises(TypeError, match="abstract"):
        good_plugin.Incomplete()
    assert issubclass(good_plugin.GoodDetector, BaseDetector)


def test_bad_module_settings_name_the_key_path(plugin_modules: None) -> None:
    registry = ModuleRegistry(_entry_points(GOOD)).discover()
    with pytest.raises(ConfigError) as error:
        registry.get_active_detectors(_config(modules={"good": {"min_usd": -5}}))
    assert str(error.value) == "defaults: modules.good.min_usd input should be greater than 0, got -5"


def test_disabled_module_is_not_built(plugin_modules: None) -> None:
    registry = ModuleRegistry(_entry_points(GOOD)).discover()
    assert registry.get_active_detectors(_config(modules={"good": {"enabled": False}})) == []
    assert registry.get_active_detectors(_config(disabled_modules=["good"])) == []


def test_clean_venv_finds_exactly_the_installed_plugin(tmp_path: Path) -> None:
    python = clean_venv(tmp_path / "venv", KINESIS_DIR, FRAMEWORK_DIR, TEST_PLUGIN_DIR)
    assert installed_distributions(python) & HEAVY_DISTRIBUTIONS == set()  # the core: no Spark, Iceberg, Arrow
    probe = (
        "import json; from coattail_framework import ModuleRegistry; r = ModuleRegistry().discover(); "
        "print(json.dumps({'detectors': sorted(r.detectors), 'infos': sorted(r.detector_infos), "
        "'connectors': sorted(r.connectors), 'failures': [f.describe() for f in r.failures]}))"
    )
    result = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True)
    assert json.loads(result.stdout) == {
        "detectors": ["big-fill"],
        "infos": ["big-fill"],
        "connectors": ["echo"],
        "failures": [],
    }
    pyspark = subprocess.run([str(python), "-c", "import pyspark"], capture_output=True, text=True)
    assert pyspark.returncode != 0, "the framework core must import without PySpark"


def test_feature_tier_selects_declared_tiers_at_or_below_it(plugin_modules: None) -> None:
    registry = ModuleRegistry(_entry_points({DETECTOR_INFO_GROUP: [*GOOD_INFO, ("later", "good_plugin:LARGE")]}))
    assert registry.active_modules(_config()) == ["good"]
    assert registry.active_modules(_config(feature_tier="medium")) == ["good"]
    assert registry.active_modules(_config(feature_tier="large")) == ["good", "later"]
    assert registry.active_modules(_config(feature_tier="large", disabled_modules=["good"])) == ["later"]


def test_each_group_is_loaded_only_when_asked_for(plugin_modules: None) -> None:
    asked: list[str] = []
    lookup = _entry_points({**GOOD, CONNECTOR_GROUP: []})

    def spying(group: str) -> Iterable[EntryPoint]:
        asked.append(group)
        return lookup(group)  # type: ignore[operator,no-any-return]

    registry = ModuleRegistry(spying)
    assert registry.active_modules(_config()) == ["good"]
    assert registry.connectors == {}
    assert asked == [DETECTOR_INFO_GROUP, CONNECTOR_GROUP]
    registry.get_active_detectors(_config())
    assert asked == [DETECTOR_INFO_GROUP, CONNECTOR_GROUP, DETECTOR_GROUP]


def test_a_class_that_disagrees_with_its_declaration_is_refused(plugin_modules: None) -> None:
    registry = ModuleRegistry(
        _entry_points({DETECTOR_INFO_GROUP: [("good", "good_plugin:WRONG")], DETECTOR_GROUP: GOOD[DETECTOR_GROUP]})
    )
    with pytest.raises(PluginError, match=r"detector 'good': its class declares .*'MOD-901'.* 'MOD-999'"):
        registry.get_active_detectors(_config())


def test_a_declaration_under_another_name_is_refused(plugin_modules: None) -> None:
    registry = ModuleRegistry(_entry_points({DETECTOR_INFO_GROUP: [("other", "good_plugin:INFO")]}))
    assert registry.detector_infos == {}
    (failure,) = registry.failures
    assert "declares module_name 'good'" in failure.error


def test_a_detector_class_missing_a_declaration_is_refused(plugin_modules: None) -> None:
    registry = ModuleRegistry(_entry_points({DETECTOR_GROUP: [("incomplete", "good_plugin:Incomplete")]}))
    assert registry.detectors == {}
    (failure,) = registry.failures
    assert "Incomplete does not declare ['alert_types', 'output_table', 'output_schema', 'partition_spec']" in (
        failure.error
    )
