"""Contract tests every plugin's suite inherits: subclass, set the class attributes, done.

``DetectorContract`` checks what the platform relies on: the detector is found through its
entry point, its light declaration (``coattail.detector_info``, ``DetectorInfo``) imports
without PySpark and agrees with the class, the contract is declared as class attributes,
the config model is ``<Name>Config``, strict and valid with its defaults, the output has
the declared schema and partitioning, and the alerts built from sample output rows carry
``BASE_ALERT_RECORD`` columns and ``details`` payloads that match the declared schema.
The Spark checks use the ``spark`` fixture (``coattail_devstack.testing.fixtures``).

Example (``tests/test_contract.py`` of a detector package)::

    class TestBigFillContract(DetectorContract):
        detector_class = BigFillDetector
        alerting_rows = ({"exchange": "binance", "symbol": "BTCUSDT", "quote_volume": 2e6, ...},)

``ConnectorContract`` does the same for a connector (entry point, settings model,
``normalize`` on its bundled sample, not healthy before ``connect``, a plain install pulls
none of ``HEAVY_DISTRIBUTIONS``); see its docstring.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from coattail_devstack.testing.venv import (
    HEAVY_DISTRIBUTIONS,
    clean_venv,
    imported_after,
    installed_distributions,
    monorepo_root,
)
from coattail_framework.config.model import CoattailConfig
from coattail_framework.connector import BaseConnector
from coattail_framework.detector import DECLARATIONS, BaseDetector
from coattail_framework.errors import ConfigError
from coattail_framework.plugins import DetectorInfo
from coattail_framework.registry import CONNECTOR_GROUP, DETECTOR_GROUP, DETECTOR_INFO_GROUP, ModuleRegistry

UNKNOWN_KEY = "not_a_setting_of_this_module"


def _entry_point(group: str, name: str) -> importlib.metadata.EntryPoint:
    found = importlib.metadata.entry_points(group=group, name=name)
    assert found, f"no entry point {name!r} in group {group}: is the distribution installed (pip install -e)?"
    (entry_point,) = found
    return entry_point


class DetectorContract:
    """Base class of a detector's contract tests (not collected itself: its name has no ``Test``).

    Set ``detector_class``; ``config`` (``CoattailConfig`` fields, e.g. ``symbols``) when the
    detector needs more than defaults to configure; ``alerting_rows``: rows of
    ``output_schema`` (dicts, missing columns null) that the default settings alert on.
    """

    detector_class: ClassVar[type[BaseDetector]]  # type: ignore[type-arg]
    config: ClassVar[Mapping[str, Any]] = {}
    alerting_rows: ClassVar[Sequence[Mapping[str, Any]]] = ()

    @property
    def info(self) -> DetectorInfo:
        return self.detector_class.info

    def configured(self, settings: Mapping[str, Any] | None = None) -> BaseDetector:  # type: ignore[type-arg]
        """A new detector configured from ``config`` with ``modules.<name>`` = ``settings``."""
        modules = {self.info.module_name: dict(settings or {})}
        detector = self.detector_class()
        detector.configure(CoattailConfig.model_validate({**self.config, "modules": modules}))
        return detector

    def test_the_entry_point_loads_the_class(self) -> None:
        assert _entry_point(DETECTOR_GROUP, self.info.module_name).load() is self.detector_class
        assert ModuleRegistry().get_detector(self.info.module_name) is self.detector_class

    def test_the_declaration_is_published_under_the_same_name(self) -> None:
        assert _entry_point(DETECTOR_INFO_GROUP, self.info.module_name).load() is self.info
        assert ModuleRegistry().get_detector_info(self.info.module_name) is self.info

    def test_the_declaration_imports_without_pyspark(self) -> None:
        probe = (
            "import importlib.metadata, json, sys\n"
            f"(ep,) = importlib.metadata.entry_points(group={DETECTOR_INFO_GROUP!r}, name={self.info.module_name!r})\n"
            "info = ep.load()\n"
            "print(json.dumps([info.module_id, sorted(m for m in sys.modules if m.split('.')[0] == 'pyspark')]))\n"
        )
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)  # noqa: S603
        assert json.loads(result.stdout) == [self.info.module_id, []]

    def test_the_class_agrees_with_its_declaration(self) -> None:
        cls = self.detector_class
        assert (cls.module_id, cls.module_name, tuple(cls.alert_types)) == (
            self.info.module_id,
            self.info.module_name,
            self.info.alert_type_names,
        )

    def test_the_contract_is_declared_as_class_attributes(self) -> None:
        assert self.detector_class.missing_declarations() == []
        properties = [
            name
            for name in (*DECLARATIONS, "info")
            if isinstance(inspect.getattr_static(self.detector_class, name), property)
        ]
        assert properties == [], "declare these as class attributes, not properties"

    def test_the_config_model_is_named_and_strict(self) -> None:
        model: type[BaseModel] = self.detector_class.config_model
        assert model.__name__.endswith("Config"), f"name the config model <Name>Config, not {model.__name__}"
        assert model.model_config.get("extra") == "forbid"
        assert "enabled" not in model.model_fields, "modules.<name>.enabled is the platform's, not the module's"

    def test_the_config_model_accepts_its_defaults(self) -> None:
        assert self.configured().settings == self.detector_class.config_model()

    def test_an_unknown_key_is_refused_naming_its_path(self) -> None:
        with pytest.raises(ConfigError) as raised:
            self.configured({UNKNOWN_KEY: 1})
        assert f"modules.{self.info.module_name}.{UNKNOWN_KEY} extra inputs are not permitted" in str(raised.value)

    def test_the_platform_enabled_key_is_not_a_setting(self) -> None:
        assert self.configured({"enabled": True}).settings == self.detector_class.config_model()

    def test_the_output_has_the_declared_schema_and_partitioning(self, spark: Any) -> None:
        from coattail_framework.schemas import UNIFIED_TRADE_EVENT

        output = self.configured().process(spark.createDataFrame([], UNIFIED_TRADE_EVENT))
        assert output.schema == self.detector_class.output_schema
        columns = set(self.detector_class.output_schema.fieldNames())
        assert {field.source for field in self.detector_class.partition_spec} <= columns
        assert self.detector_class.output_table

    def test_alerts_have_the_alert_record_columns(self, spark: Any) -> None:
        from coattail_framework.schemas import BASE_ALERT_RECORD

        empty = spark.createDataFrame([], self.detector_class.output_schema)
        assert self.configured().build_alerts(empty).columns == BASE_ALERT_RECORD.fieldNames()

    def test_alert_payloads_match_the_declared_schema(self, spark: Any) -> None:
        assert self.alerting_rows, "set alerting_rows: output rows the default settings alert on"
        schema = self.detector_class.output_schema
        rows = [tuple(row.get(name) for name in schema.fieldNames()) for row in self.alerting_rows]
        alerts = self.configured().build_alerts(spark.createDataFrame(rows, schema)).collect()
        assert alerts, "the alerting_rows raised no alert"
        declared = {alert_type.name: alert_type for alert_type in self.info.alert_types}
        for alert in alerts:
            assert alert.module_id == self.info.module_id
            assert alert.alert_type in declared
            problems = declared[alert.alert_type].details_problems(json.loads(alert.details))
            assert problems == [], f"{alert.alert_type} details disagree with the declaration: {problems}"


class ConnectorContract:
    """Base class of a connector's contract tests (not collected itself).

    Set ``connector_class``, ``entry_point`` (its name in ``coattail.connectors``) and
    ``settings`` (a valid settings mapping, default none), and define a ``connector_samples``
    fixture: decoded messages from the package's bundled recording, as the venue sends them.
    """

    connector_class: ClassVar[type[BaseConnector]]
    entry_point: ClassVar[str]
    settings: ClassVar[Mapping[str, Any]] = {}

    def connector(self) -> BaseConnector:
        return self.connector_class(settings=dict(self.settings))  # type: ignore[call-arg]

    def test_the_entry_point_loads_the_class(self) -> None:
        assert _entry_point(CONNECTOR_GROUP, self.entry_point).load() is self.connector_class
        assert ModuleRegistry().get_connector(self.entry_point) is self.connector_class

    def test_it_builds_with_defaults_and_refuses_unknown_settings(self) -> None:
        assert isinstance(self.connector_class(), BaseConnector)
        with pytest.raises(Exception, match=UNKNOWN_KEY):
            self.connector_class(settings={**self.settings, UNKNOWN_KEY: 1})  # type: ignore[call-arg]

    def test_its_bundled_sample_normalises_to_trade_events(self, connector_samples: Sequence[Any]) -> None:
        from coattail_framework.events import TradeEvent

        connector = self.connector()
        events = [event for message in connector_samples for event in connector.normalize(message)]
        assert events, "the sample normalised to no trade"
        assert all(isinstance(event, TradeEvent) for event in events)
        assert len({event.event_id for event in events}) == len(events)

    def test_it_is_not_healthy_before_it_connects(self) -> None:
        assert self.connector().health_check() is False

    def test_a_plain_install_pulls_no_spark_iceberg_arrow_moto_or_test_kit(self, tmp_path: Path) -> None:
        """``pip install`` of the connector (with the framework it needs) into an empty venv stays light.

        The connector's distribution is the folder above the subclass's ``tests/``; it must pull
        none of ``HEAVY_DISTRIBUTIONS`` and load its entry point without importing them.
        """
        suite = Path(inspect.getfile(type(self)))
        root = monorepo_root(suite)
        package = suite.resolve().parents[1]
        python = clean_venv(
            tmp_path / "venv", package, root / "packages/coattail-framework", root / "packages/coattail-kinesis"
        )
        assert installed_distributions(python) & HEAVY_DISTRIBUTIONS == set()
        load = (
            "from importlib.metadata import entry_points\n"
            f"(point,) = [p for p in entry_points(group={CONNECTOR_GROUP!r}) if p.name == {self.entry_point!r}]\n"
            "point.load()"
        )
        assert imported_after(python, load) & {name.replace("-", "_") for name in HEAVY_DISTRIBUTIONS} == set()
