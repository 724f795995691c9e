"""The contract of a local exchange simulator: the exchange's wire protocol on 127.0.0.1.

A connector package may ship one (``BaseConnector.simulator_class``). Tests, the
producer's replay mode and benchmarks start it and point the unchanged connector at it
through ``connector_settings()``. It serves recorded messages exactly as the exchange
would (same URLs, subscription handshake, framing, pings) and the exchange's public REST
trades endpoint for gap backfill, and can inject faults. Like the real exchange, it does
not resend on the websocket what a client missed while disconnected.

Runs on the caller's asyncio event loop.

Example::

    simulator = BinanceSimulator()
    simulator.load(read_recording(path))
    await simulator.start()
    connector = BinanceConnector(settings=simulator.connector_settings())
    ...
    await simulator.stop()
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from coattail_framework.recordings import RecordedMessage


class ExchangeSimulator(ABC):
    """A local server for one exchange. Binds 127.0.0.1 on a free port unless told otherwise."""

    @abstractmethod
    def load(self, messages: Iterable[RecordedMessage]) -> None:
        """Queue recorded frames to serve, in order (trade messages are also served over REST)."""

    @abstractmethod
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start listening; returns once clients can connect."""

    @abstractmethod
    def connector_settings(self) -> dict[str, Any]:
        """Settings that point this exchange's connector at the simulator (URLs, symbols)."""

    @abstractmethod
    async def wait_drained(self, timeout: float) -> bool:
        """Wait until every loaded frame has been sent to a subscribed client; False on timeout."""

    @abstractmethod
    async def stop(self) -> None:
        """Close every connection and stop listening."""
