"""Spark's Python worker daemon, with the zip archives on its start-up path read once.

Spark starts it as ``python -m coattail_framework.worker_daemon <worker module>`` when
``spark.python.daemon.module`` names it (``coattail_framework.spark.PLATFORM_CONF`` does);
it runs on every executor (and on the driver machine in local mode), and the Python workers
that run tasks are forked from it. It is ``pyspark.daemon`` unchanged, after one step:

PySpark before 4.2 (SPARK-54744) calls ``importlib.invalidate_caches()`` before every
task. On Python 3.11 that makes each ``zipimporter`` on ``sys.path`` read its archive's
central directory again: Spark puts ``pyspark.zip`` (1,220 entries, 8 ms per read on an
idle core) and the py4j zip first on every worker's path, so every task paid it, and
under the live job it was most of the workers' CPU (py-spy: 208 of 348 samples of the
busiest worker, ADR-026). The archives on the daemon's path when it starts are Spark's
own and the ``PYTHONPATH`` of the cluster; they do not change while the daemon lives, so
their importers here keep the directory they read. Archives a task adds later
(``--py-files``, ``addPyFile``) get the ordinary importer and are still re-read. On
PySpark 4.2+, which no longer invalidates per task, the step changes nothing.
"""

from __future__ import annotations

import os
import runpy
import sys
import zipimport

DAEMON_MODULE = "coattail_framework.worker_daemon"
"""The value of ``spark.python.daemon.module`` that starts this daemon."""


class StableZipImporter(zipimport.zipimporter):
    """A ``zipimporter`` whose archive does not change while the process runs.

    ``invalidate_caches`` keeps the directory read when the importer was built; imports,
    resources and ``find_spec`` behave as the standard importer's.
    """

    def invalidate_caches(self) -> None:
        """Keep the archive's directory (the archive is immutable for this process)."""
        return None


def _inside(path: str, archives: tuple[str, ...]) -> bool:
    return any(path == archive or path.startswith(archive + os.sep) for archive in archives)


class StableArchivesHook:
    """A ``sys.path_hooks`` entry: ``StableZipImporter`` for paths in the given archives.

    Covers the archive itself and the package folders inside it: each package imported from
    an archive gets an importer of its own (``.../pyspark.zip/pyspark/sql``), and each of
    those would read the whole archive's directory again.
    """

    def __init__(self, archives: tuple[str, ...]) -> None:
        self.archives = archives

    def __call__(self, path: str) -> StableZipImporter:
        if not _inside(path, self.archives):
            raise ImportError(f"{path} is not in a start-up archive")
        return StableZipImporter(path)


def _is_zip_archive(entry: str) -> bool:
    if not entry or not os.path.isfile(entry):
        return False
    try:
        zipimport.zipimporter(entry)
    except zipimport.ZipImportError:
        return False
    return True


def keep_start_up_archives(path: list[str] | None = None) -> tuple[str, ...]:
    """Import from the zip archives on ``path`` (default ``sys.path``) with ``StableZipImporter``.

    Installs a ``StableArchivesHook`` first in ``sys.path_hooks`` and drops the importers
    already cached for those archives (the import system rebuilds them through the hook when
    next needed; modules already imported keep their loaders). Returns the archives.
    """
    archives = tuple(entry for entry in (sys.path if path is None else path) if _is_zip_archive(entry))
    if not archives:
        return archives
    sys.path_hooks.insert(0, StableArchivesHook(archives))
    for entry in list(sys.path_importer_cache):
        if _inside(entry, archives):
            del sys.path_importer_cache[entry]
    return archives


def main() -> None:
    """Register the start-up archives, then run ``pyspark.daemon`` as Spark would."""
    keep_start_up_archives()
    runpy.run_module("pyspark.daemon", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
