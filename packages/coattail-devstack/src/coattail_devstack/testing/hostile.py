"""Seeded hostile Kinesis records for the stream job: what a broken or malicious producer could put.

Runs in the test process (tests-integration). Every record says what the job must do
with it: ``expect`` is the dead-letter reason (the first failing ERROR rule, in ``quality.default_rules`` order) or
``VALID`` for a record that is a well-formed trade however odd (an extra field, unicode
in a free-text field, a 30-digit or non-ASCII trade id), under the platform's rules and
those of the shipped modules (one dead-letters taker sides other than buy and sell, so no
record here has one). Records that decode as JSON objects carry an
``event_id`` of ``hostile:<n>`` where the category keeps one, so a test can find each in
``raw_trades`` or the dead-letter files.

Categories (one chosen per record, uniformly):

- not JSON (garbage, truncated objects, invalid UTF-8), JSON that is not an object, and
  objects nested thousands deep;
- wrong types (a string price, an object quantity, a list timestamp) and missing fields;
- NaN, infinite, zero, negative and absurd numbers;
- times that are not times, outside years 1..9999, 10 years ahead, 2 days behind,
  and a record whose own ingestion clock lies with its trade time;
- unknown exchange or symbol, control characters and lone surrogates;
- huge records (a free-text field of ~900 KB, within Kinesis's 1 MiB record limit).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

VALID = "valid"


@dataclass(frozen=True)
class HostileRecord:
    """One Kinesis record: its bytes, partition key, expected outcome and ``event_id`` (if any)."""

    data: bytes
    partition_key: str
    expect: str
    event_id: str | None


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class HostileRecords:
    """Builds hostile records around a template trade on binance BTCUSDT.

    ``now`` (UTC) is about when the records are put (their Kinesis arrival): absurd times are
    relative to it. Template trades lie in the minute before ``trades_before`` (UTC), so the
    well-formed ones are older than the test's real trades and cannot hold their windows back.
    """

    def __init__(self, seed: int, now: datetime, trades_before: datetime) -> None:
        self._rng = random.Random(seed)
        self._now = now
        self._trades_before = trades_before
        self._makers: list[Callable[[int], HostileRecord]] = [
            self._garbage,
            self._truncated,
            self._invalid_utf8,
            self._not_an_object,
            self._deeply_nested,
            self._wrong_type,
            self._missing_field,
            self._bad_number,
            self._bad_time,
            self._absurd_time,
            self._lying_clocks,
            self._unknown_venue,
            self._odd_but_valid,
            self._huge,
        ]

    def make(self, count: int) -> list[HostileRecord]:
        """``count`` records, categories chosen by the seeded generator."""
        return [self._rng.choice(self._makers)(n) for n in range(count)]

    # -- helpers -----------------------------------------------------------------------------

    def _trade(self, n: int) -> dict[str, Any]:
        at = self._trades_before - timedelta(milliseconds=self._rng.randrange(1, 60_000))
        price = round(self._rng.uniform(50_000, 70_000), 2)
        quantity = round(self._rng.uniform(0.0001, 0.5), 6)
        return {
            "event_id": f"hostile:{n}",
            "exchange": "binance",
            "symbol": "BTCUSDT",
            "price": price,
            "quantity": quantity,
            "quote_volume": price * quantity,
            "side": self._rng.choice(["buy", "sell"]),
            "timestamp": _iso(at),
            "ingestion_timestamp": _iso(at + timedelta(milliseconds=50)),
            "trade_id": str(10**12 + n),
            "taker_order_id": None,
        }

    @staticmethod
    def _record(fields: dict[str, Any] | str | bytes, expect: str, event_id: str | None) -> HostileRecord:
        if isinstance(fields, bytes):
            data = fields
        elif isinstance(fields, str):
            data = fields.encode("utf-8", "surrogatepass")
        else:
            data = json.dumps(fields).encode()
        return HostileRecord(data, "BTCUSDT", expect, event_id)

    # -- categories --------------------------------------------------------------------------

    def _garbage(self, n: int) -> HostileRecord:
        alphabet = "abcxyz[]:,\"' \t\\/#@!"  # no braces: never a whole object (``{}`` is one, of nulls)
        text = "".join(self._rng.choice(alphabet) for _ in range(self._rng.randrange(1, 200)))
        return self._record("{" + text, "validity_json", None)

    def _truncated(self, n: int) -> HostileRecord:
        whole = json.dumps(self._trade(n))
        return self._record(whole[: self._rng.randrange(1, len(whole) - 1)], "validity_json", None)

    def _invalid_utf8(self, n: int) -> HostileRecord:
        return self._record(b"\xff\xfe\xfa" + json.dumps(self._trade(n)).encode(), "validity_json", None)

    def _not_an_object(self, n: int) -> HostileRecord:
        value = self._rng.choice(["[1, 2]", '"a string"', "[]", '[{"event_id": "x"}]'])
        return self._record(value, "validity_json", None)

    def _deeply_nested(self, n: int) -> HostileRecord:
        depth = self._rng.randrange(1_000, 20_000)
        if self._rng.random() < 0.5:
            return self._record("[" * depth + "]" * depth, "validity_json", None)
        trade = self._trade(n)
        nested = '{"a":' * depth + "1" + "}" * depth
        text = json.dumps(trade)[:-1] + ', "extra": ' + nested + "}"
        return self._record(text, "validity_json", trade["event_id"])

    def _wrong_type(self, n: int) -> HostileRecord:
        trade = self._trade(n)
        name, value = self._rng.choice(
            [
                ("price", "sixty thousand"),
                ("price", {"value": 1}),
                ("quantity", [1, 2]),
                ("quantity", "0.5"),
                ("quote_volume", "x"),
                ("timestamp", [2024, 8, 8]),
                ("timestamp", {"t": 1}),
            ]
        )
        trade[name] = value
        # A string field takes any JSON value as its text: a list for a time is a time format error.
        expect = "validity_time_format" if name == "timestamp" else "validity_json"
        return self._record(trade, expect, trade["event_id"])

    def _missing_field(self, n: int) -> HostileRecord:
        trade = self._trade(n)
        name = self._rng.choice(["event_id", "symbol", "price", "quantity", "timestamp", "ingestion_timestamp"])
        del trade[name]
        return self._record(trade, f"completeness_{name}", None if name == "event_id" else trade["event_id"])

    def _bad_number(self, n: int) -> HostileRecord:
        trade = self._trade(n)
        name = self._rng.choice(["price", "quantity"])
        literal = self._rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "0", "-5", "-0.0"])
        text = json.dumps(trade).replace(f'"{name}": {json.dumps(trade[name])}', f'"{name}": {literal}')
        return self._record(text, f"validity_{name}_positive", trade["event_id"])

    def _bad_time(self, n: int) -> HostileRecord:
        trade = self._trade(n)
        name = self._rng.choice(["timestamp", "ingestion_timestamp"])
        trade[name] = self._rng.choice(
            ["yesterday", "", "12345", "9999-12-31T23:59:59-05:00", "-5000-01-01", "+10000-01-01T00:00:00Z", "1e20"]
        )
        return self._record(trade, "validity_time_format", trade["event_id"])

    def _absurd_time(self, n: int) -> HostileRecord:
        trade = self._trade(n)
        shift = self._rng.choice(
            [timedelta(days=3653), timedelta(minutes=5), -timedelta(days=2), -timedelta(days=3650)]
        )
        at = self._now + shift
        trade["timestamp"], trade["ingestion_timestamp"] = _iso(at), _iso(at)
        return self._record(trade, "timeliness_event_time", trade["event_id"])

    def _lying_clocks(self, n: int) -> HostileRecord:
        """Trade time 1970 or 2100 with an ingestion time that agrees: only the arrival clock tells."""
        trade = self._trade(n)
        at = self._rng.choice(["1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z", "0001-01-01T00:00:00Z"])
        trade["timestamp"], trade["ingestion_timestamp"] = at, at
        return self._record(trade, "timeliness_event_time", trade["event_id"])

    def _unknown_venue(self, n: int) -> HostileRecord:
        trade = self._trade(n)
        if self._rng.random() < 0.5:
            trade["symbol"] = self._rng.choice(
                ["DOGEUSDT", "BTC\u0000USDT", "BTCUSDT\ud800", "\uff22\uff34\uff23USDT", " "]
            )
            expect = "completeness_symbol" if trade["symbol"] == " " else "validity_symbol_allowed"
        else:
            trade["exchange"] = self._rng.choice(["kraken", "", "binance\u202e"])
            expect = "validity_symbol_allowed"
        text = json.dumps(trade, ensure_ascii=self._rng.random() < 0.5)
        return self._record(text, expect, trade["event_id"])

    def _odd_but_valid(self, n: int) -> HostileRecord:
        trade = self._trade(n)
        choice = self._rng.randrange(4)
        if choice == 0:
            trade["unexpected"] = {"nested": [1, 2, 3]}
        elif choice == 1:
            trade["trade_id"] = "\u0661\u0662\u0663" + str(n)  # Arabic-Indic digits: not numbered, still a trade
        elif choice == 2:
            trade["taker_order_id"] = "\u00e9\u4e2d\U0001f600" * 10
        else:
            trade["trade_id"] = str(10**30 + n)  # longer than a long: not numbered, still a trade
        return self._record(json.dumps(trade, ensure_ascii=False), VALID, trade["event_id"])

    def _huge(self, n: int) -> HostileRecord:
        trade = self._trade(n)
        if self._rng.random() < 0.05:
            trade["taker_order_id"] = "x" * 900_000
        else:
            trade["taker_order_id"] = "y" * self._rng.randrange(10_000, 60_000)
        return self._record(trade, VALID, trade["event_id"])
