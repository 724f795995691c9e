"""The whole pipeline on one machine: replay recordings and the demo.

``pipeline.run_replay`` starts the embedded local stack (moto on 127.0.0.1, SQLite
Iceberg catalog, warehouse under the output folder), replays recordings through the
exchange simulators and the real connectors into Kinesis (``coattail_producer.replay``),
then drains the stream through the stream job with every configured detector and reads
the sinks back into ``alerts.jsonl`` and ``summary.json``. ``pipeline.run_demo`` does
that for the bundled recordings (plus the labelled ``synthetic`` Coinbase BTC-USD file);
``report`` prints the summary table and writes ``report.html`` (charts from ``svg``).
Run them with ``python -m coattail_stream_job.replay`` (or ``nox -s replay`` /
``nox -s demo``); they need the ``spark`` and ``replay`` extras.
"""
