"""``volume_spike`` alerts from ``volume_aggregates`` rows: stateless, one micro-batch at a time.

Runs on the driver (builds a plan) for every micro-batch of module output. A window
alerts when its z-score is above the mildest ``thresholds`` bound, its baseline holds at
least ``min_baseline_windows`` windows (warm-up) and its quote volume is at least
``min_quote_volume``. A null z-score (empty or flat baseline) never alerts. The alert id
hashes the module id, exchange, symbol and window start (ms since the epoch), so a
replayed window gives the same id; ``detected_at`` is the window end.

Example message::

    BTCUSDT binance: quote volume $12.4M in 1 min, z=3.8 (baseline $2.1M ± $2.7M over 60 min)
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_detector_volume_anomaly.config import VolumeAnomalyConfig
from coattail_detector_volume_anomaly.metadata import DETECTOR_INFO
from coattail_detector_volume_anomaly.schema import VOLUME_AGGREGATES
from coattail_framework.alerts import alert_frame

ALERT_TYPE = DETECTOR_INFO.alert_type_names[0]
_DETAIL_COLUMNS = [name for name in VOLUME_AGGREGATES.fieldNames() if name not in ("exchange", "symbol")]


def usd(amount: Column) -> Column:
    """A short money label: ``$12.4M``, ``$950.2K``, ``$1.2B``, ``$512``."""
    magnitude = F.abs(amount)
    return (
        F.when(magnitude >= 1e9, F.format_string("$%.1fB", amount / 1e9))
        .when(magnitude >= 1e6, F.format_string("$%.1fM", amount / 1e6))
        .when(magnitude >= 1e3, F.format_string("$%.1fK", amount / 1e3))
        .otherwise(F.format_string("$%.0f", amount))
    )


def duration(windows: Column, window_seconds: int) -> Column:
    """``windows`` windows of ``window_seconds`` as ``60 min`` (whole minutes) or ``90 s``."""
    if window_seconds % 60 == 0:
        return F.concat((windows * (window_seconds // 60)).cast("string"), F.lit(" min"))
    return F.concat((windows * window_seconds).cast("string"), F.lit(" s"))


def volume_spike_alerts(output: DataFrame, settings: VolumeAnomalyConfig, module_id: str) -> DataFrame:
    """``BASE_ALERT_RECORD`` rows for the windows of ``output`` that spiked."""
    eligible = (F.col("baseline_size") >= settings.min_baseline_windows) & (
        F.col("quote_volume") >= settings.min_quote_volume
    )
    message = F.format_string(
        "%s %s: quote volume %s in %s, z=%.1f (baseline %s ± %s over %s)",
        F.col("symbol"),
        F.col("exchange"),
        usd(F.col("quote_volume")),
        duration(F.lit(1), settings.window_seconds),
        F.col("z_score"),
        usd(F.col("baseline_mean")),
        usd(F.col("baseline_std")),
        duration(F.col("baseline_size"), settings.window_seconds),
    )
    return alert_frame(
        output,
        module_id=module_id,
        alert_type=ALERT_TYPE,
        id_parts=[F.col("exchange"), F.col("symbol"), F.unix_millis(F.col("window_start"))],
        symbol=F.col("symbol"),
        exchange=F.col("exchange"),
        severity=F.when(eligible, settings.thresholds.column(F.col("z_score"))),
        detected_at=F.col("window_end"),
        message=message,
        details=[F.col(name) for name in _DETAIL_COLUMNS],
    )
