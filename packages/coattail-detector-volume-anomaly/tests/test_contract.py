"""MOD-001 honours the detector contract (``DetectorContract``)."""

from __future__ import annotations

from datetime import UTC, datetime

from coattail_detector_volume_anomaly import VolumeAnomalyDetector
from coattail_devstack.testing.contracts import DetectorContract

SPIKE = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "window_start": datetime(2024, 8, 8, 23, 58, tzinfo=UTC),
    "window_end": datetime(2024, 8, 8, 23, 59, tzinfo=UTC),
    "trade_count": 120,
    "base_volume": 20.0,
    "quote_volume": 1_200_000.0,
    "buy_quote_volume": 700_000.0,
    "sell_quote_volume": 500_000.0,
    "vwap": 60_000.0,
    "baseline_size": 60,
    "baseline_mean": 100_000.0,
    "baseline_std": 100_000.0,
    "z_score": 11.0,
}
"""A volume_aggregates window far above a full baseline (taker-side baselines still empty)."""


class TestVolumeAnomalyContract(DetectorContract):
    detector_class = VolumeAnomalyDetector
    alerting_rows = (SPIKE,)
