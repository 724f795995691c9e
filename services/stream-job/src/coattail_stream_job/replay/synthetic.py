"""SYNTHETIC Coinbase BTC-USD matches for the demo: the cases the bundled real data cannot show.

The real Coinbase recording (2021, altcoins) overlaps no Binance recording, so a
cross-exchange spread (MOD-003, BTC/USDT on Binance against BTC/USD on Coinbase) and a
Coinbase whale with a published ``taker_order_id`` (MOD-002) cannot come from real data.
``write_coinbase_btc_usd`` writes a Coinbase Exchange ``match`` recording (the exchange's
exact wire format, one message per line after its receive time in ns since the epoch, as
the Binance recordings are: ``<receive ns> <JSON>``) priced from the REAL Binance spot
BTCUSDT trades: per spread window, a few small fills at the Binance VWAP plus a fixed
premium, one window with a wide premium, and one large taker order split into fills.
The file name starts with ``SYNTHETIC_`` and the report lists it as synthetic input.
It goes through the Coinbase simulator and the unchanged connector like any recording.
The receive times (trade time plus ``RECEIVE_LATENCY``) move the simulator's recorded
clock from the 2021 recording, replayed first on the same venue, to 2024: without them
the connector would judge the 2024 trades against the 2021 clock and quarantine them all
(``time_window``).

Runs in the demo process, before the replay. Times are UTC; prices in USD per BTC.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coattail_framework.recordings import read_recording
from coattail_framework.simulator import ns_from_utc

PRODUCT = "BTC-USD"
FILE_NAME = "SYNTHETIC_coinbase_btc_usd.log"
RECEIVE_LATENCY = timedelta(milliseconds=20)
"""A synthetic message's receive time after its trade time."""
NAMESPACE = uuid.UUID("6f1c9a3e-2f4d-4b53-9a61-5d0c7e8b2a10")


@dataclass(frozen=True)
class SyntheticPlan:
    """What the synthetic recording holds (all amounts in USD, premiums in basis points)."""

    window_seconds: int = 30
    fills_per_window: int = 4
    fill_size_btc: float = 0.06
    premium_bps: float = 2.0
    wide_window_index: int = 9
    wide_premium_bps: float = 80.0
    whale_window_index: int = 14
    whale_fills: int = 10
    whale_fill_size_btc: float = 1.0

    def describe(self) -> str:
        """One line for the report and the summary."""
        return (
            f"Coinbase {PRODUCT} matches priced from the real Binance BTCUSDT VWAP of each "
            f"{self.window_seconds}s window: {self.fills_per_window} fills of {self.fill_size_btc} BTC at "
            f"+{self.premium_bps:g} bps, window #{self.wide_window_index} at +{self.wide_premium_bps:g} bps "
            f"(spread case), one taker buy of {self.whale_fills} x {self.whale_fill_size_btc:g} BTC in window "
            f"#{self.whale_window_index} (whale case)"
        )


def binance_window_vwaps(paths: Iterable[Path], window_seconds: int) -> list[tuple[datetime, float]]:
    """``(window start UTC, VWAP)`` of the Binance ``@trade`` messages of ``paths``, by window."""
    quote: dict[int, float] = {}
    base: dict[int, float] = {}
    for path in paths:
        for message in read_recording(path):
            if message.malformed:
                continue
            data = json.loads(message.payload).get("data", {})
            if not isinstance(data, dict) or data.get("e") != "trade":
                continue
            window = int(data["T"]) // 1000 // window_seconds * window_seconds
            price, quantity = float(data["p"]), float(data["q"])
            quote[window] = quote.get(window, 0.0) + price * quantity
            base[window] = base.get(window, 0.0) + quantity
    return [(datetime.fromtimestamp(w, tz=UTC), quote[w] / base[w]) for w in sorted(quote)]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def coinbase_matches(vwaps: list[tuple[datetime, float]], plan: SyntheticPlan) -> list[dict[str, object]]:
    """The match messages of ``plan`` over the windows ``vwaps`` (complete windows only)."""
    messages: list[dict[str, object]] = []
    sequence, trade_id = 50_000_000_000, 700_000_000
    spacing = plan.window_seconds / (plan.fills_per_window + 1)
    for index, (start, vwap) in enumerate(vwaps[1:-1], start=1):
        premium = plan.wide_premium_bps if index == plan.wide_window_index else plan.premium_bps
        price = round(vwap * (1 + premium / 10_000), 2)
        orders: list[tuple[datetime, str, float, int]] = [
            (start + timedelta(seconds=spacing * (k + 1)), "sell" if k % 2 else "buy", plan.fill_size_btc, 1)
            for k in range(plan.fills_per_window)
        ]
        if index == plan.whale_window_index:
            orders.append((start + timedelta(seconds=spacing / 2), "sell", plan.whale_fill_size_btc, plan.whale_fills))
        for at, maker_side, size, fills in sorted(orders):
            taker = str(uuid.uuid5(NAMESPACE, f"taker-{trade_id}"))
            for fill in range(fills):
                sequence += 1
                trade_id += 1
                messages.append(
                    {
                        "type": "match",
                        "trade_id": trade_id,
                        "maker_order_id": str(uuid.uuid5(NAMESPACE, f"maker-{trade_id}")),
                        "taker_order_id": taker,
                        "side": maker_side,
                        "size": f"{size:.8f}",
                        "price": f"{price + fill * 0.5:.2f}",
                        "product_id": PRODUCT,
                        "sequence": sequence,
                        "time": _iso(at),
                    }
                )
    return messages


def write_coinbase_btc_usd(binance_btcusdt: Iterable[Path], folder: Path, plan: SyntheticPlan | None = None) -> Path:
    """Write the synthetic recording into ``folder``; returns its path."""
    plan = plan or SyntheticPlan()
    messages = coinbase_matches(binance_window_vwaps(binance_btcusdt, plan.window_seconds), plan)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    path.write_text(
        "".join(f"{_received_ns(message)} {json.dumps(message, separators=(',', ':'))}\n" for message in messages)
    )
    return path


def _received_ns(message: dict[str, object]) -> int:
    """The recorded receive time of a synthetic match: its trade time plus ``RECEIVE_LATENCY`` (ns, UTC)."""
    at = datetime.strptime(str(message["time"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return ns_from_utc(at + RECEIVE_LATENCY)


def missing_cases(alerts: Iterable[Mapping[str, Any]], plan: SyntheticPlan) -> list[str]:
    """The cases of ``plan`` that no alert shows (empty when the demo showed both).

    The whale case: a MOD-002 alert on Coinbase ``PRODUCT`` of ``whale_fills`` fills. The
    spread case: a MOD-003 alert with a Coinbase leg whose premium is within 25% of
    ``wide_premium_bps`` (the other venue's VWAP differs from the one the file was priced from).
    """
    alerts = list(alerts)
    whale = any(
        alert.get("module_id") == "MOD-002"
        and alert.get("exchange") == "coinbase"
        and alert.get("symbol") == PRODUCT
        and _details(alert).get("fill_count") == plan.whale_fills
        for alert in alerts
    )
    spread = any(
        alert.get("module_id") == "MOD-003"
        and "coinbase" in str(alert.get("exchange", "")).split("|")
        and abs(abs(float(_details(alert).get("premium_bps", 0.0))) - plan.wide_premium_bps)
        <= 0.25 * plan.wide_premium_bps
        for alert in alerts
    )
    missing = []
    if not whale:
        missing.append(f"whale (MOD-002 coinbase {PRODUCT}, {plan.whale_fills} fills)")
    if not spread:
        missing.append(f"spread (MOD-003 with a coinbase leg, premium within 25% of {plan.wide_premium_bps:g} bps)")
    return missing


def _details(alert: Mapping[str, Any]) -> dict[str, Any]:
    details = alert.get("details")
    if isinstance(details, str):
        try:
            decoded = json.loads(details)
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return dict(details) if isinstance(details, Mapping) else {}
