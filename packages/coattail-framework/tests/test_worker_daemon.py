"""The Python worker daemon keeps the archives of its start-up path (coattail_framework.worker_daemon)."""

from __future__ import annotations

import importlib
import sys
import zipfile
import zipimport
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyspark.sql import SparkSession

from coattail_framework.spark import PLATFORM_CONF
from coattail_framework.worker_daemon import (
    DAEMON_MODULE,
    StableArchivesHook,
    StableZipImporter,
    keep_start_up_archives,
)

PACKAGE = "coattail_daemon_probe"


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Path]:
    """A zip archive holding a package with a submodule; the import system is restored afterwards."""
    path = tmp_path / "probe.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{PACKAGE}/__init__.py", "")
        zf.writestr(f"{PACKAGE}/answer.py", "ANSWER = 42\n")
    hooks, cached = list(sys.path_hooks), dict(sys.path_importer_cache)
    yield path
    sys.path[:] = [entry for entry in sys.path if entry != str(path)]
    sys.path_hooks[:] = hooks
    sys.path_importer_cache.clear()
    sys.path_importer_cache.update(cached)
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def _importers_in(archive: Path) -> list[str]:
    """Type names of the importers cached for the archive and the package folders in it."""
    return sorted(
        type(finder).__name__
        for entry, finder in sys.path_importer_cache.items()
        if entry == str(archive) or entry.startswith(f"{archive}/")
    )


def _count_directory_reads(monkeypatch: pytest.MonkeyPatch, archive: Path) -> list[str]:
    reads: list[str] = []
    original = zipimport._read_directory  # type: ignore[attr-defined]

    def counting(path: str) -> Any:
        if path == str(archive):
            reads.append(path)
        return original(path)

    monkeypatch.setattr(zipimport, "_read_directory", counting)
    return reads


def test_only_zip_archives_are_kept(archive: Path, tmp_path: Path) -> None:
    not_a_zip = tmp_path / "notes.txt"
    not_a_zip.write_text("plain text")
    kept = keep_start_up_archives([str(archive), str(tmp_path), str(tmp_path / "missing.zip"), str(not_a_zip), ""])
    assert kept == (str(archive),)
    assert keep_start_up_archives([str(tmp_path)]) == ()


def test_a_kept_archive_is_not_read_again_when_caches_are_invalidated(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.path.insert(0, str(archive))
    importlib.import_module(PACKAGE)  # cached before the daemon's step, as pyspark's packages are
    keep_start_up_archives([str(archive)])
    assert importlib.import_module(f"{PACKAGE}.answer").ANSWER == 42
    # the package folder's importer, rebuilt through the hook (the archive's is rebuilt when next needed)
    assert _importers_in(archive) == ["StableZipImporter"]
    reads = _count_directory_reads(monkeypatch, archive)
    for _ in range(3):
        importlib.invalidate_caches()
    assert reads == []


def test_standard_importers_read_the_archive_at_every_invalidation(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the daemon avoids (Python 3.11): one full read per importer (archive and package) per task."""
    sys.path.insert(0, str(archive))
    assert importlib.import_module(f"{PACKAGE}.answer").ANSWER == 42
    assert _importers_in(archive) == ["zipimporter", "zipimporter"]
    reads = _count_directory_reads(monkeypatch, archive)
    for _ in range(3):
        importlib.invalidate_caches()
    assert len(reads) == 6


def test_other_paths_are_left_to_the_standard_hooks(archive: Path, tmp_path: Path) -> None:
    keep_start_up_archives([str(archive)])
    hook = sys.path_hooks[0]
    assert isinstance(hook, StableArchivesHook)
    with pytest.raises(ImportError):
        hook(str(tmp_path))
    assert type(hook(f"{archive}/{PACKAGE}")) is StableZipImporter


def test_spark_workers_run_under_the_daemon(spark: SparkSession) -> None:
    assert PLATFORM_CONF["spark.python.daemon.module"] == DAEMON_MODULE
    assert spark.sparkContext.getConf().get("spark.python.daemon.module") == DAEMON_MODULE

    def importer_kinds(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        """Executor: the importers the worker holds for pyspark.zip (a closure: pickled by value)."""
        kinds = {type(finder).__name__ for entry, finder in sys.path_importer_cache.items() if "pyspark.zip" in entry}
        for _ in batches:
            yield pa.RecordBatch.from_pylist([{"kinds": ",".join(sorted(kinds))}])

    rows = spark.range(0, 2, 1, numPartitions=2).mapInArrow(importer_kinds, "kinds string").collect()
    assert [row.kinds for row in rows] == ["StableZipImporter", "StableZipImporter"]
