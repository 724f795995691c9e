"""Kinesis for Spark: the ``coattail-kinesis`` Python streaming source and ``read_trade_stream``.

    from coattail_framework.kinesis import read_trade_stream
    trades = read_trade_stream(spark, load_config())   # streaming DataFrame of raw records

Modules: ``source`` (DataSource and stream reader), ``options``, ``offsets`` (offset format),
``shards`` (discovery and lineage), ``limits`` (Kinesis limits, pacing, backoff), ``reader``
(GetRecords, iterator renewal, replay), ``trade_stream`` (source selection by configuration).
Needs PySpark 4 (the ``spark`` extra).
"""

from coattail_framework.kinesis.options import KinesisSourceOptions
from coattail_framework.kinesis.source import FORMAT_NAME, KINESIS_SCHEMA, KinesisDataSource, KinesisStreamReader
from coattail_framework.kinesis.trade_stream import (
    aws_kinesis_options,
    coattail_kinesis_options,
    read_trade_stream,
    register,
)

__all__ = [
    "FORMAT_NAME",
    "KINESIS_SCHEMA",
    "KinesisDataSource",
    "KinesisSourceOptions",
    "KinesisStreamReader",
    "aws_kinesis_options",
    "coattail_kinesis_options",
    "read_trade_stream",
    "register",
]
