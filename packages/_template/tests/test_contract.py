"""MOD-999 honours the detector contract (``DetectorContract``): keep this file in every copy.

``alerting_rows`` are ``output_schema`` rows the default settings alert on; a detector that
needs more than defaults to configure (e.g. ``symbols``) also sets ``config``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from coattail_detector_template import TemplateDetector
from coattail_devstack.testing.contracts import DetectorContract

LARGE_TRADE = {
    "event_id": "binance:BTCUSDT:3735683259",
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "side": "buy",
    "trade_time": datetime(2024, 8, 8, 23, 58, 1, tzinfo=UTC),
    "price": 61_000.0,
    "quantity": 20.0,
    "notional": 1_220_000.0,
}
"""A large_trades row above the default minimum."""


class TestTemplateContract(DetectorContract):
    detector_class = TemplateDetector
    alerting_rows = (LARGE_TRADE,)
