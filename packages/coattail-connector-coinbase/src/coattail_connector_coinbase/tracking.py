"""Per-product order, gap and duplicate bookkeeping of one Coinbase connector.

Runs in the producer process; pure state, no I/O. Coinbase numbers two things per product:

- ``sequence`` counts every message of the product's full feed, so on the ``matches``
  channel consecutive trades skip numbers. It orders messages: one older than the last
  seen is stale.
- ``trade_id`` counts trades, one by one. A jump between two trades, or a heartbeat's
  ``last_trade_id`` above the last trade seen, reveals trades that never arrived: a gap.

Trade ids already emitted are remembered (a bounded window over all products) so a trade
delivered twice (``last_match`` after a reconnect, a backfill racing the feed) is dropped.

Both marks (highest sequence, highest trade id) can be poisoned by one absurd frame
(``sequence`` 10^18): every later real message then looks older. Messages that disagree
with a mark while carrying trades not yet emitted are counted per product; after
``resync_frames`` of them in a row, or ``resync_seconds`` since the first, the mark is reset
to the current message (a ``Resync`` is recorded for the caller to count and log). Trades
dropped as stale meanwhile fall between the reset marks and come back as a gap.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Gap:
    """Trades ``first``..``last`` (inclusive) of ``product_id`` that were not received."""

    product_id: str
    first: int
    last: int

    @property
    def size(self) -> int:
        """How many trades are missing."""
        return self.last - self.first + 1


@dataclass(frozen=True)
class Resync:
    """A product's mark (``sequence`` or ``trade_id``) reset from ``absurd`` to ``value``."""

    product_id: str
    mark: Literal["sequence", "trade_id"]
    absurd: int
    value: int
    frames: int
    """Disagreeing messages seen before the reset."""


@dataclass
class _Disagreement:
    started: float
    frames: int
    lowest_trade: int


class TradeTracker:
    """What one connector has seen, per product, across reconnects.

    ``now`` arguments are seconds on any monotonic clock (the caller's).
    """

    def __init__(self, dedupe_window: int, *, resync_frames: int = 20, resync_seconds: float = 30.0) -> None:
        self._window = dedupe_window
        self._resync_frames = resync_frames
        self._resync_seconds = resync_seconds
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._last_sequence: dict[str, int] = {}
        self._highest_trade: dict[str, int] = {}
        self._disagreements: dict[tuple[str, str], _Disagreement] = {}
        self.resyncs: list[Resync] = []
        """Every reset so far, oldest first (the caller may clear it once counted)."""

    def is_stale(self, product_id: str, sequence: int, trade_id: int, now: float) -> bool:
        """True when the trade's ``sequence`` is older than the product's last one: drop it.

        A repeated trade (already emitted) is simply stale. A new trade with an older
        sequence counts towards a resync; the one that completes it is not stale.
        """
        last = self._last_sequence.get(product_id)
        if last is None or sequence >= last:
            self._disagreements.pop((product_id, "sequence"), None)
            return False
        if self.is_duplicate(product_id, trade_id):
            return True
        disagreement = self._disagree(product_id, "sequence", trade_id, now)
        if disagreement is None:
            return True
        self._last_sequence[product_id] = sequence
        self.resyncs.append(Resync(product_id, "sequence", last, sequence, disagreement.frames))
        highest = self._highest_trade.get(product_id)
        if highest is not None and highest >= trade_id:  # the same frame poisoned the trade id too
            self._highest_trade[product_id] = disagreement.lowest_trade - 1
        return False

    def _disagree(self, product_id: str, mark: str, trade_id: int, now: float) -> _Disagreement | None:
        """Count one disagreeing message; the finished run when it calls for a reset, else None."""
        key = (product_id, mark)
        run = self._disagreements.get(key)
        if run is None:
            run = self._disagreements[key] = _Disagreement(now, 0, trade_id)
        run.frames += 1
        run.lowest_trade = min(run.lowest_trade, trade_id)
        if run.frames < self._resync_frames and now - run.started < self._resync_seconds:
            return None
        del self._disagreements[key]
        return run

    def observe_sequence(self, product_id: str, sequence: int) -> None:
        """Record a message's sequence (keeps the highest)."""
        if sequence > self._last_sequence.get(product_id, -1):
            self._last_sequence[product_id] = sequence

    def is_duplicate(self, product_id: str, trade_id: int) -> bool:
        """True when the trade was already emitted (within the window)."""
        return (product_id, trade_id) in self._seen

    def remember(self, product_id: str, trade_id: int) -> None:
        """Record an emitted trade; the oldest remembered id is forgotten past the window."""
        self._seen[(product_id, trade_id)] = None
        if len(self._seen) > self._window:
            self._seen.popitem(last=False)

    def observe_trade(self, product_id: str, trade_id: int, now: float) -> Gap | None:
        """A trade that exists; returns the trades missing before it, if any."""
        return self._advance(product_id, trade_id, trade_id - 1, now)

    def observe_last_trade_id(self, product_id: str, last_trade_id: int, now: float) -> Gap | None:
        """A heartbeat's ``last_trade_id``; returns the trades up to it not yet seen, if any."""
        return self._advance(product_id, last_trade_id, last_trade_id, now)

    def _advance(self, product_id: str, highest: int, missing_until: int, now: float) -> Gap | None:
        previous = self._highest_trade.get(product_id)
        if previous is not None and highest <= previous:
            if highest < previous and not self.is_duplicate(product_id, highest):
                run = self._disagree(product_id, "trade_id", highest, now)
                if run is not None:
                    self._highest_trade[product_id] = highest
                    self.resyncs.append(Resync(product_id, "trade_id", previous, highest, run.frames))
            return None
        self._disagreements.pop((product_id, "trade_id"), None)
        self._highest_trade[product_id] = highest
        if previous is None or missing_until <= previous:
            return None
        return Gap(product_id, previous + 1, missing_until)
