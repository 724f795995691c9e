"""``coattail-stream-job load-history``: a venue's trade history into the raw zone as Parquet.

    coattail-stream-job load-history [--exchange binance|coinbase|...] --symbol BTCUSDT \\
        --start 2024-08-08T23:54:00Z --end 2024-08-09T00:05:00Z [--out PATH|s3://...] [--config FILE]

Trades with ``start <= trade time < end`` (UTC; ``--end`` exclusive) come from the REST
history of the venue's connector plugin (``BaseConnector.trade_history()``, found through
the ``coattail.connectors`` entry point that ``exchanges.<venue>.connector`` names): Binance
``GET /api/v3/aggTrades`` (1,000 a request, weight 4, under 6,000 weight a minute), Coinbase
``GET /products/{id}/trades`` (1,000 a request, by trade-id cursor). The connector normalizes
them as its live path does (the ``TradeEvent`` schema, ``UNIFIED_TRADE_EVENT``); they are
written below ``{storage.raw_zone}/history/aggtrades`` (Binance) or ``history/<venue>``::

    date=2024-08-08/symbol=BTCUSDT/part-<first id>-<last id>.parquet
    _checkpoints/symbol=BTCUSDT.json     stored id ranges: a rerun continues after them
    _rejected/symbol=BTCUSDT/*.jsonl     records normalize() refused, with the reason

The files keep every ``TradeEvent`` column, ``symbol`` included, so a reader that maps the
hive partitions must type ``symbol`` as in the files (pyarrow: ``large_string``)::

    import pyarrow as pa, pyarrow.dataset as ds
    partitions = ds.partitioning(pa.schema([("date", pa.string()), ("symbol", pa.large_string())]), flavor="hive")
    trades = ds.dataset(".local-stack/raw/history/aggtrades", format="parquet", partitioning=partitions)

One module per concern: ``client`` (the venue's ``TradeHistory`` from its connector),
``records`` (events as Arrow tables), ``store`` (local folder or S3, atomic writes),
``checkpoint`` (what is stored), ``loader`` (paging, flushing, resuming), ``progress``,
``job`` (wiring from the configuration) and ``cli``. Nothing is imported here, so parsing
the command line stays cheap. No connector package is imported by name: requests, rate
limits, retries and normalization belong to the connector.
"""
