"""The contract of a detector plugin (entry-point group ``coattail.detectors``).

A detector turns the stream of valid trades (``UNIFIED_TRADE_EVENT`` rows) into its
module output rows and alerts. The stream job runs one streaming query per detector:
``process(events)`` builds the (stateful) plan on the driver; every micro-batch of its
output goes, on the driver, through ``build_alerts`` and then the alert router.

Example (a minimal stateless detector)::

    class BigFill(BaseDetector):
        module_id = "MOD-900"
        module_name = "big-fill"
        alert_types = ("big_fill",)
        output_table = "big_fills"
        output_schema = UNIFIED_TRADE_EVENT
        partition_spec = (day("timestamp"),)
        config_model = BigFillConfig

        def process(self, events):
            return events.where(F.col("quote_volume") > self.settings.min_usd)

        def build_alerts(self, output):
            return output.select(...)  # BASE_ALERT_RECORD columns
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from coattail_framework.errors import ConfigError
from coattail_framework.partitioning import PartitionField

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from coattail_framework.config.model import CoattailConfig
    from coattail_framework.quality.rules import QualityRule

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class BaseDetector(ABC, Generic[SettingsT]):
    """A feature module.

    Declares (as class attributes or properties): ``module_id`` ("MOD-002"),
    ``module_name`` (its entry-point name, "whale"), ``alert_types``, ``output_table``
    (Iceberg table name, without namespace), ``output_schema`` (Spark ``StructType`` of the
    rows ``process`` returns), ``partition_spec`` (Iceberg partition fields of the output
    table) and ``config_model`` (pydantic model of ``modules.<module_name>`` in the
    configuration). ``configure`` must run before ``process``.
    """

    config_model: ClassVar[type[BaseModel]]
    settings: SettingsT

    @property
    @abstractmethod
    def module_id(self) -> str:
        """The registry id, e.g. ``"MOD-002"``."""

    @property
    @abstractmethod
    def module_name(self) -> str:
        """The entry-point name and config key, e.g. ``"whale"``."""

    @property
    @abstractmethod
    def alert_types(self) -> Sequence[str]:
        """The ``alert_type`` values this module emits."""

    @property
    @abstractmethod
    def output_table(self) -> str:
        """The Iceberg table of the module output rows (no namespace)."""

    @property
    @abstractmethod
    def output_schema(self) -> StructType:
        """The Spark schema of the rows ``process`` returns."""

    @property
    @abstractmethod
    def partition_spec(self) -> Sequence[PartitionField]:
        """The Iceberg partition spec of ``output_table``."""

    def quality_rules(self) -> Sequence[QualityRule]:
        """Extra data-quality rules this module contributes while it is active."""
        return ()

    def configure(self, config: CoattailConfig) -> None:
        """Validate ``modules.<module_name>`` into ``self.settings`` (driver).

        Raises ``ConfigError`` naming the key path and the reason for a bad value.
        """
        raw: dict[str, Any] = dict(config.modules.get(self.module_name, {}))
        raw.pop("enabled", None)  # read by CoattailConfig.active_modules, not by the module
        try:
            self.settings = self.config_model.model_validate(raw)  # type: ignore[assignment]
        except ValidationError as error:
            raise ConfigError.from_validation(
                error, prefix=("modules", self.module_name), source=config.source_of
            ) from None
        self.on_configured(config)

    def on_configured(self, config: CoattailConfig) -> None:
        """Hook for what a module derives from the whole configuration (e.g. symbols)."""

    @abstractmethod
    def process(self, events: DataFrame) -> DataFrame:
        """Build the module output from valid trades (driver; builds a plan, runs nothing).

        ``events`` has the ``UNIFIED_TRADE_EVENT`` columns and may be streaming or static;
        the detector declares its own watermark on ``timestamp`` from its settings. The
        result has exactly ``output_schema``'s columns.
        """

    @abstractmethod
    def build_alerts(self, output: DataFrame) -> DataFrame:
        """Alerts from a static batch of module output rows (driver, once per micro-batch).

        Stateless and deterministic: returns ``BASE_ALERT_RECORD`` columns with
        ``ttl_epoch`` null (the router fills it). Alerts derive from output rows: a batch
        without output rows has no alerts, and the router does not call this for it.
        """
