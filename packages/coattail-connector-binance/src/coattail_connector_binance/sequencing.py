"""Per-symbol trade id sequencing: spot gaps, drop duplicates, hold implausible jumps.

Binance trade ids (``t``; aggregate ids ``a`` for aggTrade) are consecutive per symbol, so
the next expected id is always the last emitted one plus one. An id more than ``max_jump``
away from it (``10**15`` after ``3735683259``) is a ``jump``: the connector does not emit
it but ``hold``\\ s it. The next plausible id clears the held ones (they were absurd). Only
when the stream keeps jumping for ``resync_after_frames`` frames or ``resync_after_s``
seconds does ``hold`` answer ``resync``: the stream really moved, and the connector starts
again from there (backfilling the held range). So one absurd id can neither stall a symbol
(every later real trade a duplicate) nor make it skip ahead. Pure bookkeeping, used by the
connector in the producer process.

Example::

    >>> sequence = TradeSequence()
    >>> sequence.check("BTCUSDT", 10)
    Verdict(kind='first', first_missing=None, last_missing=None)
    >>> sequence.advance("BTCUSDT", 10); sequence.check("BTCUSDT", 13)
    Verdict(kind='gap', first_missing=11, last_missing=12)
    >>> sequence.check("BTCUSDT", 10**15).kind
    'jump'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class Verdict:
    """What to do with a trade id: emit it (``first``/``next``), drop it, fill a gap first, or hold a jump.

    ``hold`` answers ``suspect`` (drop it for now) or ``resync`` (start again at this id after
    filling ``first_missing..last_missing``, the held range, when it is not empty).
    """

    kind: Literal["first", "next", "duplicate", "gap", "jump", "suspect", "resync"]
    first_missing: int | None = None
    last_missing: int | None = None


@dataclass
class _Held:
    """Implausible ids seen since the last emitted one."""

    since: datetime
    ids: list[int] = field(default_factory=list)


class TradeSequence:
    """The last emitted trade id of each symbol, and the implausible ids held since."""

    def __init__(self, *, max_jump: int = 100_000, resync_after_frames: int = 20, resync_after_s: float = 30.0) -> None:
        self.max_jump = max_jump
        self.resync_after_frames = resync_after_frames
        self.resync_after_s = resync_after_s
        self._last: dict[str, int] = {}
        self._held: dict[str, _Held] = {}

    def last(self, symbol: str) -> int | None:
        """The last emitted id of ``symbol``, None before its first trade."""
        return self._last.get(symbol)

    def check(self, symbol: str, trade_id: int) -> Verdict:
        """Classify ``trade_id`` against the last emitted id of ``symbol`` (no state changes)."""
        last = self._last.get(symbol)
        if last is None:
            return Verdict("first")
        if abs(trade_id - (last + 1)) > self.max_jump:
            return Verdict("jump")
        if trade_id <= last:
            return Verdict("duplicate")
        if trade_id == last + 1:
            return Verdict("next")
        return Verdict("gap", last + 1, trade_id - 1)

    def hold(self, symbol: str, trade_id: int, at: datetime) -> Verdict:
        """Hold a ``jump`` id (received ``at``): ``suspect``, or ``resync`` once the stream kept jumping.

        After ``resync`` the caller restarts the symbol (``restart``) before the held range.
        """
        held = self._held.setdefault(symbol, _Held(at))
        held.ids.append(trade_id)
        persisted = len(held.ids) >= self.resync_after_frames
        if not persisted and (at - held.since).total_seconds() < self.resync_after_s:
            return Verdict("suspect")
        del self._held[symbol]
        first = min((held_id for held_id in held.ids if held_id < trade_id), default=trade_id)
        first = max(first, trade_id - self.max_jump)
        return Verdict("resync", first, trade_id - 1) if first < trade_id else Verdict("resync")

    def held(self, symbol: str) -> int:
        """How many implausible ids of ``symbol`` are held now."""
        held = self._held.get(symbol)
        return len(held.ids) if held is not None else 0

    def advance(self, symbol: str, trade_id: int) -> None:
        """Record ``trade_id`` as emitted (ids only move forward); held jumps were absurd."""
        self._held.pop(symbol, None)
        last = self._last.get(symbol)
        if last is None or trade_id > last:
            self._last[symbol] = trade_id

    def restart(self, symbol: str, last: int) -> None:
        """Start ``symbol`` again as if ``last`` were the last emitted id (after a ``resync``)."""
        self._held.pop(symbol, None)
        self._last[symbol] = last

    def forget(self, symbol: str) -> None:
        """Stop tracking ``symbol`` (after it is unsubscribed)."""
        self._last.pop(symbol, None)
        self._held.pop(symbol, None)
