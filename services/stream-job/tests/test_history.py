"""``load-history`` against the Binance simulator serving the real BTCUSDT recording.

The simulator publishes the 19,904 recorded trades (2024-08-08 23:54:15 to 2024-08-09
00:05:05 UTC) as aggregate trades, one per trade (``a`` = trade id ``t``), on a real aiohttp
server on 127.0.0.1. Every test reads the stored Parquet files back and checks the exact ids.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from coattail_connector_binance import BinanceSettings, BinanceSimulator
from coattail_connector_binance.history import BinanceTradeHistory
from coattail_connector_binance.normalize import normalize_message
from coattail_framework.history import HistoryFetchError
from coattail_framework.iceberg import to_arrow_schema
from coattail_framework.recordings import RecordedMessage, read_recording
from coattail_framework.schemas import UNIFIED_TRADE_EVENT
from coattail_stream_job.history.checkpoint import IdRange, LoadCheckpoint
from coattail_stream_job.history.loader import HistoryBanError, HistoryLoader, checkpoint_path
from coattail_stream_job.history.progress import LoadStats
from coattail_stream_job.history.store import LocalStore

WS_DATA = Path(__file__).resolve().parents[3] / "tests" / "data" / "binance" / "ws"
RECORDINGS = ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz")
SYMBOL = "BTCUSDT"
SCHEMA = to_arrow_schema(UNIFIED_TRADE_EVENT)


@dataclass(frozen=True)
class Market:
    """The recorded trade frames and, per trade, ``(id, trade time ms)`` in id order."""

    frames: list[RecordedMessage]
    trades: list[tuple[int, int]]
    payloads: dict[int, dict[str, Any]]

    def ids_between(self, start_ms: int, end_ms: int) -> list[int]:
        return [trade_id for trade_id, trade_ms in self.trades if start_ms <= trade_ms < end_ms]

    def time_of(self, index: int) -> int:
        """The trade time of the ``index``-th trade; it must not share its time with the one before."""
        assert index == 0 or self.trades[index - 1][1] < self.trades[index][1], f"trade {index} ties its predecessor"
        return self.trades[index][1]

    def window(self, first: int, stop: int) -> tuple[int, int, list[int]]:
        """``--start``/``--end`` selecting exactly trades ``first..stop-1`` (by position), and their ids."""
        start_ms, end_ms = self.time_of(first), self.time_of(stop)
        ids = [trade_id for trade_id, _ in self.trades[first:stop]]
        assert self.ids_between(start_ms, end_ms) == ids
        return start_ms, end_ms, ids


@pytest.fixture(scope="module")
def market() -> Market:
    frames = [m for name in RECORDINGS for m in read_recording(WS_DATA / name) if '@trade"' in m.payload]
    payloads = {data["t"]: data for data in (json.loads(m.payload)["data"] for m in frames)}
    trades = sorted((trade_id, data["T"]) for trade_id, data in payloads.items())
    assert len(trades) == 9_757 + 10_147
    return Market(frames, trades, payloads)


async def start_simulator(market: Market, **options: Any) -> BinanceSimulator:
    simulator = BinanceSimulator(speed=1e6, **options)  # publishes the whole recording at once
    simulator.load(market.frames)
    await simulator.start()
    assert await simulator.wait_drained(30)
    return simulator


@pytest.fixture
async def simulator(market: Market) -> AsyncIterator[BinanceSimulator]:
    simulator = await start_simulator(market)
    yield simulator
    await simulator.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@dataclass
class PageHook:
    """A progress reporter that runs ``action`` once the loader has fetched ``at_page`` pages."""

    at_page: int
    action: Callable[[], None]
    closed: list[LoadStats] = field(default_factory=list)

    def update(self, stats: LoadStats) -> None:
        if stats.pages == self.at_page:
            self.action()

    def close(self, stats: LoadStats) -> None:
        self.closed.append(stats)


@dataclass
class FrozenClock:
    """Wall time that only moves when the loader sleeps (shared with the simulator in weight tests)."""

    now: float
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def binance_history(
    session: aiohttp.ClientSession, base_url: str, *, weight_per_minute: int = 6000, **timing: Any
) -> BinanceTradeHistory:
    """The Binance connector's trade history against ``base_url``, on the test's session."""
    settings = BinanceSettings(rest_url=base_url, rest_weight_limit_per_minute=weight_per_minute)
    return BinanceTradeHistory(settings, session=session, **timing)


def make_loader(
    session: aiohttp.ClientSession,
    base_url: str,
    out: Path,
    *,
    clock: FrozenClock | None = None,
    weight_per_minute: int = 6000,
    store: LocalStore | None = None,
    **options: Any,
) -> tuple[HistoryLoader, BinanceTradeHistory]:
    timing: dict[str, Any] = {"clock": clock.time, "sleep": clock.sleep} if clock else {}
    client = binance_history(session, base_url, weight_per_minute=weight_per_minute, **timing)
    return HistoryLoader(client, store or LocalStore(out), SCHEMA, **options), client


def rest_url(simulator: BinanceSimulator) -> str:
    return f"http://127.0.0.1:{simulator.port}"


def stored_ids(out: Path) -> list[int]:
    """Every stored trade id, in file order; checks each file sits in its own date/symbol partition."""
    ids: list[int] = []
    for path in sorted(out.rglob("*.parquet")):
        partition = path.parent.relative_to(out).as_posix()
        table = pq.read_table(path)
        dates = {moment.date().isoformat() for moment in table.column("timestamp").to_pylist()}
        assert [partition] == [f"date={date}/symbol={SYMBOL}" for date in dates], path
        ids.extend(int(trade_id) for trade_id in table.column("trade_id").to_pylist())
    return ids


def read_checkpoint(out: Path) -> LoadCheckpoint:
    return LoadCheckpoint.model_validate_json((out / checkpoint_path(SYMBOL)).read_bytes())


async def test_loads_exactly_the_range_across_pages_dates_and_files(
    simulator: BinanceSimulator, session: aiohttp.ClientSession, market: Market, tmp_path: Path
) -> None:
    start_ms, end_ms, expected = market.window(1_440, 18_500)  # 23:55:30 .. 00:04:20, crosses midnight
    loader, client = make_loader(session, rest_url(simulator), tmp_path, rows_per_file=4000)

    stats = await loader.load(SYMBOL, start_ms, end_ms)

    ids = stored_ids(tmp_path)
    assert ids == expected == list(range(expected[0], expected[0] + 17_060))  # consecutive, no gap, no duplicate
    by_id = dict(market.trades)
    assert by_id[expected[0]] == start_ms
    assert by_id[expected[0] - 1] < start_ms
    assert by_id[expected[-1] + 1] == end_ms  # the trade AT --end is excluded
    assert (stats.trades_fetched, stats.trades_stored, stats.rejected, stats.already_stored) == (17_060, 17_060, 0, 0)
    assert stats.pages == 18
    assert client.counters.requests == 19
    assert stats.last_id == expected[-1]
    assert stats.last_trade_ms == by_id[expected[-1]]
    assert not stats.reached_latest
    assert read_checkpoint(tmp_path).stored == [IdRange(first=expected[0], last=expected[-1])]
    assert read_checkpoint(tmp_path).pending == []
    partitions = sorted({path.parent.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.parquet")})
    assert partitions == [f"date=2024-08-08/symbol={SYMBOL}", f"date=2024-08-09/symbol={SYMBOL}"]
    assert len(stats.files) == 6  # a flush every 4,000 trades and at the end; the one over midnight writes two
    assert not list(tmp_path.rglob("*.tmp"))


async def test_rows_match_the_live_normalization_and_schema(
    simulator: BinanceSimulator, session: aiohttp.ClientSession, market: Market, tmp_path: Path
) -> None:
    start_ms, end_ms, _ = market.window(9_500, 10_454)
    before = time.time()
    loader, _ = make_loader(session, rest_url(simulator), tmp_path)
    await loader.load(SYMBOL, start_ms, end_ms)

    # Files keep the symbol column of TradeEvent; the hive partition types must match it.
    partitions = pa.schema([("date", pa.string()), ("symbol", pa.large_string())])
    dataset = ds.dataset(tmp_path, format="parquet", partitioning=ds.partitioning(partitions, flavor="hive"))
    table = dataset.to_table()
    assert table.num_rows == 954
    assert table.schema.remove(table.schema.get_field_index("date")).equals(SCHEMA)
    assert sorted(set(table.column("date").to_pylist())) == ["2024-08-08", "2024-08-09"]
    for row in table.to_pylist():
        (live,) = normalize_message(market.payloads[int(row["trade_id"])])  # the websocket trade, live
        assert row["event_id"] == live.event_id == f"binance:{SYMBOL}:{row['trade_id']}"
        assert (row["exchange"], row["symbol"], row["side"]) == (live.exchange, live.symbol, live.side)
        assert (row["price"], row["quantity"]) == (float(live.price), float(live.quantity))
        assert row["quote_volume"] == float(live.quote_volume)
        assert row["timestamp"] == live.timestamp
        assert row["taker_order_id"] is None
        assert before <= row["ingestion_timestamp"].timestamp() <= time.time()


async def test_rerun_skips_stored_trades_and_extends_the_range(
    simulator: BinanceSimulator, session: aiohttp.ClientSession, market: Market, tmp_path: Path
) -> None:
    start_ms, end_ms, _ = market.window(1_940, 5_000)
    loader, _ = make_loader(session, rest_url(simulator), tmp_path)
    await loader.load(SYMBOL, start_ms, end_ms)
    again = await loader.load(SYMBOL, start_ms, end_ms)
    assert (again.trades_stored, again.files, again.already_stored) == (0, [], 3_060)

    wide_start, wide_end, wide = market.window(946, 6_000)
    wider = await loader.load(SYMBOL, wide_start, wide_end)

    assert sorted(stored_ids(tmp_path)) == wide
    assert wider.trades_stored == 994 + 1_000
    assert wider.already_stored == 3_060
    assert read_checkpoint(tmp_path).stored == [IdRange(first=wide[0], last=wide[-1])]


async def test_page_limit_is_capped_at_binance_maximum(
    simulator: BinanceSimulator, session: aiohttp.ClientSession, market: Market, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"page_limit must be 1\.\.1000"):
        make_loader(session, rest_url(simulator), tmp_path, page_limit=1001)
    client = binance_history(session, rest_url(simulator))
    with pytest.raises(HistoryFetchError, match=r"HTTP 400.*-1130"):
        await client.page(SYMBOL, from_id=market.trades[0][0], limit=1001)
    assert len(await client.page(SYMBOL, from_id=market.trades[0][0])) == 1000

    loader, _ = make_loader(session, rest_url(simulator), tmp_path, page_limit=300)
    start_ms, end_ms, expected = market.window(0, 946)
    stats = await loader.load(SYMBOL, start_ms, end_ms)
    assert stats.pages == 4
    assert stored_ids(tmp_path) == expected


async def test_weight_header_makes_the_loader_wait_for_the_next_minute(
    market: Market, session: aiohttp.ClientSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrozenClock(now=math.floor(time.time() / 60) * 60 + 1.0)
    monkeypatch.setattr(time, "time", clock.time)  # the simulator counts weight per minute of the same clock
    simulator = await start_simulator(market, weight_limit_per_minute=40)  # 10 aggTrades requests a minute
    try:
        loader, client = make_loader(
            session, rest_url(simulator), tmp_path, clock=clock, weight_per_minute=40, page_limit=250
        )
        start_ms, end_ms, expected = market.window(0, 5_000)
        await loader.load(SYMBOL, start_ms, end_ms)
    finally:
        await simulator.stop()

    assert sorted(stored_ids(tmp_path)) == expected
    assert client.counters.requests == 22  # locate + 20 full pages + the page reaching --end
    assert client.counters.rate_limited == 0  # it never went over the limit
    assert client.counters.weight_waits == 2
    assert clock.sleeps == [59.0, 60.0]


async def test_429_waits_retry_after_and_continues(
    market: Market, session: aiohttp.ClientSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrozenClock(now=math.floor(time.time() / 60) * 60 + 30.0)
    monkeypatch.setattr(time, "time", clock.time)
    simulator = await start_simulator(market, weight_limit_per_minute=40)
    try:
        # The loader believes it may use Binance's full 6,000; the server allows 40 and answers 429.
        loader, client = make_loader(session, rest_url(simulator), tmp_path, clock=clock, page_limit=500)
        simulator.force_rest_status(429, count=1, retry_after_s=3)
        start_ms, end_ms, expected = market.window(0, 6_000)
        await loader.load(SYMBOL, start_ms, end_ms)
    finally:
        await simulator.stop()

    assert sorted(stored_ids(tmp_path)) == expected
    assert client.counters.rate_limited == 2
    assert clock.sleeps == [3.0, 27.0]  # the forced Retry-After, then until the simulator's next minute
    assert client.counters.requests == 1 + 1 + 13 + 1  # forced 429, locate, 13 pages, the 429 at the limit


async def test_ban_stops_with_a_clear_error_and_a_later_run_completes(
    simulator: BinanceSimulator, session: aiohttp.ClientSession, market: Market, tmp_path: Path
) -> None:
    start_ms, end_ms, expected = market.window(46, 12_040)
    hook = PageHook(at_page=5, action=lambda: simulator.force_rest_status(418, retry_after_s=7200))
    loader, _ = make_loader(session, rest_url(simulator), tmp_path, progress=hook)

    with pytest.raises(HistoryBanError) as banned:
        await loader.load(SYMBOL, start_ms, end_ms)

    saved = stored_ids(tmp_path)
    assert saved == expected[:5_000]  # the five fetched pages were flushed before stopping
    message = str(banned.value)
    assert "HTTP 418" in message
    assert "7200 s (Retry-After)" in message
    assert "banned this IP" in message
    assert f"last stored id {expected[4_999]}" in message
    assert "5,000 trades in 1 file(s)" in message
    assert str(tmp_path / checkpoint_path(SYMBOL)) in message
    assert "Rerun the same command after" in message
    assert banned.value.retry_after_s == 7200
    assert len(hook.closed) == 1

    resumed, _ = make_loader(session, rest_url(simulator), tmp_path)
    stats = await resumed.load(SYMBOL, start_ms, end_ms)
    assert sorted(stored_ids(tmp_path)) == expected
    assert stats.already_stored == 5_000


class CrashingStore(LocalStore):
    """Dies (like a killed process) after writing the n-th Parquet file, before the checkpoint commits it."""

    def __init__(self, root: Path, crash_after_files: int) -> None:
        super().__init__(root)
        self.crash_after_files = crash_after_files
        self.parquet_files = 0

    def put(self, path: str, data: bytes) -> None:
        committing = path.startswith("_checkpoints/") and b'"pending": []' in data
        if committing and self.parquet_files == self.crash_after_files:
            raise OSError("simulated crash between the Parquet write and the checkpoint")
        super().put(path, data)
        self.parquet_files += path.endswith(".parquet")


async def test_crash_between_parquet_write_and_checkpoint_then_resume(
    simulator: BinanceSimulator, session: aiohttp.ClientSession, market: Market, tmp_path: Path
) -> None:
    start_ms, end_ms, expected = market.window(0, 8_979)  # all on 2024-08-08
    crashing = CrashingStore(tmp_path, crash_after_files=3)
    loader, _ = make_loader(session, rest_url(simulator), tmp_path, store=crashing, rows_per_file=2_000)

    with pytest.raises(OSError, match="simulated crash"):
        await loader.load(SYMBOL, start_ms, end_ms)

    assert stored_ids(tmp_path) == expected[:6_000]  # three files of two pages on disk, the third not committed
    assert read_checkpoint(tmp_path).stored == [IdRange(first=expected[0], last=expected[3_999])]
    (orphan,) = read_checkpoint(tmp_path).pending
    assert (tmp_path / orphan).is_file()

    resumed, _ = make_loader(session, rest_url(simulator), tmp_path, rows_per_file=2_500)
    stats = await resumed.load(SYMBOL, start_ms, end_ms)

    ids = stored_ids(tmp_path)
    assert sorted(ids) == expected
    assert len(set(ids)) == len(ids) == 8_979
    assert not (tmp_path / orphan).exists()
    assert (stats.already_stored, stats.trades_stored) == (4_000, 4_979)
    assert read_checkpoint(tmp_path).stored == [IdRange(first=expected[0], last=expected[-1])]


async def test_cancelled_run_keeps_its_pages_and_a_rerun_completes(
    simulator: BinanceSimulator, session: aiohttp.ClientSession, market: Market, tmp_path: Path
) -> None:
    start_ms, end_ms, expected = market.window(2_940, 19_000)
    reached = asyncio.Event()
    loader, _ = make_loader(session, rest_url(simulator), tmp_path, progress=PageHook(4, reached.set))
    task = asyncio.create_task(loader.load(SYMBOL, start_ms, end_ms))
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert stored_ids(tmp_path) == expected[:4_000]

    resumed, _ = make_loader(session, rest_url(simulator), tmp_path)
    stats = await resumed.load(SYMBOL, start_ms, end_ms)
    ids = stored_ids(tmp_path)
    assert sorted(ids) == expected
    assert len(set(ids)) == len(ids) == 16_060
    assert (stats.already_stored, stats.trades_stored) == (4_000, 12_060)


async def test_end_beyond_the_market_stops_at_the_latest_trade(
    simulator: BinanceSimulator, session: aiohttp.ClientSession, market: Market, tmp_path: Path
) -> None:
    loader, _ = make_loader(session, rest_url(simulator), tmp_path)
    stats = await loader.load(SYMBOL, market.time_of(19_000), market.time_of(19_903) + 3_600_000)
    assert stats.reached_latest
    assert stats.last_id == market.trades[-1][0]
    assert stored_ids(tmp_path) == [trade_id for trade_id, _ in market.trades[19_000:]]  # 904: one short page
    before_market = await loader.load(SYMBOL, market.time_of(0) - 7_200_000, market.time_of(0))
    assert (before_market.pages, before_market.trades_fetched) == (0, 0)  # two empty one-hour windows searched


async def test_records_normalize_refuses_are_kept_with_the_reason(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Binance never sends these; a small server does, to prove nothing is dropped silently."""
    records: list[dict[str, Any]] = [
        {"a": 10, "p": "61000.10", "q": "0.5", "f": 10, "l": 10, "T": 1723161600000, "m": True, "M": True},
        {"a": 11, "p": "-1", "q": "0.5", "f": 11, "l": 11, "T": 1723161600001, "m": False, "M": True},
        {"a": 12, "p": "61000.30", "q": "0.25", "f": 12, "l": 12, "T": 1723161600002, "m": False, "M": True},
    ]

    async def agg_trades(request: web.Request) -> web.Response:
        start, from_id = request.query.get("startTime"), int(request.query.get("fromId", "0"))
        selected = records[:1] if start is not None else [r for r in records if r["a"] >= from_id]
        return web.json_response(selected, headers={"X-MBX-USED-WEIGHT-1M": "4"})

    app = web.Application()
    app.router.add_get("/api/v3/aggTrades", agg_trades)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        loader, _ = make_loader(session, f"http://127.0.0.1:{runner.addresses[0][1]}", tmp_path)
        stats = await loader.load(SYMBOL, 1723161600000, 1723161700000)
    finally:
        await runner.cleanup()

    assert stored_ids(tmp_path) == [10, 12]
    assert (stats.trades_stored, stats.rejected) == (2, 1)
    (rejected_file,) = (tmp_path / "_rejected" / f"symbol={SYMBOL}").iterdir()
    (reject,) = [json.loads(line) for line in rejected_file.read_text().splitlines()]
    assert reject["record"] == records[1]
    assert "'p' (price) must be a plain decimal such as \"67000.12\", got '-1'" in reject["reason"]
    assert read_checkpoint(tmp_path).stored == [IdRange(first=10, last=12)]
