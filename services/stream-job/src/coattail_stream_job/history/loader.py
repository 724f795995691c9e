"""One symbol's trade history into the raw zone: Parquet, resumable, exactly once.

The history comes from the venue's connector (``coattail_framework.history.TradeHistory``;
Binance ``aggTrades``, Coinbase ``/products/{id}/trades``), which owns the requests, rate
limits, retries and normalization; the loader only pages by trade id. The range is
half-open: trades with ``start <= T < end`` (``T`` = trade time, UTC). The loader asks the
history for the first trade at or after ``start``, then pages by trade id (``page_limit``
records a request, the venue's maximum by default) and stops at the first trade with
``T >= end``, or when the exchange has nothing newer (``--end`` in the future).

Every record goes through the connector's normalization (``TradeHistory.normalize``, the
live path's); a record it refuses is kept with the reason under ``_rejected/`` instead of the trades. Every
``rows_per_file`` trades, and when the run stops, the buffered pages are flushed:

1. the checkpoint names the files about to be written (``pending``);
2. each file is written whole (``ObjectStore.put``: temp name + rename, or one S3 upload);
3. the checkpoint records the id range as stored and clears ``pending``.

A rerun first deletes files left ``pending`` by a crash, then skips every stored id range: a
crash loses only unflushed pages (fetched again), and no trade is stored twice. On a ban
(``HistoryBannedError``, Binance's HTTP 418) or cancellation (Ctrl-C) the buffered pages are
flushed before the loader stops. One loader per symbol and destination at a time. Runs in
the CLI's process, on one event loop; file writes are synchronous and ordered.

Example::

    async with connector.trade_history() as history:
        loader = HistoryLoader(history, open_store(out, ...), schema)
        stats = await loader.load("BTCUSDT", start_ms, end_ms)
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from coattail_framework.errors import CoattailError
from coattail_framework.events import TradeEvent
from coattail_framework.history import HistoryBannedError, HistoryFetchError, TradeHistory
from coattail_stream_job.history.checkpoint import IdRange, LoadCheckpoint
from coattail_stream_job.history.progress import LoadStats, LogProgress, ProgressReporter, utc_text
from coattail_stream_job.history.records import events_table
from coattail_stream_job.history.store import ObjectStore

LOG = logging.getLogger(__name__)

DEFAULT_ROWS_PER_FILE = 100_000
"""Trades per Parquet file (about 100 pages, a few MB with zstd)."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """An aware datetime as milliseconds since the epoch (UTC)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=ms)


class HistoryBanError(CoattailError):
    """The venue banned this client (Binance: HTTP 418); the message says what is saved and when to resume."""

    def __init__(self, message: str, retry_after_s: float, stats: LoadStats) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.stats = stats


def checkpoint_path(symbol: str) -> str:
    """Where a symbol's checkpoint lives, relative to the destination root."""
    return f"_checkpoints/symbol={symbol}.json"


def trades_path(date: str, symbol: str, first_id: int, last_id: int) -> str:
    """The Parquet file of ``symbol``'s trades ``first_id..last_id`` traded on UTC ``date`` (YYYY-MM-DD)."""
    return f"date={date}/symbol={symbol}/part-{first_id:020d}-{last_id:020d}.parquet"


def rejected_path(symbol: str, first_id: int, last_id: int) -> str:
    """The JSON-lines file of records refused while flushing ids ``first_id..last_id``."""
    return f"_rejected/symbol={symbol}/part-{first_id:020d}-{last_id:020d}.jsonl"


@dataclass
class _Buffer:
    """Pages fetched since the last flush: ids ``first..last`` (all fetched), trades and rejects."""

    first: int | None = None
    last: int | None = None
    events: list[tuple[int, TradeEvent]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def take(self, trade_id: int) -> None:
        self.first = trade_id if self.first is None else self.first
        self.last = trade_id


class HistoryLoader:
    """Loads one symbol's trades for a time range from a venue's ``TradeHistory`` into an ``ObjectStore``."""

    def __init__(
        self,
        client: TradeHistory,
        store: ObjectStore,
        schema: pa.Schema,
        *,
        rows_per_file: int = DEFAULT_ROWS_PER_FILE,
        page_limit: int | None = None,
        progress: ProgressReporter | None = None,
    ) -> None:
        page_limit = client.max_page if page_limit is None else page_limit
        if not 1 <= page_limit <= client.max_page:
            raise ValueError(
                f"page_limit must be 1..{client.max_page} ({client.venue}'s cap for one history page), got {page_limit}"
            )
        if rows_per_file < 1:
            raise ValueError(f"rows_per_file must be >= 1, got {rows_per_file}")
        self._client = client
        self._store = store
        self._schema = schema
        self._rows_per_file = rows_per_file
        self._page_limit = page_limit
        self._progress = progress or LogProgress()

    async def load(self, symbol: str, start_ms: int, end_ms: int) -> LoadStats:
        """Store every trade of ``symbol`` with ``start_ms <= T < end_ms`` (ms since the epoch, UTC)."""
        if end_ms <= start_ms:
            raise ValueError(f"empty history range: end {utc_text(end_ms)} is not after start {utc_text(start_ms)}")
        stats = LoadStats(symbol=symbol, start_ms=start_ms, end_ms=end_ms)
        checkpoint = self._recover(symbol)
        buffer = _Buffer()
        try:
            checkpoint = await self._fetch(symbol, checkpoint, buffer, stats)
        except HistoryBannedError as ban:
            checkpoint = self._flush(symbol, checkpoint, buffer, stats)
            self._progress.close(stats)
            raise HistoryBanError(self._ban_message(ban, checkpoint, stats), ban.retry_after_s, stats) from None
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._flush(symbol, checkpoint, buffer, stats)
            self._progress.close(stats)
            LOG.warning("%s: stopped; rerun the same command to continue (%s)", symbol, stats.summary())
            raise
        self._flush(symbol, checkpoint, buffer, stats)
        self._progress.close(stats)
        if stats.reached_latest:
            LOG.warning(
                "%s: %s has no trade after id %s yet; the history ends before --end %s",
                symbol,
                self._client.venue,
                stats.last_id,
                utc_text(end_ms),
            )
        return stats

    def _recover(self, symbol: str) -> LoadCheckpoint:
        """The symbol's checkpoint, after deleting files a stopped run left uncommitted."""
        raw = self._store.get(checkpoint_path(symbol))
        if raw is None:
            return LoadCheckpoint(symbol=symbol)
        try:
            checkpoint = LoadCheckpoint.model_validate_json(raw)
        except ValueError as error:
            raise CoattailError(
                f"{self._store.uri(checkpoint_path(symbol))}: not a valid history checkpoint ({error}); "
                "move it away to reload this symbol from scratch"
            ) from None
        if checkpoint.symbol != symbol:
            raise CoattailError(
                f"{self._store.uri(checkpoint_path(symbol))} belongs to symbol {checkpoint.symbol!r}, not {symbol!r}"
            )
        if checkpoint.pending:
            for path in checkpoint.pending:
                self._store.delete(path)
            LOG.warning("%s: deleted %d uncommitted file(s) of a stopped run", symbol, len(checkpoint.pending))
            checkpoint = checkpoint.with_pending([])
            self._save(checkpoint)
        if checkpoint.stored:
            LOG.info("%s: resuming after %d stored id range(s)", symbol, len(checkpoint.stored))
        return checkpoint

    async def _fetch(
        self, symbol: str, checkpoint: LoadCheckpoint, buffer: _Buffer, stats: LoadStats
    ) -> LoadCheckpoint:
        first = await self._client.first_at_or_after(symbol, from_epoch_ms(stats.start_ms), from_epoch_ms(stats.end_ms))
        if first is None:
            LOG.info("%s: no trade between %s and %s", symbol, utc_text(stats.start_ms), utc_text(stats.end_ms))
            return checkpoint
        next_id = self._valid_id(first, None)
        while True:
            resumed = checkpoint.skip_stored(next_id)
            stats.already_stored += resumed - next_id
            next_id = resumed
            stop_before = checkpoint.next_stored_after(next_id)
            page = await self._client.page(symbol, from_id=next_id, limit=self._page_limit)
            received_at = datetime.now(UTC)
            stats.pages += 1
            if not page:
                stats.reached_latest = True
                break
            previous = next_id - 1
            reached_end = reached_stored = False
            for record in page:
                trade_id = self._valid_id(record, previous)
                if stop_before is not None and trade_id >= stop_before:
                    reached_stored = True
                    break
                trade_time = self._client.record_time(record)
                trade_ms = None if trade_time is None else epoch_ms(trade_time)
                if trade_ms is not None and trade_ms >= stats.end_ms:
                    reached_end = True
                    break
                self._take(record, trade_id, symbol, received_at, buffer, stats)
                stats.last_trade_ms = trade_ms if trade_ms is not None else stats.last_trade_ms
                previous = trade_id
            if len(buffer.events) + len(buffer.rejects) >= self._rows_per_file:
                checkpoint = self._flush(symbol, checkpoint, buffer, stats)
            self._progress.update(stats)
            if reached_end:
                break
            if reached_stored:
                next_id = stop_before if stop_before is not None else next_id
                continue
            if len(page) < self._page_limit:
                stats.reached_latest = True
                break
            next_id = previous + 1
        return checkpoint

    def _valid_id(self, record: object, previous: int | None) -> int:
        trade_id = self._client.record_id(record)
        if trade_id is None or (previous is not None and trade_id <= previous):
            raise HistoryFetchError(
                f"{self._client.venue} history answered a record without a valid increasing trade id "
                f"(previous id {previous}): {str(record)[:200]}"
            )
        return trade_id

    def _take(
        self, record: Any, trade_id: int, symbol: str, received_at: datetime, buffer: _Buffer, stats: LoadStats
    ) -> None:
        buffer.take(trade_id)
        stats.trades_fetched += 1
        stats.last_id = trade_id
        try:
            event = self._client.normalize(record, symbol, received_at)
        except ValueError as error:
            buffer.rejects.append({"reason": str(error), "record": record, "received_at": received_at.isoformat()})
            return
        buffer.events.append((trade_id, event))

    def _flush(self, symbol: str, checkpoint: LoadCheckpoint, buffer: _Buffer, stats: LoadStats) -> LoadCheckpoint:
        """Write the buffered pages, then commit their id range (see the module docstring)."""
        if buffer.first is None or buffer.last is None:
            return checkpoint
        files: dict[str, bytes] = {}
        by_date: dict[str, list[tuple[int, TradeEvent]]] = {}
        for trade_id, event in buffer.events:
            by_date.setdefault(event.timestamp.date().isoformat(), []).append((trade_id, event))
        for date, dated in by_date.items():
            path = trades_path(date, symbol, dated[0][0], dated[-1][0])
            files[path] = self._parquet([event for _, event in dated])
        if buffer.rejects:
            lines = "".join(json.dumps(reject, sort_keys=True) + "\n" for reject in buffer.rejects)
            files[rejected_path(symbol, buffer.first, buffer.last)] = lines.encode()
        self._save(checkpoint.with_pending(list(files)))
        for path, data in files.items():
            self._store.put(path, data)
        committed = checkpoint.with_stored(IdRange(first=buffer.first, last=buffer.last))
        self._save(committed)
        stats.trades_stored += len(buffer.events)
        stats.rejected += len(buffer.rejects)
        stats.files.extend(files)
        if buffer.rejects:
            where = self._store.uri(rejected_path(symbol, buffer.first, buffer.last))
            LOG.warning("%s: %d record(s) refused by normalize(), kept in %s", symbol, len(buffer.rejects), where)
        buffer.first = buffer.last = None
        buffer.events.clear()
        buffer.rejects.clear()
        return committed

    def _save(self, checkpoint: LoadCheckpoint) -> None:
        self._store.put(checkpoint_path(checkpoint.symbol), checkpoint.model_dump_json(indent=2).encode())

    def _parquet(self, events: list[TradeEvent]) -> bytes:
        sink = io.BytesIO()
        pq.write_table(events_table(events, self._schema), sink, compression="zstd")
        return sink.getvalue()

    def _ban_message(self, ban: HistoryBannedError, checkpoint: LoadCheckpoint, stats: LoadStats) -> str:
        resume_at = datetime.now(UTC) + timedelta(seconds=ban.retry_after_s)
        last = checkpoint.last_stored_id
        files = ", ".join(self._store.uri(path) for path in stats.files[-3:]) or "none"
        return (
            f"{self._client.venue} banned this client for {ban.retry_after_s:.0f} s (Retry-After): {ban}\n"
            f"Saved so far: {stats.symbol} last stored id {last}, "
            f"{stats.trades_stored:,} trades in {len(stats.files)} file(s) this run (latest: {files}); "
            f"checkpoint {self._store.uri(checkpoint_path(stats.symbol))}.\n"
            f"Rerun the same command after {resume_at.isoformat(timespec='seconds')} to continue from there."
        )
