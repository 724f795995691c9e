"""``replay kinesis:FILE``: raw lines beside recordings run through the whole pipeline; the drain waits for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from coattail_devstack.testing.events import trade
from coattail_framework.config import load_config
from coattail_stream_job.replay.pipeline import run_replay

ROOT = Path(__file__).resolve().parents[3]


def test_raw_lines_end_in_raw_trades_or_the_dead_letter_path_and_are_counted(tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    trades = [
        trade(start + timedelta(seconds=n), "60000.5", "0.01", trade_id=n).to_json().encode() for n in range(1, 4)
    ]
    lines = [trades[0], b"not json", b"", trades[1], "ünïcødé, not json".encode(), b"x" * (1024 * 1024 + 1), trades[2]]
    records = tmp_path / "records.jsonl"
    records.write_bytes(b"\n".join(lines) + b"\n")

    outcome = run_replay(
        load_config(ROOT / "config/features.yaml"), [f"kinesis:{records}"], tmp_path / "out", progress=lambda _: None
    )

    events = outcome.summary["events"]
    assert (events["published"], events["read"], events["valid"], events["invalid"]) == (5, 5, 3, 2)
    assert events["dead_letters_by_reason"] == {"validity_json": 2}
    raw = events["raw_records"]
    assert (raw["lines_read"], raw["empty_lines"], raw["put"], raw["rejected"]) == (7, 1, 5, {"too_large": 1})
    assert sorted(row["event_id"] for row in outcome.tables["raw_trades"]) == [
        f"binance:BTCUSDT:{n}" for n in range(1, 4)
    ]
    dead = sorted((tmp_path / "out" / "raw" / "dlq" / "validity_json").rglob("part-*.json"))
    texts = sorted(line for path in dead for line in path.read_text(encoding="utf-8").splitlines() if line)
    assert len(texts) == 2
