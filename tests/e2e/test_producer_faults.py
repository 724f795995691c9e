"""The producer under faults: exchanges disconnect and Kinesis fails entries; every trade lands once.

A real replay (``coattail_producer.replay``) of a 90-second slice of the Binance spot
BTCUSDT recording and the Coinbase matches recording, through the real connectors and
the exchanges' simulators, with faults on both sides:

- the Binance simulator drops every connection three times, each time publishing 25
  stream frames while nobody is connected (their trades exist only on REST);
- the Coinbase simulator drops the connection twice, making frames while nobody listens;
- one ``put_records`` entry in five fails with ``ProvisionedThroughputExceededException``
  for the first 40 calls (the rest of each call reaches moto).

The stream must then hold every trade of both recordings exactly once: the connectors
backfill their gaps over REST from the simulators and the publisher retries failed entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coattail_connector_binance import BinanceConnector
from coattail_connector_binance.simulator import BinanceSimulator
from coattail_connector_coinbase import CoinbaseConnector
from coattail_connector_coinbase.simulator import CoinbaseSimulator, Faults
from coattail_devstack.localstack import start_local_stack
from coattail_framework.aws.clients import aws_client
from coattail_framework.config.model import CoattailConfig
from coattail_framework.recordings import read_recording
from coattail_framework.registry import ModuleRegistry
from coattail_producer.replay import replay

BINANCE_DROPS_AT_FRAMES = (300, 700, 1100)
MISSED_FRAMES_PER_DROP = 25
FAILING_PUT_CALLS = 40
DATA = Path(__file__).resolve().parents[1] / "data"
SPOT_BTCUSDT = DATA / "binance" / "ws" / "spot_btcusdt_20240808.gz"
COINBASE_MATCHES = DATA / "coinbase" / "ws" / "cryptofeed_matches_2021.jsonl"
FIRST_TRADE_MS = 1723161255342
"""Trade time of the first trade in the spot BTCUSDT recording (2024-08-08 23:54:15.342 UTC)."""


class DisconnectingBinanceSimulator(BinanceSimulator):
    """Binance's simulator that cuts every connection once ``frames_sent`` reaches each drop point."""

    drops_done = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        await super().start(host, port)
        self._saboteur = asyncio.create_task(self._drop_at_points())

    async def _drop_at_points(self) -> None:
        for point in BINANCE_DROPS_AT_FRAMES:
            while self.frames_sent < point:
                await asyncio.sleep(0.005)
            self.drop_connections(missed_frames=MISSED_FRAMES_PER_DROP)
            DisconnectingBinanceSimulator.drops_done += 1

    async def stop(self) -> None:
        self._saboteur.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._saboteur
        await super().stop()


class DisconnectingCoinbaseSimulator(CoinbaseSimulator):
    """Coinbase's simulator dropping the connection after frames 30 and 70 (5 and 3 frames missed)."""

    def __init__(self) -> None:
        super().__init__(Faults(drop_connection_at={30: 5, 70: 3}))


class FaultyBinanceConnector(BinanceConnector):
    simulator_class = DisconnectingBinanceSimulator


class FaultyCoinbaseConnector(CoinbaseConnector):
    simulator_class = DisconnectingCoinbaseSimulator  # type: ignore[assignment]


class FailingPutsClient:
    """The moto Kinesis client, failing one entry in five of the first ``failing_calls`` put_records calls."""

    def __init__(self, client: Any, failing_calls: int, seed: int = 11) -> None:
        self._client = client
        self._failing_calls = failing_calls
        self._random = random.Random(seed)
        self.calls = 0
        self.failed_entries = 0

    def put_records(self, **kwargs: Any) -> Any:
        self.calls += 1
        records: list[dict[str, Any]] = kwargs["Records"]
        if self.calls > self._failing_calls:
            return self._client.put_records(**kwargs)
        fails = [self._random.random() < 0.2 for _ in records]
        passing = [record for record, fail in zip(records, fails, strict=True) if not fail]
        answers = iter(
            self._client.put_records(StreamName=kwargs["StreamName"], Records=passing)["Records"] if passing else []
        )
        results = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}
            if fail
            else next(answers)
            for fail in fails
        ]
        self.failed_entries += sum(fails)
        return {"FailedRecordCount": sum(fails), "Records": results}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def recorded_event_ids(path: Path, connector: BinanceConnector | CoinbaseConnector) -> list[str]:
    """Event ids of every trade in a recording, through the connector's pure ``normalize``."""
    ids: list[str] = []
    for message in read_recording(path):
        decoded = json.loads(message.payload)
        ids.extend(event.event_id for event in connector.normalize(decoded))
    return ids


@pytest.mark.timeout(300)
def test_every_trade_reaches_kinesis_exactly_once_despite_disconnects_and_failed_puts(
    tmp_path: Path, write_slice: Callable[..., int], stream_records: Callable[[Any, str], list[dict[str, Any]]]
) -> None:
    binance_slice = tmp_path / "spot_btcusdt_90s.gz"
    assert write_slice(SPOT_BTCUSDT, binance_slice, trade_time_until_ms=FIRST_TRADE_MS + 90_000) == 1708
    config = CoattailConfig.model_validate(
        {
            "symbols": {"BTC/USDT": {"binance": "BTCUSDT"}},
            "exchanges": {"binance": {"connector": "binance"}, "coinbase": {"connector": "coinbase"}},
            "kinesis": {"stream_name": "e2e-producer-faults", "shard_count": 2},
            "dynamodb": {"table_name": "e2e-producer-faults"},
            "metrics": {"enabled": False},
        }
    )
    registry = ModuleRegistry(entry_points=lambda group: [])
    registry.register(FaultyBinanceConnector, "binance")
    registry.register(FaultyCoinbaseConnector, "coinbase")
    expected = recorded_event_ids(binance_slice, BinanceConnector()) + recorded_event_ids(
        COINBASE_MATCHES, CoinbaseConnector()
    )
    assert len(expected) == len(set(expected)) == 1708 + 107

    with start_local_stack(config, tmp_path / "stack") as stack:
        kinesis = aws_client("kinesis", region="us-east-1", endpoint_url=stack.endpoint_url)
        failing = FailingPutsClient(kinesis, FAILING_PUT_CALLS)
        stats = asyncio.run(
            replay(
                stack.config,
                [f"binance:{binance_slice}", f"coinbase:{COINBASE_MATCHES}"],
                registry=registry,
                kinesis_client=failing,
                drain_timeout=120,
            )
        )
        landed = Counter(json.loads(r["Data"])["event_id"] for r in stream_records(kinesis, config.kinesis.stream_name))

    assert DisconnectingBinanceSimulator.drops_done == len(BINANCE_DROPS_AT_FRAMES)
    binance, coinbase = stats.venues["binance"].connector_stats, stats.venues["coinbase"].connector_stats
    assert binance["reconnects"] >= len(BINANCE_DROPS_AT_FRAMES)
    assert binance["backfilled"] > 0
    assert coinbase["reconnects"] >= 2
    assert coinbase["backfilled"] > 0
    assert failing.failed_entries > 0
    assert stats.retried >= failing.failed_entries
    assert stats.dropped == {}
    assert stats.published == len(expected)
    assert [event_id for event_id, n in landed.items() if n > 1] == []
    assert sorted(landed) == sorted(expected)
