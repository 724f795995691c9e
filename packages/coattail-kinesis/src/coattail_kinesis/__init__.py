"""``coattail-kinesis``: a Spark 4 Python streaming data source reading Kinesis with boto3.

    from coattail_kinesis.source import register
    register(spark)
    stream = (spark.readStream.format("coattail-kinesis")
              .options(streamName="coattail-trades", region="us-east-1").load())

Modules: ``source`` (DataSource and stream reader; needs PySpark 4, the ``spark`` extra),
``options`` (the source's options, validated), ``offsets`` (offset format), ``shards``
(discovery and lineage), ``reader`` (GetRecords, iterator renewal, replay), ``limits`` (Kinesis
service limits, pacing, backoff) and ``clients`` (boto3 clients; dummy credentials for a
loopback endpoint). Everything but ``source`` imports no PySpark: the producer imports
``limits`` without it.
"""
