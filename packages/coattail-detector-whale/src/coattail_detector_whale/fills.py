"""MOD-002's taker orders in plain Python, for detectors that group fills inside a state function.

The whale query groups fills with Spark expressions (``orders.py``). A module that needs the
same orders inside ``applyInPandasWithState`` (MOD-008 whale-alpha: Spark refuses a stateful
function after an aggregation, ADR-008) cannot run those expressions there, so this module is
their Python twin, kept beside them: same fill filter, same grouping key, same fill order,
same split on trade-id gaps, same figures summed in the same order (so the same doubles).
``tests/test_fills_twin.py`` runs both on the bundled recording and on seeded random fills
and requires identical orders.

Pure functions, no Spark: they run in Spark's Python workers (MOD-008's state function) and
in tests. Times are microseconds since the epoch (UTC); amounts in the instrument's quote
currency (``quote_volume``, prices) or its base currency (``quantity``).

Example::

    orders = taker_orders([Fill(1_723_161_244_123_000, "buy", None, "101", 60_500.0, 2.0, 121_000.0)])
    orders[0].notional      # 121000.0
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

TAKER_SIDES = ("buy", "sell")
BPS = 10_000.0
_INTEGER_TRADE_ID = re.compile(r"^[0-9]{1,18}$")
"""``orders.INTEGER_TRADE_ID`` as Python reads it (``$`` accepts a final newline in both, as ``int`` does)."""


class Fill(NamedTuple):
    """One trade as MOD-002 reads it; ``quote_volume`` None means price x quantity."""

    event_us: int
    side: str | None
    taker_order_id: str | None
    trade_id: str | None
    price: float
    quantity: float
    quote_volume: float | None


@dataclass(frozen=True)
class TakerOrder:
    """One taker order: the ``whale_trades`` figures (``schema.WHALE_TRADES``) without exchange and symbol."""

    side: str
    event_us: int
    taker_order_id: str | None
    notional: float
    base_quantity: float
    fill_count: int
    first_trade_id: str | None
    last_trade_id: str | None
    first_price: float
    last_price: float
    vwap_price: float
    price_impact_bps: float


def trade_number(trade_id: str | None) -> int | None:
    """``trade_id`` as an integer when it is one of at most 18 digits (``orders.trade_number``), else None."""
    if trade_id is None or not _INTEGER_TRADE_ID.match(trade_id):
        return None
    return int(trade_id)


def evaluated(fill: Fill) -> bool:
    """Whether MOD-002 evaluates ``fill`` (its instrument's quote counts as USD is the caller's check)."""
    return fill.side in TAKER_SIDES and fill.price > 0 and fill.quantity > 0


def _fill_order(fill: Fill) -> tuple[bool, int, str, float, float, float]:
    """The sort key of ``orders.fill_struct``: numbered fills first, by number, then by id."""
    number = trade_number(fill.trade_id)
    return (number is None, number or 0, fill.trade_id or "", fill.price, fill.quantity, _quote(fill))


def _quote(fill: Fill) -> float:
    return fill.price * fill.quantity if fill.quote_volume is None else fill.quote_volume


def _runs(fills: Sequence[Fill], split_on_id_gaps: bool) -> list[list[Fill]]:
    """``orders.split_runs``: sorted fills cut where consecutive numbered fills skip an id."""
    runs: list[list[Fill]] = []
    previous: int | None = None
    for fill in fills:
        number = trade_number(fill.trade_id)
        gap = number is not None and previous is not None and number != previous + 1
        if not runs or (split_on_id_gaps and gap):
            runs.append([])
        runs[-1].append(fill)
        previous = number
    return runs


def _figures(run: Sequence[Fill], side: str, event_us: int, taker_order_id: str | None) -> TakerOrder:
    """``orders.order_figures``: sums folded in fill order from 0.0, first and last by fill order."""
    notional = 0.0
    base_quantity = 0.0
    for fill in run:
        notional += _quote(fill)
        base_quantity += fill.quantity
    first, last = run[0], run[-1]
    against_taker = 1.0 if side == "buy" else -1.0
    impact = (last.price - first.price) / first.price * BPS * against_taker + 0.0
    return TakerOrder(
        side=side,
        event_us=event_us,
        taker_order_id=taker_order_id,
        notional=notional,
        base_quantity=base_quantity,
        fill_count=len(run),
        first_trade_id=first.trade_id,
        last_trade_id=last.trade_id,
        first_price=first.price,
        last_price=last.price,
        vwap_price=notional / base_quantity,
        price_impact_bps=impact,
    )


def taker_orders(fills: Iterable[Fill]) -> list[TakerOrder]:
    """The taker orders of one instrument's ``fills`` (any order; fills MOD-002 skips are ignored).

    Grouped by (side, trade time, ``taker_order_id``) as ``WhaleDetector.process`` groups
    them; a group without a ``taker_order_id`` is split into runs of consecutive trade ids.
    Returned sorted by (trade time, side, taker order id, first trade number): the caller
    needs no further ordering for a deterministic result.
    """
    groups: dict[tuple[str, int, str | None], list[Fill]] = {}
    for fill in fills:
        if evaluated(fill):
            groups.setdefault((str(fill.side), fill.event_us, fill.taker_order_id), []).append(fill)
    orders = []
    for side, event_us, taker_order_id in sorted(groups, key=lambda key: (key[1], key[0], key[2] or "")):
        ordered = sorted(groups[side, event_us, taker_order_id], key=_fill_order)
        for run in _runs(ordered, split_on_id_gaps=taker_order_id is None):
            orders.append(_figures(run, side, event_us, taker_order_id))
    return orders


def usd_quoted_pairs(pairs: Iterable[tuple[str, str, str]], usd_quote_currencies: Iterable[str]) -> tuple[str, ...]:
    """``exchange:symbol`` of the ``(exchange, symbol, canonical)`` pairs whose quote counts as USD, sorted."""
    quotes = set(usd_quote_currencies)
    usd = (f"{exchange}:{symbol}" for exchange, symbol, canonical in pairs if canonical.split("/")[1] in quotes)
    return tuple(sorted(usd))
