"""Benchmark: Coinbase match normalisation throughput on one core, next to a plain baseline.

Input: the 107 recorded ``match``/``last_match`` frames of
``tests/data/coinbase/ws/cryptofeed_matches_2021.jsonl`` (raw JSON text, as received),
repeated until each measurement has about ``target_messages`` messages. Both paths start
from the raw text:

- ``connector``: ``json.loads`` + ``CoinbaseConnector.normalize`` (validation, exact
  decimals, UTC microsecond times, a validated ``TradeEvent``);
- ``baseline``: ``json.loads`` + a bare field mapping into a dict (no validation,
  float prices, ``datetime.fromisoformat``).

The paths are timed in turn, ``rounds`` rounds (so a busy machine slows each alike), on this
process's CPU time -- messages per second per core even when other processes share the
machine; the best round of each is reported. Single threaded. Run as a script to print the result as JSON::

    python tests/bench/bench_normalize_coinbase.py
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from coattail_connector_coinbase import CoinbaseConnector

REPO_ROOT = Path(os.environ.get("COATTAIL_REPO_ROOT", Path(__file__).resolve().parents[2]))
MATCHES = REPO_ROOT / "tests" / "data" / "coinbase" / "ws" / "cryptofeed_matches_2021.jsonl"


def _baseline(text: str) -> dict[str, Any]:
    raw = json.loads(text)
    return {
        "symbol": raw["product_id"],
        "price": float(raw["price"]),
        "quantity": float(raw["size"]),
        "side": "buy" if raw["side"] == "sell" else "sell",
        "timestamp": datetime.fromisoformat(raw["time"].replace("Z", "+00:00")),
        "trade_id": str(raw["trade_id"]),
    }


def _best_rates(processes: list[Callable[[str], object]], frames: list[str], rounds: int) -> list[float]:
    best = [float("inf")] * len(processes)
    for _ in range(rounds):
        for index, process in enumerate(processes):
            started = time.process_time()
            for frame in frames:
                process(frame)
            best[index] = min(best[index], time.process_time() - started)
    return [len(frames) / seconds for seconds in best]


def run(target_messages: int = 50_000, rounds: int = 3) -> dict[str, Any]:
    """Messages per second of the connector's normalisation and of the baseline."""
    recorded = [line for line in MATCHES.read_text().splitlines() if line.strip()]
    frames = recorded * max(1, target_messages // len(recorded))
    connector = CoinbaseConnector()
    produced = sum(len(connector.normalize(json.loads(frame))) for frame in recorded)
    assert produced == len(recorded), "every recorded match must normalize to one trade"

    def normalize(text: str) -> object:
        return connector.normalize(json.loads(text))

    connector_rate, baseline_rate = _best_rates([normalize, _baseline], frames, rounds)
    return {
        "benchmark": "coinbase_normalize",
        "input": str(MATCHES.relative_to(REPO_ROOT)),
        "distinct_messages": len(recorded),
        "messages_per_round": len(frames),
        "rounds": rounds,
        "connector_messages_per_s": round(connector_rate),
        "baseline_messages_per_s": round(baseline_rate),
        "connector_vs_baseline": round(connector_rate / baseline_rate, 3),
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
