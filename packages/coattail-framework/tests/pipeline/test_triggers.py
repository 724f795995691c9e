"""Trigger scheduling as pure functions (``pipeline.triggers``): no Spark, no stream."""

from __future__ import annotations

import pytest

from coattail_framework.config.model import KinesisConfig, StreamingConfig
from coattail_framework.pipeline.triggers import (
    DRAIN_TRIGGER_SECONDS,
    processing_time,
    query_triggers,
    read_delays,
    reads_per_shard_second,
    shard_read_excess,
    staggers,
)


def test_each_query_takes_its_own_key_else_the_module_s_else_the_default() -> None:
    streaming = StreamingConfig(trigger_seconds=10, query_trigger_seconds={"whale": 1, "ingest": 5})
    keys = {"ingest": "ingest", "detector-whale": "whale", "early-whale": "whale-early", "detector-spread": "spread"}

    assert query_triggers(streaming, keys) == {
        "ingest": 5,
        "detector-whale": 1,
        "early-whale": 1,
        "detector-spread": 10,
    }


def test_queries_on_one_interval_take_turns_in_start_order() -> None:
    triggers = {"ingest": 10.0, "detector-volume": 10.0, "detector-whale": 1.0, "detector-spread": 10.0}

    assert read_delays(triggers, stagger=True) == pytest.approx(
        {"ingest": 0.0, "detector-volume": 10 / 3, "detector-whale": 0.0, "detector-spread": 20 / 3}
    )
    assert read_delays(triggers, stagger=False) == dict.fromkeys(triggers, 0.0)


def test_only_the_coattail_kinesis_source_staggers() -> None:
    assert staggers(StreamingConfig(), KinesisConfig(source="coattail-kinesis"))
    assert not staggers(StreamingConfig(), KinesisConfig(source="aws-kinesis"))
    assert not staggers(StreamingConfig(stagger_triggers=False), KinesisConfig(source="coattail-kinesis"))


def test_reads_above_kinesis_s_limit_are_explained_and_reads_within_it_are_not() -> None:
    fast = {"ingest": 0.1, "detector-whale": 0.1}
    kinesis = KinesisConfig(source="coattail-kinesis", min_poll_interval_ms=200)

    assert reads_per_shard_second(fast, 200) == pytest.approx(10.0)
    assert shard_read_excess(fast, kinesis) == (
        "the queries' triggers (ingest 0.1 s, detector-whale 0.1 s) and kinesis.min_poll_interval_ms (200) allow "
        "10.0 GetRecords/s per shard, above Kinesis's 5 shared by all consumers: reads will be throttled; lengthen "
        "the triggers of queries that do not need them (streaming.query_trigger_seconds)"
    )
    assert shard_read_excess({"ingest": 1.0, "detector-whale": 0.5}, kinesis) is None
    assert shard_read_excess(fast, KinesisConfig(source="aws-kinesis", min_poll_interval_ms=200)) is None


def test_a_drain_runs_available_now_where_the_source_has_it_else_a_short_trigger() -> None:
    assert processing_time(drain=False, available_now=False, live_seconds=2.5) == "2.5 seconds"
    assert processing_time(drain=True, available_now=True, live_seconds=2.5) is None
    assert processing_time(drain=True, available_now=False, live_seconds=2.5) == f"{DRAIN_TRIGGER_SECONDS} seconds"
