"""The Coinbase connector honours the connector contract (``ConnectorContract``)."""

from __future__ import annotations

from typing import Any

import pytest

from coattail_connector_coinbase import CoinbaseConnector
from coattail_devstack.testing.contracts import ConnectorContract


class TestCoinbaseContract(ConnectorContract):
    connector_class = CoinbaseConnector
    entry_point = "coinbase"

    @pytest.fixture
    def connector_samples(self, recorded_matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return recorded_matches[:50]
