"""The indexed moto shard answers GetRecords exactly as moto's own scan does."""

from __future__ import annotations

import datetime
import logging
import random
import sys

import pytest
from moto.kinesis.models import Shard

from coattail_devstack.moto_kinesis import _release, index_moto_kinesis_shards

ORIGINAL_GET_RECORDS = Shard.get_records
ORIGINAL_MAX = Shard.get_max_sequence_number


@pytest.fixture
def shard() -> Shard:
    assert index_moto_kinesis_shards()
    shard = Shard(0, 0, 2**128 - 1)
    for n in range(2_000):
        shard.put_record(f"key-{n % 7}", f"record-{n}", None)
    return shard


def outcome(answer: tuple[list[object], int, int]) -> tuple[list[int], int, int]:
    records, last, behind = answer
    return [record.sequence_number for record in records], last, behind  # type: ignore[attr-defined]


def test_get_records_matches_moto_at_every_position_limit_and_after_appends(shard: Shard) -> None:
    chooser = random.Random(20261126)
    for trial in range(400):
        last = chooser.choice([0, 1, 1_999, 2_000, 10_000, chooser.randint(0, 2_100)])
        limit = chooser.choice([None, 1, 10, 10_000, chooser.randint(1, 300)])
        ours = outcome(shard.get_records(str(last), limit))
        assert ours == outcome(ORIGINAL_GET_RECORDS(shard, str(last), limit))
        if trial % 40 == 0:
            for _ in range(chooser.randint(1, 25)):
                shard.put_record("late", "appended", None)
    assert shard.get_max_sequence_number() == ORIGINAL_MAX(shard) == len(shard.records) > 2_000
    assert outcome(shard.get_records("0", 3))[0] == [1, 2, 3]


def test_a_replaced_record_dict_is_reindexed(shard: Shard) -> None:
    assert outcome(shard.get_records("1990", None))[0] == list(range(1_991, 2_001))
    shard.records = type(shard.records)()
    assert outcome(shard.get_records("0", None)) == ([], 0, 0)
    shard.put_record("k", "first after the split", None)
    assert outcome(shard.get_records("0", None))[:2] == ([1], 1)


def test_millis_behind_latest_matches_moto_for_this_versions_created_at(shard: Shard) -> None:
    first = shard.records[1].created_at  # epoch seconds up to moto 5.2.5, a datetime from 5.2.6
    step: object = datetime.timedelta(milliseconds=13.7) if isinstance(first, datetime.datetime) else 0.0137
    for n, record in enumerate(shard.records.values()):
        record.created_at = first + step * n  # type: ignore[operator]
    for last, limit in [("0", 1), ("0", 100), ("500", 7), ("1998", None), ("2000", None)]:
        ours = outcome(shard.get_records(last, limit))
        assert ours == outcome(ORIGINAL_GET_RECORDS(shard, last, limit))
    assert outcome(shard.get_records("0", 1))[2] > 27_000  # 1,999 steps of 13.7 ms behind the newest record


@pytest.mark.parametrize("version", ["5.2.4", "5.3.0", "5.3.0rc1", "6.0.0", "not a version"])
def test_a_moto_outside_the_patched_versions_is_left_untouched(
    version: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(Shard, "get_records", ORIGINAL_GET_RECORDS)
    monkeypatch.setattr(Shard, "get_max_sequence_number", ORIGINAL_MAX)
    with caplog.at_level(logging.WARNING, logger="coattail_devstack.moto_kinesis"):
        assert not index_moto_kinesis_shards(moto_version=version)
    assert Shard.get_records is ORIGINAL_GET_RECORDS
    assert Shard.get_max_sequence_number is ORIGINAL_MAX
    assert f"moto {version} is outside" in caplog.text
    assert "left as it is" in caplog.text


@pytest.mark.parametrize("version", ["5.2.5", "5.2.6", "5.2.99.dev3"])
def test_a_moto_inside_the_patched_versions_is_indexed(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Shard, "get_records", ORIGINAL_GET_RECORDS)
    monkeypatch.setattr(Shard, "get_max_sequence_number", ORIGINAL_MAX)
    assert index_moto_kinesis_shards(moto_version=version)
    assert Shard.get_records is not ORIGINAL_GET_RECORDS


@pytest.mark.parametrize("packaging_installed", [True, False])
def test_versions_are_read_with_or_without_packaging(
    packaging_installed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not packaging_installed:
        monkeypatch.setitem(sys.modules, "packaging.version", None)  # makes the import raise ImportError
    assert _release("5.2.6") == (5, 2, 6)
    assert _release("5.3.0rc1")[:2] == (5, 3)  # type: ignore[index]
    assert _release("5.2.7.dev0") == (5, 2, 7)
    assert _release("not a version") is None
