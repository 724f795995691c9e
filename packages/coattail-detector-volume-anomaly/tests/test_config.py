"""Configuration of MOD-001 and its plugin declaration (no Spark session needed)."""

from __future__ import annotations

from typing import Any

import pytest

from coattail_detector_volume_anomaly import VolumeAnomalyConfig, VolumeAnomalyDetector
from coattail_framework import CoattailConfig, ConfigError
from coattail_framework.alerts import SeverityTiers
from coattail_framework.iceberg import create_table_ddl


def configured(section: dict[str, Any]) -> VolumeAnomalyDetector:
    detector = VolumeAnomalyDetector()
    detector.configure(CoattailConfig.model_validate({"modules": {"volume-anomaly": section}}))
    return detector


def test_defaults() -> None:
    assert configured({}).settings == VolumeAnomalyConfig(
        window_seconds=60,
        baseline_windows=60,
        min_baseline_windows=30,
        watermark_delay_seconds=30,
        min_quote_volume=50_000.0,
        thresholds=SeverityTiers(medium=2.5, high=3.5),
    )


def test_values_from_the_configuration() -> None:
    settings = configured({"enabled": True, "baseline_windows": 8, "thresholds": {"high": 4}}).settings
    assert (settings.baseline_windows, settings.thresholds) == (8, SeverityTiers(high=4.0))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"baseline_windows": 1}, "modules.volume-anomaly.baseline_windows input should be greater than or equal to 2"),
        ({"window_seconds": 0}, "modules.volume-anomaly.window_seconds input should be greater than 0"),
        (
            {"watermark_delay_seconds": -5},
            "modules.volume-anomaly.watermark_delay_seconds input should be greater than or equal",
        ),
        ({"min_quote_volume": "lots"}, "modules.volume-anomaly.min_quote_volume input should be a valid number"),
        (
            {"baseline_windows": 10, "min_baseline_windows": 20},
            "modules.volume-anomaly.min_baseline_windows value error, must not exceed baseline_windows (10)",
        ),
        (
            {"thresholds": {"medium": 4, "high": 3}},
            "modules.volume-anomaly.thresholds value error, high (3.0) must be greater than medium (4.0)",
        ),
    ],
)
def test_bad_values_name_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^defaults: ") as raised:
        configured(section)
    assert message in str(raised.value)


def test_the_output_table_ddl() -> None:
    ddl = create_table_ddl(
        "glue.coattail.volume_aggregates", VolumeAnomalyDetector.output_schema, VolumeAnomalyDetector.partition_spec
    )
    assert [field.sql() for field in VolumeAnomalyDetector.partition_spec] == ["days(window_start)"]
    assert "`window_start` timestamp NOT NULL" in ddl
    assert "`z_score` double," in ddl
