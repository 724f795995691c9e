"""The SparkSession of a stream-job command: EMR's session with the platform settings, or a local one.

Runs on the driver, in the command's process. Every Coat Tail Capital session computes in
UTC: ``spark.sql.session.timeZone`` is UTC and so is the driver process's ``TZ`` (naive
datetimes Spark hands back to Python are then UTC too). ``job_session`` yields the session
and stops it afterwards only when the command created it, so a caller that already holds
one (a test, a notebook) keeps it.

Example::

    with job_session("coattail-stream-job", local=True) as spark:
        PipelineRunner(spark, config).run()
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from coattail_framework.spark import PLATFORM_CONF, local_session

LOG = logging.getLogger(__name__)


def _utc_process() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()


def platform_session(app_name: str) -> SparkSession:
    """The cluster's session (EMR provides Spark) with every runtime-settable ``PLATFORM_CONF`` applied.

    A setting Spark fixes at start and the cluster set differently is logged, not changed:
    pass it with ``--conf`` at submission (``coattail-stream-job submit`` does).
    """
    builder = SparkSession.builder.appName(app_name)
    for key, value in PLATFORM_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in PLATFORM_CONF.items():
        current = spark.conf.get(key, None)
        if current == value:
            continue
        if spark.conf.isModifiable(key):
            spark.conf.set(key, value)
        else:
            LOG.warning("Spark setting %s is %r, the platform expects %r; pass it at submission", key, current, value)
    return spark


@contextmanager
def job_session(app_name: str, *, local: bool) -> Iterator[SparkSession]:
    """A local[2] session (``local``) or the platform session; stopped on exit if this call created it."""
    _utc_process()
    created = SparkSession.getActiveSession() is None
    spark = local_session(app_name) if local else platform_session(app_name)
    try:
        yield spark
    finally:
        if created:
            spark.stop()
