"""SparkSession settings the platform relies on, and a local session for tests and ``--local`` runs.

Runs on the driver. Every session used by Coat Tail Capital sets the session time zone
to UTC (all event times are UTC instants). ``local_session`` also binds Spark to
127.0.0.1, disables the UI and points Python workers at this interpreter, so workers see
the same installed plugins as the driver.

Example::

    spark = local_session("coattail-tests")
"""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

PLATFORM_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.streaming.noDataMicroBatches.enabled": "true",
    # Catalyst's constraint propagation re-derives every filter's constraints on each
    # micro-batch's plan; with the quality rules and detector filters it was most of the
    # per-batch planning (queryPlanning 110-190 ms -> about 25 ms per whale batch, ADR-022).
    "spark.sql.constraintPropagation.enabled": "false",
    # Python workers forked from a daemon that reads Spark's zip archives once: PySpark 4.0/4.1
    # re-read pyspark.zip's directory before every task (worker_daemon, ADR-026).
    "spark.python.daemon.module": "coattail_framework.worker_daemon",
}
LOCAL_CONF: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.streaming.stopGracefullyOnShutdown": "true",
    "spark.python.worker.reuse": "true",
    "spark.ui.showConsoleProgress": "false",
}


def local_session(app_name: str = "coattail", master: str = "local[2]", **conf: str) -> SparkSession:
    """A local SparkSession with the platform settings (reused if one is already active)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**PLATFORM_CONF, **LOCAL_CONF, **conf}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
