"""Per-product order, gap and duplicate bookkeeping of one Coinbase connector.

Runs in the producer process; pure state, no I/O. Coinbase numbers two things per product:

- ``sequence`` counts every message of the product's full feed, so on the ``matches``
  channel consecutive trades skip numbers. It orders messages: one older than the last
  seen is stale.
- ``trade_id`` counts trades, one by one. A jump between two trades, or a heartbeat's
  ``last_trade_id`` above the last trade seen, reveals trades that never arrived: a gap.

Trade ids already emitted are remembered (a bounded window over all products) so a trade
delivered twice (``last_match`` after a reconnect, a backfill racing the feed) is dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


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


class TradeTracker:
    """What one connector has seen, per product, across reconnects."""

    def __init__(self, dedupe_window: int) -> None:
        self._window = dedupe_window
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._last_sequence: dict[str, int] = {}
        self._highest_trade: dict[str, int] = {}

    def is_stale(self, product_id: str, sequence: int) -> bool:
        """True when ``sequence`` is older than the last one seen for the product."""
        last = self._last_sequence.get(product_id)
        return last is not None and sequence < last

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

    def observe_trade(self, product_id: str, trade_id: int) -> Gap | None:
        """A trade that exists; returns the trades missing before it, if any."""
        return self._advance(product_id, trade_id, trade_id - 1)

    def observe_last_trade_id(self, product_id: str, last_trade_id: int) -> Gap | None:
        """A heartbeat's ``last_trade_id``; returns the trades up to it not yet seen, if any."""
        return self._advance(product_id, last_trade_id, last_trade_id)

    def _advance(self, product_id: str, highest: int, missing_until: int) -> Gap | None:
        previous = self._highest_trade.get(product_id)
        if previous is not None and highest <= previous:
            return None
        self._highest_trade[product_id] = highest
        if previous is None or missing_until <= previous:
            return None
        return Gap(product_id, previous + 1, missing_until)
