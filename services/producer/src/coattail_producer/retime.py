"""Shift a recording's times to now, keeping every gap: the ``--retime`` option of replay.

Runs in the replay, before frames are loaded into a simulator: the recorded message
itself is rewritten, so the simulator serves, and the unchanged connector normalizes,
trades that happened "now". Time fields rewritten wherever they appear at the top level
of a message or in its combined-stream ``data`` object:

- ``E`` and ``T`` as integers: milliseconds since the epoch (Binance event and trade time);
- ``time`` as an ISO 8601 string: UTC with microseconds (Coinbase).

The recorder's own receive time (``received_ns``) moves by the same amount. The shift is
a whole number of milliseconds, so gaps between messages are kept exactly in every field.

Example::

    shifted = retime(messages, now_ns=time.time_ns())
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from coattail_framework.recordings import RecordedMessage
from coattail_framework.simulator import ns_from_utc

EPOCH_MS_FIELDS = frozenset({"E", "T"})
ISO_FIELDS = frozenset({"time"})
NS_PER_MS = 1_000_000


def _objects(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The message and its combined-stream payload, where time fields live."""
    objects = [message]
    if isinstance(message.get("data"), dict):
        objects.append(message["data"])
    return objects


def _parse_iso(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _decode(message: RecordedMessage) -> dict[str, Any] | None:
    if message.malformed:
        return None
    try:
        decoded = json.loads(message.payload)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to decode
        return None
    return decoded if isinstance(decoded, dict) else None


def event_time_ns(message: RecordedMessage) -> int | None:
    """The earliest exchange time field of one message, in ns since the epoch; None without one."""
    decoded = _decode(message)
    if decoded is None:
        return None
    found: list[int] = []
    for obj in _objects(decoded):
        for key in EPOCH_MS_FIELDS & obj.keys():
            if isinstance(obj[key], int) and not isinstance(obj[key], bool):
                found.append(obj[key] * NS_PER_MS)
        for key in ISO_FIELDS & obj.keys():
            if isinstance(obj[key], str) and (parsed := _parse_iso(obj[key])) is not None:
                found.append(ns_from_utc(parsed))
    return min(found) if found else None


def shift_message(message: RecordedMessage, shift_ms: int) -> RecordedMessage:
    """One message with every time field (and its receive time) moved by ``shift_ms`` milliseconds."""
    received = None if message.received_ns is None else message.received_ns + shift_ms * NS_PER_MS
    decoded = _decode(message)
    changed = False
    if decoded is not None:
        for obj in _objects(decoded):
            for key in EPOCH_MS_FIELDS & obj.keys():
                if isinstance(obj[key], int) and not isinstance(obj[key], bool):
                    obj[key] += shift_ms
                    changed = True
            for key in ISO_FIELDS & obj.keys():
                if isinstance(obj[key], str) and (parsed := _parse_iso(obj[key])) is not None:
                    moved = (parsed + timedelta(milliseconds=shift_ms)).astimezone(UTC)
                    obj[key] = moved.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    changed = True
    payload = json.dumps(decoded, separators=(",", ":")) if changed else message.payload
    return dataclasses.replace(message, payload=payload, received_ns=received)


def retime(messages: Iterable[RecordedMessage], now_ns: int) -> list[RecordedMessage]:
    """The messages shifted so the first exchange time in them is ``now_ns`` (gaps kept)."""
    loaded = list(messages)
    start = next((t for t in map(event_time_ns, loaded) if t is not None), None)
    if start is None:
        start = next((m.received_ns for m in loaded if m.received_ns is not None), None)
    if start is None:
        return loaded
    shift_ms = (now_ns - start) // NS_PER_MS
    return [shift_message(message, shift_ms) for message in loaded]
