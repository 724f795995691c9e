"""The contract of a detector plugin (entry-point group ``coattail.detectors``).

A detector turns the stream of valid trades (``UNIFIED_TRADE_EVENT`` rows) into its
module output rows and alerts. The stream job runs one streaming query per detector:
``process(events)`` builds the (stateful) plan on the driver; every micro-batch of its
output goes, on the driver, through ``build_alerts`` and then the alert router.

Optional hot path: a detector that can prove some of its alerts from one micro-batch of
trades alone overrides ``early_alerts``; the stream job then runs a second, stateless
query for it on a short trigger (ADR-024). Its alerts reach DynamoDB in the batch that
read the trades instead of after the stateful query's watermark has passed them; the
stateful query still writes every output row and alert (the early ones again, as counted
duplicates of the same deterministic alert ids).

Example (a minimal stateless detector; ``BIG_FILL`` is its ``DetectorInfo``, published in
the light ``coattail.detector_info`` group, see ``coattail_framework.plugins``)::

    class BigFill(BaseDetector[BigFillConfig]):
        info = BIG_FILL
        module_id = BIG_FILL.module_id
        module_name = BIG_FILL.module_name
        alert_types = BIG_FILL.alert_type_names
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from coattail_framework.errors import ConfigError
from coattail_framework.partitioning import PartitionField
from coattail_framework.plugins import DetectorInfo

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from coattail_framework.config.model import CoattailConfig
    from coattail_framework.quality.rules import QualityRule

SettingsT = TypeVar("SettingsT", bound=BaseModel)
ModelT = TypeVar("ModelT", bound=BaseModel)
DECLARATIONS = (
    "module_id",
    "module_name",
    "alert_types",
    "output_table",
    "output_schema",
    "partition_spec",
    "config_model",
)
"""The class attributes every detector sets (``info`` too, except a class registered by hand)."""


def module_settings(config: CoattailConfig, module_name: str, model: type[ModelT]) -> ModelT:
    """``modules.<module_name>`` validated by ``model`` (driver).

    Each detector's own section (``BaseDetector.configure``), and another module's section a
    detector shares a definition with (MOD-008 reads ``modules.whale``, MOD-010
    ``modules.spread``). ``enabled`` is the platform's key, not the module's. Raises
    ``ConfigError`` naming the key path and the file or override it came from.
    """
    raw: dict[str, Any] = dict(config.modules.get(module_name, {}))
    raw.pop("enabled", None)  # read by CoattailConfig.active_modules, not by the module
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise ConfigError.from_validation(error, prefix=("modules", module_name), source=config.source_of) from None


@dataclass(frozen=True)
class EarlyAlerts:
    """What ``BaseDetector.early_alerts`` found in one micro-batch (static DataFrames, driver).

    ``alerts``: ``BASE_ALERT_RECORD`` rows (``ttl_epoch`` null), each identical to the alert
    the stateful query emits later for the same finding (same id, same content).
    ``carry``: trade rows, with the columns of the ``trades`` given, that the next
    micro-batch needs to prove what this one could not (e.g. an order whose last fill has
    no successor yet); the runner prepends them to the next batch of the same run.
    ``shared``: the plan both derive from, if any; the runner persists it for the batch, so
    the second of the two Spark jobs reads it instead of recomputing it.
    """

    alerts: DataFrame
    carry: DataFrame
    shared: DataFrame | None = None


class BaseDetector(ABC, Generic[SettingsT]):
    """A feature module.

    Declares, as class attributes: ``info`` (its ``DetectorInfo``, the declaration published
    under ``coattail.detector_info``), ``module_id``, ``module_name`` (its entry-point name)
    and ``alert_types``, all three taken from ``info``; ``output_table`` (Iceberg table name,
    without namespace), ``output_schema`` (Spark ``StructType`` of the rows ``process``
    returns), ``partition_spec`` (Iceberg partition fields of the output table) and
    ``config_model`` (pydantic model of ``modules.<module_name>``, named ``<Name>Config``,
    ``extra="forbid"``). The registry refuses a class missing one (``missing_declarations``);
    ``configure`` must run
    before ``process``. ``coattail_devstack.testing.contracts.DetectorContract`` checks all of it.
    """

    info: ClassVar[DetectorInfo]
    module_id: ClassVar[str]
    module_name: ClassVar[str]
    alert_types: ClassVar[Sequence[str]]
    output_table: ClassVar[str]
    output_schema: ClassVar[StructType]
    partition_spec: ClassVar[Sequence[PartitionField]]
    config_model: ClassVar[type[BaseModel]]
    settings: SettingsT

    @classmethod
    def missing_declarations(cls) -> list[str]:
        """The class attributes of the contract this class does not set (empty: it declares them all)."""
        return [name for name in DECLARATIONS if not hasattr(cls, name)]

    def quality_rules(self) -> Sequence[QualityRule]:
        """Extra data-quality rules this module contributes while it is active."""
        return ()

    def configure(self, config: CoattailConfig) -> None:
        """Validate ``modules.<module_name>`` into ``self.settings`` (driver).

        Raises ``ConfigError`` naming the key path and the reason for a bad value.
        """
        self.settings = module_settings(config, self.module_name, self.config_model)  # type: ignore[assignment]
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

    def early_alerts(self, trades: DataFrame) -> EarlyAlerts | None:
        """Alerts provable from ``trades`` alone, before the stateful query emits them (driver).

        ``trades``: one static micro-batch of valid trades (``UNIFIED_TRADE_EVENT``
        columns) plus the previous batch's ``carry`` when the runner still holds it (not
        after a restart: what cannot be proven then is left to the stateful query). Must
        alert only on findings the stateful query will emit identically, never on a
        partial one. The default (None) means the detector has no early path.
        """
        return None

    @property
    def has_early_alerts(self) -> bool:
        """Whether this detector overrides ``early_alerts`` (the runner starts its early query)."""
        return type(self).early_alerts is not BaseDetector.early_alerts

    @abstractmethod
    def build_alerts(self, output: DataFrame) -> DataFrame:
        """Alerts from a static batch of module output rows (driver, once per micro-batch).

        Stateless and deterministic: returns ``BASE_ALERT_RECORD`` columns with
        ``ttl_epoch`` null (the router fills it). Alerts derive from output rows: a batch
        without output rows has no alerts, and the router does not call this for it.
        """
