"""``coattail-stream-job load-history``: Binance aggTrades history into the raw zone as Parquet.

One module per concern: ``client`` (REST within the weight limit), ``records`` (the live
connector's normalization), ``store`` (local folder or S3, atomic writes), ``checkpoint``
(what is stored), ``loader`` (paging, flushing, resuming), ``progress`` and ``cli``. Nothing is
imported here, so the CLI's argument parsing stays cheap.
"""
