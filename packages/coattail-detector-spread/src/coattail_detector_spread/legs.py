"""Legs and venue pairs of instruments: MOD-003's definition, shared by the modules that compare venues.

A leg is one venue's symbol of an instrument: its canonical symbol from ``symbols`` with
``modules.spread.quote_equivalents`` applied (binance BTCUSDT and coinbase BTC-USD are both
legs of BTC/USD). A pair is two legs of one instrument on different venues, venue a < venue b.
Pure functions, no PySpark: they run on the driver when a detector is configured (MOD-003,
MOD-010) and in tests.

Example::

    legs = legs_of(config, spread_settings)   # (Leg('BTC/USD', 'binance', 'BTCUSDT'), ...)
    pairs = pairs_of(legs)                     # ((0, 1),): indexes into legs
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coattail_detector_spread.config import SpreadConfig
    from coattail_framework.config.model import CoattailConfig


@dataclass(frozen=True, order=True)
class Leg:
    """One venue's symbol of an instrument (``instrument`` after quote equivalence)."""

    instrument: str
    exchange: str
    symbol: str


def legs_of(config: CoattailConfig, settings: SpreadConfig) -> tuple[Leg, ...]:
    """Every configured venue symbol as a leg, ordered by instrument, then venue id."""
    return tuple(
        sorted(
            Leg(settings.instrument(canonical), exchange, symbol)
            for exchange, symbol, canonical in config.symbols.pairs()
        )
    )


def pairs_of(legs: Sequence[Leg]) -> tuple[tuple[int, int], ...]:
    """Index pairs (a, b) of legs of one instrument on different venues, venue a < venue b."""
    return tuple(
        (a, b)
        for a, b in itertools.combinations(range(len(legs)), 2)
        if legs[a].instrument == legs[b].instrument and legs[a].exchange < legs[b].exchange
    )
