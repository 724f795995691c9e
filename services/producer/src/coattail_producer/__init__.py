"""Coat Tail Capital producer: exchange connectors -> Kinesis, live or replayed from recordings.

``coattail-producer`` (live) runs every enabled venue's connector plugin concurrently and
publishes normalized ``TradeEvent`` JSON to the configured Kinesis stream;
``coattail-producer replay`` serves recordings through each connector package's exchange
simulator so the real connector code runs unchanged. ``replay()`` is the same as a
Python coroutine for the end-to-end pipeline.
"""

__version__ = "0.1.0"
