"""``read_trade_stream`` and the configuration-to-options adapters of both Kinesis sources."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pyspark.sql import SparkSession

from coattail_framework.config import CoattailConfig
from coattail_framework.config.model import AwsConfig, KinesisConfig
from coattail_framework.kinesis import aws_kinesis_options, read_trade_stream
from coattail_kinesis.source import KINESIS_SCHEMA


def test_aws_kinesis_options_use_the_emr_connector_names() -> None:
    """Only the mapping is tested: EMR's JVM connector cannot run here (no Maven, no jar)."""
    config = CoattailConfig(
        aws=AwsConfig(region="eu-west-1"),
        kinesis=KinesisConfig(
            stream_name="coattail-trades",
            shard_count=4,
            source="aws-kinesis",
            starting_position="AT_TIMESTAMP",
            starting_timestamp=datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))),
            max_records_per_trigger=10_000,
            efo_consumer_name="coattail-stream-job",
        ),
    )
    assert aws_kinesis_options(config) == {
        "kinesis.streamName": "coattail-trades",
        "kinesis.region": "eu-west-1",
        "kinesis.endpointUrl": "https://kinesis.eu-west-1.amazonaws.com",
        "kinesis.startingPosition": "AT_TIMESTAMP 2026-01-02T03:04:05Z",
        "kinesis.maxFetchRecordsPerShard": "2500",
        "kinesis.consumerType": "SubscribeToShard",
        "kinesis.consumerName": "coattail-stream-job",
    }
    shared = CoattailConfig(
        aws=AwsConfig(endpoint_url="http://127.0.0.1:5000"), kinesis=KinesisConfig(source="aws-kinesis")
    )
    options = aws_kinesis_options(shared)
    assert options["kinesis.consumerType"] == "GetRecords"
    assert "kinesis.consumerName" not in options
    assert options["kinesis.endpointUrl"] == "http://127.0.0.1:5000"
    assert options["kinesis.startingPosition"] == "TRIM_HORIZON"


def test_read_trade_stream_registers_coattail_kinesis_and_has_its_columns(spark: SparkSession) -> None:
    config = CoattailConfig(
        aws=AwsConfig(endpoint_url="http://127.0.0.1:9"), kinesis=KinesisConfig(source="coattail-kinesis")
    )
    assert read_trade_stream(spark, config).columns == KINESIS_SCHEMA.names
