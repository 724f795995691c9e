"""The Binance connector honours the connector contract (``ConnectorContract``)."""

from __future__ import annotations

from typing import Any

import pytest

from coattail_connector_binance import BinanceConnector
from coattail_devstack.testing.contracts import ConnectorContract


class TestBinanceContract(ConnectorContract):
    connector_class = BinanceConnector
    entry_point = "binance"

    @pytest.fixture
    def connector_samples(self, spot_messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return spot_messages[:50]
