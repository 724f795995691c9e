"""The local AWS (moto) for benchmarks, in a process of its own, as AWS is for a deployed job.

The embedded local stack (``coattail_devstack.localstack.start_local_stack``) runs moto
in-process, which is right for tests and the demo. In a benchmark of the stream job that
would put every Kinesis, DynamoDB and S3 request the job makes — and the benchmark's own
producer and DynamoDB poller — under the GIL of the Spark driver process, which also runs
every ``foreachBatch`` handler: the figures would measure moto's contention with the job.
Here moto's ``ThreadedMotoServer`` runs in a spawned child process on 127.0.0.1 (a free
port), its Kinesis shards indexed as in the local stack (``coattail_devstack.moto_kinesis``);
the benchmark creates its resources with ``localstack.create_resources``.

    with moto_in_child_process() as endpoint_url:
        config = local_config(config, root, endpoint_url)
        create_resources(config)

``moto_in_child_process(put_log=queue)`` also reports every DynamoDB item stored: moto's
process puts ``(table, item attributes, epoch seconds)`` on the queue once the put has
succeeded (a failed conditional put reports nothing): the moment the item became readable,
on the same clock as Kinesis's ``ApproximateArrivalTimestamp``, without polling the table.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0


def _log_puts(put_log: Any) -> None:
    """Child process: report each DynamoDB item moto stores on ``put_log``."""
    import time

    from moto.dynamodb.models import DynamoDBBackend

    put_item = DynamoDBBackend.put_item

    def logged(self: Any, table_name: str, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        stored = put_item(self, table_name, item_attrs, *args, **kwargs)
        put_log.put((table_name, item_attrs, time.time()))
        return stored

    setattr(DynamoDBBackend, "put_item", logged)  # noqa: B010 - patching a class


def _serve(ports: Any, stop: Event, put_log: Any) -> None:
    """Child process: run moto on ``HOST`` until ``stop`` is set; report the port first."""
    import logging

    from moto.server import ThreadedMotoServer

    from coattail_devstack.moto_kinesis import index_moto_kinesis_shards

    index_moto_kinesis_shards()
    if put_log is not None:
        _log_puts(put_log)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    ports.put(server.get_host_and_port()[1])
    stop.wait()
    server.stop()


def put_log_queue() -> Any:
    """A queue for ``moto_in_child_process(put_log=...)`` (spawn context)."""
    return multiprocessing.get_context("spawn").Queue()


@contextmanager
def moto_in_child_process(put_log: Any = None) -> Iterator[str]:
    """Start moto in a spawned child process; yields its endpoint URL, stops it on exit."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    stop = context.Event()
    child = context.Process(target=_serve, args=(ports, stop, put_log), name="coattail-bench-moto", daemon=True)
    child.start()
    try:
        port = ports.get(timeout=START_TIMEOUT_S)
        yield f"http://{HOST}:{port}"
    finally:
        stop.set()
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
