"""The trade stream from configuration: ``read_trade_stream`` picks ``coattail-kinesis`` or EMR's ``aws-kinesis``.

    from coattail_framework.kinesis import read_trade_stream
    trades = read_trade_stream(spark, load_config())   # streaming DataFrame of raw records

The ``coattail-kinesis`` source itself is its own distribution, ``coattail_kinesis`` (ADR-030);
``trade_stream`` turns ``CoattailConfig`` into either source's options. Needs PySpark 4 for
``coattail-kinesis`` (the ``spark`` extra).
"""

from coattail_framework.kinesis.trade_stream import (
    EMR_FORMAT_NAME,
    aws_kinesis_options,
    coattail_kinesis_options,
    read_trade_stream,
)

__all__ = [
    "EMR_FORMAT_NAME",
    "aws_kinesis_options",
    "coattail_kinesis_options",
    "read_trade_stream",
]
