"""Canonical instruments and each venue's spelling of them.

Configured as ``symbols`` in ``config/features.yaml``: canonical ``BASE/QUOTE`` names
mapped to each venue's own symbol. Cross-exchange modules join on the canonical name.

Example::

    >>> catalog = SymbolCatalog({"BTC/USDT": {"binance": "BTCUSDT"}, "BTC/USD": {"coinbase": "BTC-USD"}})
    >>> catalog.for_exchange("binance"), catalog.canonical("coinbase", "BTC-USD")
    (['BTCUSDT'], 'BTC/USD')
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from pydantic import RootModel, field_validator

_CANONICAL = re.compile(r"^[A-Z0-9]{1,15}/[A-Z0-9]{1,15}$")
_EXCHANGE_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{1,31}$")
_EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9-]{1,31}$")


class SymbolCatalog(RootModel[dict[str, dict[str, str]]]):
    """``{canonical: {venue id: venue symbol}}``, validated."""

    root: dict[str, dict[str, str]]

    @field_validator("root")
    @classmethod
    def _check(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        seen: dict[tuple[str, str], str] = {}
        for canonical, venues in value.items():
            if not _CANONICAL.match(canonical):
                raise ValueError(f"symbol {canonical!r} must be canonical BASE/QUOTE, e.g. BTC/USDT")
            for exchange, symbol in venues.items():
                if not _EXCHANGE_ID.match(exchange):
                    raise ValueError(f"{canonical}: venue id {exchange!r} must be lower case, e.g. binance")
                if not _EXCHANGE_SYMBOL.match(symbol):
                    raise ValueError(f"{canonical}.{exchange}: symbol {symbol!r} must be upper case, e.g. BTCUSDT")
                if (exchange, symbol) in seen:
                    raise ValueError(
                        f"{exchange} {symbol} is mapped to both {seen[(exchange, symbol)]} and {canonical}"
                    )
                seen[(exchange, symbol)] = canonical
        return value

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def for_exchange(self, exchange: str) -> list[str]:
        """The venue's symbols, in configuration order."""
        return [venues[exchange] for venues in self.root.values() if exchange in venues]

    def canonical(self, exchange: str, symbol: str) -> str | None:
        """The canonical name of a venue symbol, or None when it is not configured."""
        for canonical, venues in self.root.items():
            if venues.get(exchange) == symbol:
                return canonical
        return None

    def pairs(self) -> list[tuple[str, str, str]]:
        """Every configured ``(exchange, symbol, canonical)``."""
        return [(ex, sym, canonical) for canonical, venues in self.root.items() for ex, sym in venues.items()]

    def exchanges(self) -> list[str]:
        """Every venue id that quotes at least one configured instrument."""
        return sorted({exchange for venues in self.root.values() for exchange in venues})

    def as_mapping(self) -> Mapping[str, Mapping[str, str]]:
        """The catalogue as a plain mapping."""
        return self.root
