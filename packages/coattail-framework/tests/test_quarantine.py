"""The shared quarantine of rejected frames: bounded in frames and bytes, counted per reason."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from coattail_framework.quarantine import MAX_REASONS, OTHER_REASON, Quarantine, cut_text

START = datetime(2024, 8, 9, tzinfo=UTC)


class StepClock:
    """A clock that moves one second per call."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_fifty_frames_of_4_mib_hold_at_most_max_bytes() -> None:
    quarantine = Quarantine(max_bytes=8 * 1024 * 1024, max_frame_bytes=64 * 1024)
    huge = "x" * (4 * 1024 * 1024)
    for _ in range(50):
        frame = quarantine.add(huge, "json")
    assert frame.size_bytes == 4 * 1024 * 1024
    assert len(frame.payload) == 64 * 1024
    assert quarantine.total == 50
    assert quarantine.counts == {"json": 50}
    assert len(quarantine.frames()) == 50
    assert quarantine.bytes_held == 50 * 64 * 1024 <= quarantine.max_bytes


def test_the_oldest_frames_are_evicted_to_stay_within_max_bytes() -> None:
    quarantine = Quarantine(max_frames=1000, max_bytes=10_000, max_frame_bytes=4_000)
    for index in range(5):
        quarantine.add(f"{index}" * 5_000, "json")
    assert [frame.payload[0] for frame in quarantine.frames()] == ["3", "4"]
    assert quarantine.bytes_held == 8_000
    assert quarantine.total == 5


def test_the_oldest_frames_are_evicted_to_stay_within_max_frames() -> None:
    quarantine = Quarantine(max_frames=3, clock=StepClock())
    for index in range(7):
        quarantine.add(f"frame {index}", "number_format" if index % 2 else "json")
    assert [frame.payload for frame in quarantine.frames()] == ["frame 4", "frame 5", "frame 6"]
    assert [frame.received_at for frame in quarantine.frames()] == [START + timedelta(seconds=s) for s in (5, 6, 7)]
    assert quarantine.counts == {"json": 4, "number_format": 3}
    assert quarantine.total == 7
    assert quarantine.bytes_held == 3 * len("frame 0")


def test_lone_surrogates_and_invalid_utf8_become_replacement_characters() -> None:
    quarantine = Quarantine()
    text_frame = quarantine.add('{"s":"\ud800"}', "handler_error:UnicodeEncodeError")
    bytes_frame = quarantine.add(b'{"s":"\xff\xfe"}', "json")
    assert text_frame.payload == '{"s":"\ufffd\ufffd\ufffd"}'
    assert text_frame.size_bytes == 11
    assert bytes_frame.payload == '{"s":"\ufffd\ufffd"}'
    assert bytes_frame.size_bytes == 10
    assert json.loads(json.dumps(quarantine.as_dict()))["total"] == 2


def test_a_payload_cut_inside_a_character_stays_valid_text_within_the_limit() -> None:
    text, size = cut_text("é" * 10, 5)
    assert (text, size) == ("éé", 20)
    text, size = cut_text("\ud800" * 10, 5)
    assert len(text.encode("utf-8")) <= 5
    assert size == 30


def test_counts_stay_bounded_when_reasons_are_not_a_fixed_set() -> None:
    quarantine = Quarantine()
    for index in range(MAX_REASONS + 5):
        quarantine.add("{}", f"reason {index}")
    assert len(quarantine.counts) == MAX_REASONS + 1
    assert quarantine.counts[OTHER_REASON] == 5
    assert quarantine.frames()[-1].detail == f"reason {MAX_REASONS + 4}"


def test_frames_are_appended_to_a_json_lines_file(tmp_path: Path) -> None:
    path = tmp_path / "dead" / "binance.jsonl"
    quarantine = Quarantine(max_frames=1, path=path, source="binance", clock=StepClock())
    quarantine.add("not json", "json", detail="Expecting value: line 1 column 1 (char 0)")
    quarantine.add("[[[[", "json")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {
            "source": "binance",
            "received_at": "2024-08-09T00:00:01+00:00",
            "reason": "json",
            "detail": "Expecting value: line 1 column 1 (char 0)",
            "size_bytes": 8,
            "payload": "not json",
        },
        {
            "source": "binance",
            "received_at": "2024-08-09T00:00:02+00:00",
            "reason": "json",
            "detail": "",
            "size_bytes": 4,
            "payload": "[[[[",
        },
    ]


def test_an_unwritable_file_keeps_the_frame_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    quarantine = Quarantine(path=blocker / "sub" / "q.jsonl")
    quarantine.add("x", "json")
    quarantine.add("y", "json")
    assert quarantine.file_errors == 2
    assert [frame.payload for frame in quarantine.frames()] == ["x", "y"]


def test_warnings_are_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    quarantine = Quarantine(clock=StepClock(), log_interval_s=10.0, source="binance")
    with caplog.at_level(logging.WARNING, logger="coattail_framework.quarantine"):
        for index in range(12):
            quarantine.add(f"frame {index}", "json")
    assert len(caplog.messages) == 2
    assert caplog.messages[1] == "binance: quarantined a frame (json; 9 more since the last report): frame 10"


def test_limits_that_cannot_hold_one_frame_are_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes must hold one whole frame"):
        Quarantine(max_bytes=1024, max_frame_bytes=1024)
    with pytest.raises(ValueError, match="max_frames must be >= 1"):
        Quarantine(max_frames=0)


def test_the_record_dates_frames_in_utc_whatever_the_clock_zone() -> None:
    paris = timezone(timedelta(hours=2))
    quarantine = Quarantine(clock=lambda: datetime(2024, 8, 9, 2, 0, 1, tzinfo=paris))
    record = quarantine.add(b"\xff{", "json", detail="not UTF-8").as_dict()
    assert record == {
        "received_at": "2024-08-09T00:00:01+00:00",
        "reason": "json",
        "detail": "not UTF-8",
        "size_bytes": 2,
        "payload": "\ufffd{",
    }
