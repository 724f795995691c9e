"""``flow_imbalance`` alerts from ``flow_imbalance`` rows: stateless, one micro-batch at a time.

Runs on the driver (builds a plan) for every micro-batch of module output. A window alerts
when all of these hold:

- ``|net_flow_z|`` is strictly above the mildest ``thresholds`` bound (severity: the highest
  bound below it), and ``net_flow_z`` has the sign of the net flow: the window moved further
  in the direction its takers traded (buy: above the baseline, sell: below it);
- ``|imbalance| >= min_imbalance``;
- buy + sell notional ``>= min_quote_volume``;
- ``baseline_size >= min_baseline_windows`` (warm-up).

A null z (empty or flat baseline) never alerts. ``direction`` (``buy`` when the net flow is
positive, else ``sell``) is in the message and the details. The alert id hashes the module
id, exchange, symbol and window start (ms since the epoch), so a replayed window gives the
same id; ``detected_at`` is the window end.

Example message::

    BTCUSDT binance: net taker BUY flow +$1.2M in 1 min (imbalance +0.45 of $2.7M, large orders +0.80),
    z=+4.2 against +$12.5K ± $280.0K over 60 min
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coattail_detector_flow_imbalance.config import FlowImbalanceConfig
from coattail_detector_flow_imbalance.metadata import DETECTOR_INFO
from coattail_detector_volume_anomaly.alerts import duration, usd
from coattail_framework.alerts import alert_frame

(ALERT_TYPE,) = DETECTOR_INFO.alert_types


def signed_usd(amount: Column) -> Column:
    """``usd`` with its sign in front: ``+$1.2M``, ``-$950.2K``."""
    return F.concat(F.when(amount < 0, F.lit("-")).otherwise(F.lit("+")), usd(F.abs(amount)))


def direction(net_quote_flow: Column) -> Column:
    """``buy`` when takers bought more than they sold, else ``sell``."""
    return F.when(net_quote_flow > 0, F.lit("buy")).otherwise(F.lit("sell"))


def flow_imbalance_alerts(output: DataFrame, settings: FlowImbalanceConfig, module_id: str) -> DataFrame:
    """``BASE_ALERT_RECORD`` rows for the windows of ``output`` whose taker flow was unusually one-sided."""
    net, z = F.col("net_quote_flow"), F.col("net_flow_z")
    eligible = (
        (F.signum(z) == F.signum(net))
        & (F.abs(F.col("imbalance")) >= settings.min_imbalance)
        & (F.col("buy_quote_volume") + F.col("sell_quote_volume") >= settings.min_quote_volume)
        & (F.col("baseline_size") >= settings.min_baseline_windows)
    )
    large_imbalance = F.col("large_order_imbalance")
    # format_string writes a null as "null" (cut by the precision), so the null case is spelled out.
    large = F.when(large_imbalance.isNull(), F.lit("none")).otherwise(F.format_string("%+.2f", large_imbalance))
    message = F.format_string(
        "%s %s: net taker %s flow %s in %s (imbalance %+.2f of %s, large orders %s), z=%+.1f against %s ± %s over %s",
        F.col("symbol"),
        F.col("exchange"),
        F.upper(direction(net)),
        signed_usd(net),
        duration(F.lit(1), settings.window_seconds),
        F.col("imbalance"),
        usd(F.col("buy_quote_volume") + F.col("sell_quote_volume")),
        large,
        z,
        signed_usd(F.col("baseline_mean")),
        usd(F.col("baseline_std")),
        duration(F.col("baseline_size"), settings.window_seconds),
    )
    details = [F.col(field.name) for field in ALERT_TYPE.details if field.name != "direction"]
    return alert_frame(
        output,
        module_id=module_id,
        alert_type=ALERT_TYPE.name,
        id_parts=[F.col("exchange"), F.col("symbol"), F.unix_millis(F.col("window_start"))],
        symbol=F.col("symbol"),
        exchange=F.col("exchange"),
        severity=F.when(eligible, settings.thresholds.column(F.abs(z))),
        detected_at=F.col("window_end"),
        message=message,
        details=[direction(net).alias("direction"), *details],
    )
