"""SparkSession settings the platform relies on, a local session for tests and ``--local`` runs,
and ``start_query``, which starts a streaming query and survives a Python worker that was late.

Runs on the driver. Every session used by Coat Tail Capital sets the session time zone
to UTC (all event times are UTC instants). ``local_session`` also binds Spark to
127.0.0.1, disables the UI and points Python workers at this interpreter, so workers see
the same installed plugins as the driver.

A query reading a Python data source (``coattail-kinesis``) starts one Python process on
the driver for the source (Spark 4.0's ``PythonStreamingSourceRunner``), launched without
the worker daemon. Spark gives it 10 s to connect back, fixed, no setting
(``PythonWorkerFactory.createSimpleWorker``); it imports PySpark from ``pyspark.zip``, which
holds no compiled files, so on a loaded 2-core machine with several queries starting at once
it can miss that and the query dies with "Python worker failed to connect back".
``start_query`` waits until the query's sources are initialised, so the queries of a pipeline
start their source processes one at a time, and starts a query again, at most
``QUERY_START_ATTEMPTS`` times in all, when that was the reason it died, after a pause
(``restart_pauses``: a restart straight into the load that made the process late
is likely to be late again).

Example::

    spark = local_session("coattail-tests")
    query = start_query(frame.writeStream.foreachBatch(handler).option("checkpointLocation", path))
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming.query import StreamingQuery
from pyspark.sql.streaming.readwriter import DataStreamWriter

from coattail_framework.resilience import Backoff, wait_until

LOG = logging.getLogger(__name__)

PLATFORM_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.streaming.noDataMicroBatches.enabled": "true",
    # Catalyst's constraint propagation re-derives every filter's constraints on each
    # micro-batch's plan; with the quality rules and detector filters it was most of the
    # per-batch planning (queryPlanning 110-190 ms -> about 25 ms per hot-path batch, ADR-022).
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


QUERY_START_ATTEMPTS = 4
"""Starts of one query in all when its Python source process did not connect back in time."""
SOURCE_INITIALIZATION_TIMEOUT_S = 120.0
"""How long ``start_query`` waits for a query's sources to be initialised before returning it anyway."""
CONNECT_BACK_FAILURE = "Python worker failed to connect back"
"""Spark's message (3.x-4.x) when a Python process it started did not connect back in time."""
_INITIALIZING = frozenset({"Initializing StreamExecution", "Initializing sources"})


def failed_to_connect_back(query: StreamingQuery) -> bool:
    """Whether ``query`` stopped because a Python process Spark started did not connect back in time."""
    error = query.exception()
    return error is not None and CONNECT_BACK_FAILURE in str(error)


def await_sources(
    query: StreamingQuery,
    timeout_seconds: float = SOURCE_INITIALIZATION_TIMEOUT_S,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Wait until ``query`` has initialised its sources or stopped; False if ``timeout_seconds`` passed first."""
    return wait_until(
        lambda: not (query.isActive and query.status["message"] in _INITIALIZING),
        timeout_seconds,
        interval_s=0.1,
        sleep=sleep,
        clock=clock,
    )


def restart_pauses() -> Backoff:
    """The pauses before a query's restarts, seconds: 1-2, then 2-4, then 4-8 (at most 14 s in all)."""
    return Backoff(initial=2.0, cap=8.0, jitter=0.5)


def start_query(
    writer: DataStreamWriter,
    *,
    attempts: int = QUERY_START_ATTEMPTS,
    timeout_seconds: float = SOURCE_INITIALIZATION_TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    backoff: Backoff | None = None,
) -> StreamingQuery:
    """Start ``writer``'s query and wait until its sources are initialised (see the module docstring).

    A start that died because a Python process did not connect back is started again from the
    same writer (same name and checkpoint; the failed start committed nothing) after a pause
    from ``backoff`` (default ``restart_pauses()``), each failure logged, up to ``attempts``
    starts. Any other failure, or the last attempt's, is returned with the query as Spark left
    it: the caller sees it as it sees any failed query.
    """
    pauses = backoff or restart_pauses()
    query = writer.start()
    for attempt in range(2, attempts + 1):
        await_sources(query, timeout_seconds, sleep=sleep, clock=clock)
        if query.isActive or not failed_to_connect_back(query):
            return query
        with contextlib.suppress(StreamingQueryException):
            query.awaitTermination()  # returns once Spark has unregistered it: the name and id are free again
        pause = pauses.next_delay()
        LOG.warning(
            "query %s: its Python source process did not connect back within Spark's 10 s (a loaded machine); "
            "starting it again in %.1f s (attempt %d of %d)",
            query.name,
            pause,
            attempt,
            attempts,
        )
        sleep(pause)
        query = writer.start()
    await_sources(query, timeout_seconds, sleep=sleep, clock=clock)
    return query
