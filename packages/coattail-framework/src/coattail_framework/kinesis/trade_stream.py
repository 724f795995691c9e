"""The raw trade stream as a streaming DataFrame, from either Kinesis source.

``kinesis.source`` in the configuration picks the reader:

- ``coattail-kinesis``: the Python source of the ``coattail-kinesis`` distribution
  (``coattail_kinesis.source``; boto3, runs anywhere, moto locally).
- ``aws-kinesis``: the JVM connector bundled with Amazon EMR 7.1+ (awslabs
  spark-sql-kinesis-connector). Its options are ``kinesis.streamName``, ``kinesis.region``,
  ``kinesis.endpointUrl`` (required by that connector; the region's public endpoint when
  ``aws.endpoint_url`` is unset), ``kinesis.startingPosition`` (``AT_TIMESTAMP`` takes the
  instant in the same value: ``AT_TIMESTAMP 2024-01-01T00:00:00Z``), ``kinesis.consumerType``
  (``SubscribeToShard`` with ``kinesis.consumerName`` for enhanced fan-out, else
  ``GetRecords``) and ``kinesis.maxFetchRecordsPerShard`` (our per-trigger cap split over
  ``kinesis.shard_count``). That connector has no ``shardId`` column: it is added as null.

Runs on the driver when the query is defined; nothing is read until the query starts.
"""

from __future__ import annotations

import math
from datetime import UTC

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from coattail_framework.config import CoattailConfig
from coattail_kinesis.source import FORMAT_NAME, register

EMR_FORMAT_NAME = "aws-kinesis"


def coattail_kinesis_options(config: CoattailConfig) -> dict[str, str]:
    """The ``coattail-kinesis`` options for the configured stream."""
    kinesis = config.kinesis
    options = {
        "streamName": kinesis.stream_name,
        "region": config.aws.region,
        "startingPosition": kinesis.starting_position,
        "maxRecordsPerTrigger": str(kinesis.max_records_per_trigger),
        "maxBytesPerTrigger": str(kinesis.max_bytes_per_trigger),
        "minPollIntervalMs": str(kinesis.min_poll_interval_ms),
        "idlePollIntervalMs": str(kinesis.idle_poll_interval_ms),
        "readFailureMaxAttempts": str(kinesis.read_failure_max_attempts),
        "readFailureMaxSeconds": str(kinesis.read_failure_max_seconds),
    }
    if config.aws.endpoint_url:
        options["endpointUrl"] = config.aws.endpoint_url
    if kinesis.starting_timestamp is not None:
        options["startingTimestamp"] = kinesis.starting_timestamp.isoformat()
    return options


def aws_kinesis_options(config: CoattailConfig) -> dict[str, str]:
    """The options of EMR's ``aws-kinesis`` connector for the configured stream."""
    kinesis = config.kinesis
    region = config.aws.region
    starting: str = kinesis.starting_position
    if starting == "AT_TIMESTAMP":
        assert kinesis.starting_timestamp is not None  # enforced by KinesisConfig
        moment = kinesis.starting_timestamp
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        starting = f"AT_TIMESTAMP {moment.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    options = {
        "kinesis.streamName": kinesis.stream_name,
        "kinesis.region": region,
        "kinesis.endpointUrl": config.aws.endpoint_url or f"https://kinesis.{region}.amazonaws.com",
        "kinesis.startingPosition": starting,
        "kinesis.maxFetchRecordsPerShard": str(math.ceil(kinesis.max_records_per_trigger / kinesis.shard_count)),
        "kinesis.consumerType": "GetRecords",
    }
    if kinesis.efo_consumer_name:
        options["kinesis.consumerType"] = "SubscribeToShard"
        options["kinesis.consumerName"] = kinesis.efo_consumer_name
    return options


def read_trade_stream(spark: SparkSession, config: CoattailConfig, read_delay_ms: int = 0) -> DataFrame:
    """The raw records of the trade stream: ``data``, ``streamName``, ``partitionKey``,
    ``sequenceNumber``, ``approximateArrivalTimestamp`` (UTC instant) and ``shardId``.

    ``read_delay_ms``: ``coattail-kinesis``'s ``readDelayMs`` (ignored by ``aws-kinesis``).
    """
    if config.kinesis.source == FORMAT_NAME:
        register(spark)
        options = coattail_kinesis_options(config)
        if read_delay_ms:
            options["readDelayMs"] = str(read_delay_ms)
        return spark.readStream.format(FORMAT_NAME).options(**options).load()
    raw = spark.readStream.format(EMR_FORMAT_NAME).options(**aws_kinesis_options(config)).load()
    return raw.select(
        "data",
        "streamName",
        "partitionKey",
        "sequenceNumber",
        "approximateArrivalTimestamp",
        F.lit(None).cast("string").alias("shardId"),
    )
