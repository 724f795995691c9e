"""The indexed moto shard answers GetRecords exactly as moto's own scan does."""

from __future__ import annotations

import random

import pytest
from moto.kinesis.models import Shard

from coattail_framework.moto_kinesis import index_moto_kinesis_shards

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
