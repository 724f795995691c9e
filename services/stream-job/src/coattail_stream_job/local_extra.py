"""What the stream job's local commands need beyond the plain install, checked before they start.

Runs in the command's process (the Spark driver) on a developer's machine. The local stack
(moto on 127.0.0.1, the SQLite Iceberg catalog) lives in ``coattail-devstack``, which the
EMR archive does not contain: ``run --local``, ``reprocess --local`` and local replays import
``coattail_devstack.localstack`` on first use, after ``require_local_extra`` said it is there.

    require_local_extra("run --local", spark=True)
    from coattail_devstack.localstack import start_local_stack
"""

from __future__ import annotations

import importlib

from coattail_framework.errors import ConfigError

LOCAL_EXTRA = "coattail-stream-job[local]"
"""The extra that brings the local stack (coattail-devstack) and PySpark."""


def require_local_extra(command: str, *, spark: bool = False) -> None:
    """Raise ``ConfigError`` naming ``LOCAL_EXTRA`` if ``command`` lacks the local stack (or PySpark, if ``spark``)."""
    needed = ["coattail_devstack.localstack", *(["pyspark"] if spark else [])]
    try:
        for module in needed:
            importlib.import_module(module)
    except ImportError as missing:
        raise ConfigError(
            f"{command} needs the local stack{' and PySpark' if spark else ''} ({missing}): pip install '{LOCAL_EXTRA}'"
        ) from None
