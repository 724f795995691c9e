"""``load-history`` for any venue whose connector offers trade history: Coinbase end to end, and a refusal.

The Coinbase simulator serves the bundled recording's trades on ``/products/{id}/trades``
(real aiohttp server on 127.0.0.1) once a websocket client has made the whole recording.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import websockets

from coattail_connector_coinbase import CoinbaseSimulator
from coattail_connector_coinbase.normalize import parse_time
from coattail_framework.config import CoattailConfig
from coattail_framework.connector import BaseConnector
from coattail_framework.errors import ConfigError
from coattail_framework.events import TradeEvent
from coattail_framework.recordings import read_recording
from coattail_framework.registry import ModuleRegistry
from coattail_stream_job.history import cli
from coattail_stream_job.history.checkpoint import IdRange, LoadCheckpoint
from coattail_stream_job.history.client import open_trade_history
from coattail_stream_job.history.job import load_history
from coattail_stream_job.history.loader import checkpoint_path

RECORDING = Path(__file__).resolve().parents[3] / "tests" / "data" / "coinbase" / "ws" / "cryptofeed_COINBASE.ws.28.0"
PRODUCT = "SKL-USD"
START = parse_time("2021-04-17T16:43:48.875223Z")
END = parse_time("2021-04-17T16:44:03.003815Z")
EXPECTED = list(range(1568277, 1568308))  # SKL-USD trades with START <= time < END


@pytest.fixture
async def coinbase() -> AsyncIterator[CoinbaseSimulator]:
    simulator = CoinbaseSimulator()
    simulator.load(read_recording(RECORDING))
    await simulator.start()
    request = json.dumps({"type": "subscribe", "product_ids": simulator.products, "channels": ["matches"]})
    async with websockets.connect(simulator.connector_settings()["url"], max_queue=None) as websocket:
        await websocket.send(request)
        assert await simulator.wait_drained(10)
    yield simulator
    await simulator.stop()


async def test_load_history_reads_coinbase_through_its_connector_into_parquet(
    coinbase: CoinbaseSimulator, tmp_path: Path
) -> None:
    config = CoattailConfig.model_validate({"exchanges": {"coinbase": {"connector": "coinbase"}}})
    out = tmp_path / cli.history_folder("coinbase")
    rest_url = coinbase.connector_settings()["rest_url"]

    stats = await load_history(
        config, exchange="coinbase", symbol=PRODUCT, start=START, end=END, destination=str(out), base_url=rest_url
    )

    assert (stats.trades_stored, stats.rejected, stats.last_id) == (31, 0, EXPECTED[-1])
    (path,) = sorted(out.rglob("*.parquet"))
    assert path.parent.relative_to(out).as_posix() == f"date=2021-04-17/symbol={PRODUCT}"
    table = pq.read_table(path)
    assert [int(value) for value in table.column("trade_id").to_pylist()] == EXPECTED
    assert set(table.column("exchange").to_pylist()) == {"coinbase"}
    assert min(table.column("timestamp").to_pylist()) == START
    checkpoint = LoadCheckpoint.model_validate_json((out / checkpoint_path(PRODUCT)).read_bytes())
    assert checkpoint.stored == [IdRange(first=EXPECTED[0], last=EXPECTED[-1])]

    again = await load_history(
        config, exchange="coinbase", symbol=PRODUCT, start=START, end=END, destination=str(out), base_url=rest_url
    )
    assert (again.trades_stored, again.already_stored) == (0, 31)


class StreamOnly(BaseConnector):
    """A connector without trade history."""

    default_exchange = "streamonly"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = settings

    def connect(self) -> Any:
        raise NotImplementedError

    def normalize(self, raw: Mapping[str, Any]) -> list[TradeEvent]:
        return []

    def health_check(self) -> bool:
        return True

    async def shutdown(self) -> None:
        return None


def test_a_venue_whose_connector_offers_no_history_is_refused_naming_the_connector() -> None:
    registry = ModuleRegistry(entry_points=lambda group: ())
    registry.register(StreamOnly, "streamonly")
    config = CoattailConfig.model_validate({"exchanges": {"kraken": {"connector": "streamonly"}}})
    with pytest.raises(
        ConfigError, match=r"exchanges\.kraken: connector 'streamonly' \(.*StreamOnly\) offers no trade"
    ):
        open_trade_history(config, "kraken", symbol="XBTUSD", registry=registry)
    assert cli.history_folder("binance") == "history/aggtrades"  # Binance keeps its folder
    assert cli.history_folder("kraken") == "history/kraken"
