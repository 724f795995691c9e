"""``kinesis:FILE`` raw-record replay into moto's Kinesis on 127.0.0.1: exact records, exact counts."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from coattail_devstack.testing.events import trade
from coattail_framework.config.model import CoattailConfig
from coattail_framework.errors import ConfigError
from coattail_kinesis.limits import RECORD_MAX_BYTES
from coattail_producer.raw_records import RawPayload, partition_key, put_payloads, read_lines
from coattail_producer.replay import replay
from coattail_producer.settings import ProducerSettings, PublisherSettings

from .conftest import REGION, read_stream

SETTINGS = ProducerSettings(publisher=PublisherSettings(linger_seconds=0.01))
MIB = RECORD_MAX_BYTES


def hash_key(payload: bytes) -> str:
    return "raw-" + hashlib.sha256(payload).hexdigest()[:32]


TRADE = trade("2024-08-08T00:00:00Z", "60000.1", "0.5", trade_id=1).to_json().encode()
UNICODE = '{"symbol": "ÉTH/€", "note": "naïve ✓ 日本"}'.encode()
NO_SYMBOL = b'{"hello": "world"}'
NOT_JSON = b"not json at all, {{"
NOT_UTF8 = b"\xff\xfe\x00 binary \x80"
CARRIAGE_RETURN = b'{"symbol":"ETHUSDT","x":1}\r'
AT_LIMIT = b"y" * (MIB - len(hash_key(b"y")))  # key: raw- + 32 hex digits = 36 bytes
OVER_LIMIT = b"x" * (MIB + 10)
LAST_WITHOUT_NEWLINE = b'{"symbol":"BTCUSDT","last":true}'

LINES = [
    TRADE,
    UNICODE,
    b"",
    NO_SYMBOL,
    NOT_JSON,
    NOT_UTF8,
    OVER_LIMIT,
    b"",
    CARRIAGE_RETURN,
    AT_LIMIT,
    AT_LIMIT + b"y",
]
PUT = [TRADE, UNICODE, NO_SYMBOL, NOT_JSON, NOT_UTF8, CARRIAGE_RETURN, AT_LIMIT, LAST_WITHOUT_NEWLINE]


@pytest.fixture
def raw_file(tmp_path: Path) -> Path:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\n".join(LINES) + b"\n" + LAST_WITHOUT_NEWLINE)
    return path


def make_config(moto_url: str, stream: str) -> CoattailConfig:
    return CoattailConfig.model_validate(
        {"aws": {"region": REGION, "endpoint_url": moto_url}, "kinesis": {"stream_name": stream}}
    )


def stream_records(kinesis: Any, stream: str) -> list[tuple[str, bytes]]:
    return [(r["PartitionKey"], r["Data"]) for records in read_stream(kinesis, stream).values() for r in records]


def test_partition_key_is_the_json_symbol_else_a_hash_of_the_payload() -> None:
    assert partition_key(TRADE) == "BTCUSDT"
    assert partition_key(UNICODE) == "ÉTH/€"
    assert partition_key(CARRIAGE_RETURN) == "ETHUSDT"
    assert partition_key(NOT_UTF8) == hash_key(NOT_UTF8)
    assert partition_key(b'{"symbol": ""}') == hash_key(b'{"symbol": ""}')
    assert partition_key(b'{"symbol": 7}') == hash_key(b'{"symbol": 7}')
    long_symbol = b'{"symbol": "' + b"S" * 257 + b'"}'
    assert partition_key(long_symbol) == hash_key(long_symbol)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert partition_key(deep) == hash_key(deep)


def test_a_line_over_the_limit_is_skipped_without_being_held() -> None:
    handle = io.BufferedReader(io.BytesIO(b"ab\n" + b"z" * 300_000 + b"\ncd"))
    payloads = list(read_lines(handle, "f", max_bytes=10))
    assert [(p.data, p.size, p.origin) for p in payloads] == [
        (b"ab", 2, "f:1"),
        (None, 300_000, "f:2"),
        (b"cd", 2, "f:3"),
    ]


async def test_a_raw_file_puts_every_line_as_it_is_and_counts_the_rest(
    raw_file: Path, moto_url: str, stream: str, kinesis: Any
) -> None:
    stats = await replay(
        make_config(moto_url, stream), [f"kinesis:{raw_file}"], kinesis_client=kinesis, settings=SETTINGS
    )

    assert stats.clean
    assert stats.venues == {}
    assert stats.published == 0
    assert stats.raw is not None
    assert stats.raw.as_dict() == {
        "files": [str(raw_file)],
        "lines_read": 12,
        "empty_lines": 2,
        "put": 8,
        "rejected": {"too_large": 2},
        "dropped": {},
        "failed": 0,
        "retried": 0,
        "clean": True,
    }
    assert stats.as_dict()["raw"] == stats.raw.as_dict()
    records = stream_records(kinesis, stream)
    assert sorted(records) == sorted((partition_key(data), data) for data in PUT)
    # one key's records stay in file order
    assert [data for key, data in records if key == "BTCUSDT"] == [TRADE, LAST_WITHOUT_NEWLINE]


async def test_raw_files_are_read_in_order_and_gzip_is_decompressed(
    tmp_path: Path, moto_url: str, stream: str, kinesis: Any
) -> None:
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.txt"
    with gzip.open(first, "wb") as handle:
        handle.write(b'{"symbol":"BTCUSDT","n":1}\n{"symbol":"BTCUSDT","n":2}\n')
    second.write_bytes(b'{"symbol":"BTCUSDT","n":3}\n')

    stats = await replay(
        make_config(moto_url, stream),
        [f"kinesis:{first}", f"kinesis:{second}"],
        kinesis_client=kinesis,
        settings=SETTINGS,
    )

    assert stats.raw is not None
    assert (stats.raw.lines_read, stats.raw.put) == (3, 3)
    assert stream_records(kinesis, stream) == [("BTCUSDT", b'{"symbol":"BTCUSDT","n":%d}' % n) for n in (1, 2, 3)]


async def test_a_missing_raw_file_fails_before_anything_is_put(
    raw_file: Path, tmp_path: Path, moto_url: str, stream: str, kinesis: Any
) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(ConfigError, match=f"{missing}: raw-record file not found"):
        await replay(
            make_config(moto_url, stream), [f"kinesis:{raw_file}", f"kinesis:{missing}"], kinesis_client=kinesis
        )
    assert stream_records(kinesis, stream) == []


class RefusingKinesis:
    """A Kinesis client whose every ``put_records`` fails (as with a revoked role)."""

    def __init__(self) -> None:
        self.calls = 0

    def put_records(self, **_: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.calls += 1
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutRecords")


async def test_a_stream_that_accepts_nothing_ends_the_put_within_its_bounds() -> None:
    settings = PublisherSettings(
        linger_seconds=0, buffer_records=2, stall_seconds=0.1, retry_base_seconds=0.01, retry_max_seconds=0.02
    )
    payloads = [RawPayload(b"p%d" % n, 2, f"f:{n}") for n in range(5)]

    outcome = await put_payloads(RefusingKinesis(), "trades", payloads, settings=settings, deadline_seconds=0.05)

    assert (outcome.offered, outcome.put, outcome.unsent) == (5, 0, 5)
    assert outcome.rejected == {"publisher_stalled": 3}
    assert outcome.dropped == {"shutdown_deadline": 2}
