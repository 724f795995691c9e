"""MOD-005's state machine: fills -> taker orders -> clips -> sequences, per key.

Runs in the Spark Python workers inside ``applyInPandasWithState`` (``tracker.py``), once per
(exchange, symbol, side) per micro-batch in which the key had trades or its event-time timeout
fired; pure Python, so tests drive it directly. It keeps the sides apart itself (a clip only
joins a sequence of its own side), so it does not depend on how the caller keys it. Times are
microseconds since the epoch (UTC).

Watermark ``W`` (event time): Spark drops a fill at or before the previous batch's watermark
before it reaches this code, so once ``W`` reaches an instant every fill up to it is in hand.
Two kinds of event, each handled when ``W`` reaches its time, in event-time order:

- **order** at ``t``: the fills at ``t`` are grouped into taker orders exactly as MOD-002 does
  (``coattail_detector_whale.fills.taker_orders``). An order with a notional in
  [``min_clip_usd``, ``max_clip_usd``] is a clip. It joins the open sequence of its side whose
  last clip is before ``t`` by at most ``max_gap_seconds``, whose first clip is at most
  ``horizon_seconds`` before ``t``, and whose median clip base quantity ``m`` has the clip's
  quantity in [m x (1 - ``size_tolerance``), m x (1 + ``size_tolerance``)]; of several, the
  closest in size (``|q - m| / m``), then the one opened first. Otherwise it opens a sequence.
- **close** at ``min(last clip + max_gap_seconds, first clip + horizon_seconds)``: no clip can
  join any more. If the sequence's regular core (``sequences.regular_core``: the longest chain
  of its clips whose intervals lie within ``cadence_tolerance`` of its median interval) has at
  least ``min_clips`` clips and ``min_total_usd`` notional, the row describes the core and
  counts the clips left out in ``off_cadence_clips``; otherwise a sequence of at least
  ``min_clips`` clips and ``min_total_usd`` notional is written whole (``off_cadence_clips``
  0), any other forgotten (``written_figures``). A split order working longer than
  ``horizon_seconds`` is thus written as consecutive sequences of at most ``horizon_seconds``
  each (its next clip opens the next one).

At one instant, orders come before closes (a clip exactly ``max_gap_seconds`` after the last one
still joins). A batch handles only events in (previous ``W``, ``W``] and sums are
``math.fsum``, so the rows and every double are the same however the trades were cut into
micro-batches.

Bounded state: the fills after ``W`` (about ``watermark_delay_seconds`` of the key's trades) and
the clips of the open sequences: all of the last ``horizon_seconds`` plus ``max_gap_seconds``,
and at most ``max_orders_in_state``. When a new clip would exceed that, the oldest clip held
(earliest trade time; ties: the sequence opened first) is dropped from its sequence (a sequence
left empty is forgotten) and counted in ``orders_dropped``, which every row of the key carries
(a running count): the state then covers a shorter past, as if the horizon were shorter.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from coattail_detector_split_order.sequences import Clip, ClipSequence, regular_core, sequence_figures
from coattail_detector_whale.fills import Fill, TakerOrder, taker_orders

STATE_VERSION = 1


@dataclass(frozen=True)
class Settings:
    """What the state machine needs of ``SplitOrderConfig`` (µs, USD)."""

    min_clip_usd: float
    max_clip_usd: float
    size_tolerance: float
    max_gap_us: int
    horizon_us: int
    min_clips: int
    min_total_usd: float
    max_interval_cv: float
    cadence_tolerance: float
    max_orders_in_state: int


@dataclass
class KeyState:
    """The state of one key: see the module docstring."""

    watermark_us: int | None = None
    buffer: list[Fill] = field(default_factory=list)
    """Fills after the watermark, in trade-time order: their orders are not final yet."""
    sequences: list[ClipSequence] = field(default_factory=list)
    """Open sequences, in the order they were opened."""
    orders_dropped: int = 0

    @classmethod
    def from_json(cls, text: str) -> KeyState:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"split-order state version {data.get('version')!r}, this code reads {STATE_VERSION}")
        return cls(
            watermark_us=data["watermark_us"],
            buffer=[Fill(*values) for values in data["buffer"]],
            sequences=[
                ClipSequence(item["side"], [Clip(*clip) for clip in item["clips"]]) for item in data["sequences"]
            ],
            orders_dropped=data["orders_dropped"],
        )

    def to_json(self) -> str:
        """This state as text (JSON keeps every double exactly)."""
        return json.dumps(
            {
                "version": STATE_VERSION,
                "watermark_us": self.watermark_us,
                "buffer": [list(fill) for fill in self.buffer],
                "sequences": [sequence.as_json() for sequence in self.sequences],
                "orders_dropped": self.orders_dropped,
            },
            separators=(",", ":"),
        )

    @property
    def clips_held(self) -> int:
        """Clips in the open sequences (what ``max_orders_in_state`` bounds)."""
        return sum(len(sequence.clips) for sequence in self.sequences)

    def advance(self, fills: Iterable[Fill], watermark_us: int, settings: Settings) -> list[dict[str, Any]]:
        """Take a batch of the key's fills, then handle every event up to ``watermark_us``.

        Returns the ``split_order_sequences`` rows (dicts, times in µs, without exchange and
        symbol) in the order their sequences closed.
        """
        previous = self.watermark_us
        fresh = [fill for fill in fills if previous is None or fill.event_us > previous]  # Spark drops the others
        self.buffer = sorted([*self.buffer, *fresh], key=lambda fill: fill.event_us)
        cut = bisect.bisect_right(self.buffer, watermark_us, key=lambda fill: fill.event_us)
        final, self.buffer = self.buffer[:cut], self.buffer[cut:]
        rows: list[dict[str, Any]] = []
        for order in taker_orders(final):
            if settings.min_clip_usd <= order.notional <= settings.max_clip_usd:
                rows.extend(self._close(order.event_us, settings, inclusive=False))
                self._place(order, settings)
        rows.extend(self._close(watermark_us, settings, inclusive=True))
        self.watermark_us = watermark_us if previous is None else max(previous, watermark_us)
        return rows

    def next_event_us(self, settings: Settings) -> int | None:
        """The earliest instant at which the watermark makes an event due (None: nothing pending)."""
        times = [self.buffer[0].event_us] if self.buffer else []
        times.extend(sequence.closes_us(settings.max_gap_us, settings.horizon_us) for sequence in self.sequences)
        return min(times, default=None)

    def _place(self, order: TakerOrder, settings: Settings) -> None:
        """Add ``order`` as a clip to the matching open sequence, or open one; then keep the bound."""
        clip = Clip(order.event_us, order.base_quantity, order.notional, order.vwap_price, order.first_trade_id)
        matches = [
            (sequence.size_distance(clip.base_quantity), index)
            for index, sequence in enumerate(self.sequences)
            if sequence.side == order.side
            and sequence.accepts(clip, settings.max_gap_us, settings.horizon_us, settings.size_tolerance)
        ]
        if matches:
            self.sequences[min(matches)[1]].add(clip)
        else:
            self.sequences.append(ClipSequence(order.side, [clip]))
        for _ in range(self.clips_held - settings.max_orders_in_state):
            oldest = min(range(len(self.sequences)), key=lambda index: (self.sequences[index].start_us, index))
            self.sequences[oldest].drop_first()
            if not self.sequences[oldest].clips:
                del self.sequences[oldest]
            self.orders_dropped += 1

    def _close(self, until_us: int, settings: Settings, *, inclusive: bool) -> list[dict[str, Any]]:
        """Close the sequences whose close time (``ClipSequence.closes_us``) is before ``until_us``, or at
        it when ``inclusive``, earliest first; returns the rows of those worth writing."""
        due = []
        for index, sequence in enumerate(self.sequences):
            closes_us = sequence.closes_us(settings.max_gap_us, settings.horizon_us)
            if closes_us < until_us or (inclusive and closes_us == until_us):
                due.append((closes_us, index))
        if not due:
            return []
        closing = [self.sequences[index] for _, index in sorted(due)]
        closed = {index for _, index in due}
        self.sequences = [sequence for index, sequence in enumerate(self.sequences) if index not in closed]
        rows = []
        for sequence in closing:
            figures = written_figures(sequence, settings)
            if figures is not None:
                rows.append({**figures, "orders_dropped": self.orders_dropped})
        return rows


def written_figures(sequence: ClipSequence, settings: Settings) -> dict[str, Any] | None:
    """The row of a closed sequence without ``orders_dropped``, or None if it is not written.

    Its regular core (``regular_core``) if that has ``min_clips`` clips and ``min_total_usd``
    notional, with ``off_cadence_clips`` the clips left out; else all its clips, if they have,
    with ``off_cadence_clips`` 0.
    """
    clips = sequence.clips
    if len(clips) < settings.min_clips:
        return None
    core = regular_core(clips, settings.cadence_tolerance)
    if len(core) >= settings.min_clips:
        figures = sequence_figures(sequence.side, core, settings.max_interval_cv)
        if figures["total_notional"] >= settings.min_total_usd:
            return {**figures, "off_cadence_clips": len(clips) - len(core)}
    figures = sequence_figures(sequence.side, clips, settings.max_interval_cv)
    if figures["total_notional"] >= settings.min_total_usd:
        return {**figures, "off_cadence_clips": 0}
    return None
