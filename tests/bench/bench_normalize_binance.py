"""Benchmark: Binance trade normalization, messages per second on one core.

Runs ``coattail_connector_binance.normalize_message`` (JSON decode + validation + exact
decimal quote volume + ``TradeEvent``) over every trade message of the recorded spot
BTCUSDT feed (tests/data/binance/ws/spot_btcusdt_20240808.gz, 9,757 messages), side by side
with a plain baseline in the same run: bare ``json.loads`` plus a field mapping into a dict
doing the same conversions as the Coinbase benchmark's baseline (float price and quantity, a
UTC datetime, the trade id as a string; no validation). ``bare_json_loads_msgs_per_s`` is
``json.loads`` alone, for reference. The paths are timed in turn, ``repeats`` rounds (so a
busy machine slows each alike) on this process's CPU time, i.e. messages per second per core
even when other processes share the machine; the best round of each counts. Single thread.

    python tests/bench/bench_normalize_binance.py        # prints the result as JSON
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coattail_connector_binance import normalize_message
from coattail_framework.recordings import read_recording

ROOT = Path(os.environ.get("COATTAIL_REPO_ROOT", Path(__file__).resolve().parents[2]))
RECORDING = ROOT / "tests" / "data" / "binance" / "ws" / "spot_btcusdt_20240808.gz"


def _trade_texts() -> list[str]:
    return [message.payload for message in read_recording(RECORDING) if '@trade"' in message.payload]


def _baseline(text: str) -> dict[str, Any]:
    data = json.loads(text)["data"]
    return {
        "symbol": data["s"],
        "trade_id": str(data["t"]),
        "price": float(data["p"]),
        "quantity": float(data["q"]),
        "timestamp": datetime.fromtimestamp(data["T"] / 1000, tz=UTC),
        "side": "sell" if data["m"] else "buy",
    }


_RECEIVED_AT = datetime(2024, 8, 8, 23, 54, tzinfo=UTC)


def _normalize(text: str) -> Any:
    return normalize_message(json.loads(text), received_at=_RECEIVED_AT)


def _best_rates(functions: list[Callable[[str], Any]], texts: list[str], repeats: int) -> list[float]:
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for index, function in enumerate(functions):
            started = time.process_time()
            for text in texts:
                function(text)
            best[index] = min(best[index], time.process_time() - started)
    return [len(texts) / seconds for seconds in best]


def run(repeats: int = 5) -> dict[str, Any]:
    """Messages per second for the connector's normalize and for the plain baseline."""
    texts = _trade_texts()
    events = [event for text in texts for event in _normalize(text)]
    assert len(events) == len(texts), "every recorded trade message must normalize to one event"
    normalize_rate, baseline_rate, loads_rate = _best_rates([_normalize, _baseline, json.loads], texts, repeats)
    return {
        "benchmark": "normalize_binance",
        "recording": RECORDING.name,
        "messages": len(texts),
        "repeats": repeats,
        "normalize_msgs_per_s": round(normalize_rate),
        "baseline_json_loads_dict_msgs_per_s": round(baseline_rate),
        "normalize_vs_baseline": round(normalize_rate / baseline_rate, 3),
        "bare_json_loads_msgs_per_s": round(loads_rate),
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
