"""Per-symbol trade id sequencing: spot gaps, drop duplicates.

Binance trade ids (``t``; aggregate ids ``a`` for aggTrade) are consecutive per symbol, so
the next expected id is always the last emitted one plus one. Pure bookkeeping, used by the
connector in the producer process.

Example::

    >>> sequence = TradeSequence()
    >>> sequence.check("BTCUSDT", 10)
    Verdict(kind='first', first_missing=None, last_missing=None)
    >>> sequence.advance("BTCUSDT", 10); sequence.check("BTCUSDT", 13)
    Verdict(kind='gap', first_missing=11, last_missing=12)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Verdict:
    """What to do with a trade id: emit it (``first``/``next``), drop it, or fill a gap first."""

    kind: Literal["first", "next", "duplicate", "gap"]
    first_missing: int | None = None
    last_missing: int | None = None


class TradeSequence:
    """The last emitted trade id of each symbol."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def last(self, symbol: str) -> int | None:
        """The last emitted id of ``symbol``, None before its first trade."""
        return self._last.get(symbol)

    def check(self, symbol: str, trade_id: int) -> Verdict:
        """Classify ``trade_id`` against the last emitted id of ``symbol``."""
        last = self._last.get(symbol)
        if last is None:
            return Verdict("first")
        if trade_id <= last:
            return Verdict("duplicate")
        if trade_id == last + 1:
            return Verdict("next")
        return Verdict("gap", last + 1, trade_id - 1)

    def advance(self, symbol: str, trade_id: int) -> None:
        """Record ``trade_id`` as emitted (ids only move forward)."""
        last = self._last.get(symbol)
        if last is None or trade_id > last:
            self._last[symbol] = trade_id

    def forget(self, symbol: str) -> None:
        """Stop tracking ``symbol`` (after it is unsubscribed)."""
        self._last.pop(symbol, None)
