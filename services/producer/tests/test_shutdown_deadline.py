"""The SIGTERM deadline: the default fits docker's stop grace, and a stop never runs past the deadline.

The bounded run uses a Kinesis client that refuses every entry and a connector that
ignores ``shutdown()``: the worst case, where only the deadline ends the stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from coattail_devstack.testing import trade
from coattail_framework.config.model import CoattailConfig
from coattail_framework.connector import BaseConnector, ConnectorStats
from coattail_framework.events import TradeEvent
from coattail_producer.cli import REPLAY_FLUSH_DEADLINE_SECONDS, _parser
from coattail_producer.publisher import DROP_SHUTDOWN_DEADLINE
from coattail_producer.runner import Producer
from coattail_producer.settings import (
    DEFAULT_SHUTDOWN_DEADLINE_SECONDS,
    DOCKER_STOP_GRACE_SECONDS,
    ProducerSettings,
    PublisherSettings,
)

T0 = datetime(2024, 8, 8, 23, 54, tzinfo=UTC)
DEADLINE = 1.0
SLACK = 0.5
"""What a stop may take beyond its deadline here: no call in flight lasts, no metrics push, no health server."""


def test_the_default_deadline_fits_docker_stops_grace_period_with_two_seconds_to_spare() -> None:
    assert ProducerSettings().shutdown_deadline_seconds == DEFAULT_SHUTDOWN_DEADLINE_SECONDS == 8.0
    assert DOCKER_STOP_GRACE_SECONDS - DEFAULT_SHUTDOWN_DEADLINE_SECONDS == 2.0
    assert _parser().parse_args(["run"]).shutdown_deadline == DEFAULT_SHUTDOWN_DEADLINE_SECONDS
    assert _parser().parse_args(["run", "--shutdown-deadline", "25"]).shutdown_deadline == 25.0
    assert _parser().parse_args(["replay", "f.gz"]).shutdown_deadline == REPLAY_FLUSH_DEADLINE_SECONDS == 30.0


class RefusingKinesis:
    """``put_records`` that fails every entry, like a stream throttled throughout the stop."""

    def __init__(self) -> None:
        self.calls = 0

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        failure = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}
        return {"FailedRecordCount": len(Records), "Records": [dict(failure) for _ in Records]}


class ScriptedConnector(BaseConnector):
    """Yields ``count`` trades of ``symbol``, then waits for ``shutdown()`` (or forever when ``stuck``)."""

    default_exchange = "scripted"

    def __init__(self, symbol: str, count: int, *, stuck: bool = False) -> None:
        self.stats = ConnectorStats()
        self._events = [
            trade(T0 + timedelta(seconds=i), 60_000 + i, "0.5", symbol=symbol, trade_id=i + 1) for i in range(count)
        ]
        self._stuck = stuck
        self._stop = asyncio.Event()
        self.handed_over = asyncio.Event()

    async def connect(self) -> AsyncIterator[TradeEvent]:
        for event in self._events:
            yield event
        self.handed_over.set()
        if self._stuck:
            await asyncio.Event().wait()
        await self._stop.wait()

    def normalize(self, raw: Mapping[str, Any]) -> list[TradeEvent]:
        return []

    def health_check(self) -> bool:
        return True

    async def shutdown(self) -> None:
        self._stop.set()


async def test_a_stop_ends_at_its_deadline_dropping_and_counting_what_kinesis_refused() -> None:
    config = CoattailConfig.model_validate({"kinesis": {"stream_name": "trades"}, "metrics": {"enabled": False}})
    connectors = {"steady": ScriptedConnector("BTCUSDT", 30), "stuck": ScriptedConnector("ETHUSDT", 20, stuck=True)}
    kinesis = RefusingKinesis()
    settings = ProducerSettings(
        shutdown_deadline_seconds=DEADLINE,
        publisher=PublisherSettings(linger_seconds=0.01, retry_base_seconds=0.01, retry_max_seconds=0.05),
    )
    producer = Producer(config, connectors, kinesis_client=kinesis, settings=settings, serve_health=False)
    stop = asyncio.Event()
    run = asyncio.create_task(producer.run(stop))
    await asyncio.wait_for(
        asyncio.gather(*(connector.handed_over.wait() for connector in connectors.values())), timeout=10
    )

    stop.set()
    stopping = time.monotonic()
    result = await asyncio.wait_for(run, timeout=DEADLINE + 10)
    took = time.monotonic() - stopping

    assert DEADLINE <= took < DEADLINE + SLACK
    assert result.connectors_cancelled == ["stuck"]
    assert result.received == {"steady": 30, "stuck": 20}
    assert (result.publisher.published, dict(result.publisher.dropped)) == (0, {DROP_SHUTDOWN_DEADLINE: 50})
    assert not result.clean
    assert kinesis.calls > 0
