"""Read recorded exchange feeds: the replay and test input of every connector.

Runs wherever a recording is replayed (producer replay mode, tests, benchmarks). Accepted
line formats, plain or gzip-compressed (detected from the file's magic bytes):

- ``<receive time, ns since epoch> <raw JSON>`` (the Binance recordings);
- ``<raw JSON>`` alone (one message per line, e.g. ``*.jsonl``);
- cryptofeed's ``<url> <-> <ts>`` (connection opened, skipped), ``<url> <- <ts>: <JSON>``
  (frame the client sent, skipped) and ``<ts>: <JSON>`` (frame received; ``<ts>`` in
  float epoch seconds).

Lines that are none of these are yielded with ``payload`` set to the raw text and
``malformed=True`` so a replay can count them; nothing is dropped silently.

Example::

    for message in read_recording(Path("tests/data/binance/spot_btcusdt_20240808.gz")):
        print(message.received_ns, message.payload[:40])
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_GZIP_MAGIC = b"\x1f\x8b"
_NS_PREFIX = re.compile(r"^(\d{16,20}) (\{.*)$")
_CRYPTOFEED_RECEIVED = re.compile(r"^(\d+(?:\.\d+)?): (\{.*)$")
_CRYPTOFEED_CONTROL = re.compile(r"^\S+ (?:<->|<-) ")


@dataclass(frozen=True)
class RecordedMessage:
    """One recorded frame as the exchange sent it.

    ``received_ns`` is the recorder's local receive time (ns since the epoch, UTC) when
    the format carries one. ``line`` is the 1-based line number in the file.
    """

    payload: str
    received_ns: int | None
    line: int
    malformed: bool = False


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    if compressed:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open("r", encoding="utf-8")


def parse_line(text: str, line: int) -> RecordedMessage | None:
    """One line of a recording; None for blank lines and client-side/control lines."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.startswith("{") or stripped.startswith("["):
        return RecordedMessage(stripped, None, line)
    if match := _NS_PREFIX.match(stripped):
        return RecordedMessage(match.group(2), int(match.group(1)), line)
    if match := _CRYPTOFEED_RECEIVED.match(stripped):
        return RecordedMessage(match.group(2), int(float(match.group(1)) * 1_000_000_000), line)
    if _CRYPTOFEED_CONTROL.match(stripped):
        return None
    return RecordedMessage(stripped, None, line, malformed=True)


def read_recording(path: Path) -> Iterator[RecordedMessage]:
    """The frames of one recording, in file order."""
    with _open_text(path) as handle:
        for number, text in enumerate(handle, start=1):
            message = parse_line(text, number)
            if message is not None:
                yield message
