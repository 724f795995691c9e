"""Coat Tail Capital's local development stack and test kit (``coattail-devstack``).

What runs only on a developer's machine or in tests, never on EMR or Lambda:

- ``coattail_devstack.localstack``: moto's server on 127.0.0.1 with the project's stream,
  alert table and bucket, and the SQLite Iceberg catalog (``start_local_stack``);
- ``coattail_devstack.moto_kinesis``: the version-guarded index of moto's Kinesis shards;
- ``coattail_devstack.simulate``: a connector's exchange simulator serving a recording,
  found through the ``coattail.simulators`` entry points;
- ``coattail_devstack.testing``: the test kit (pytest fixtures, ``run_detector_stream``,
  ``DetectorContract`` / ``ConnectorContract``);
- ``coattail_devstack.cli``: the ``coattail-devstack`` command (``localstack``, ``simulate``).

Example (a shell)::

    coattail-devstack localstack --root .local-stack
    coattail-devstack simulate binance --recording tests/data/binance/ws/spot_btcusdt_20240808.gz --port 9443
"""

__version__ = "0.1.0"
