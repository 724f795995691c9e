"""The raw-zone destination of the history loader: a local folder or an ``s3://`` prefix.

Layout under the destination root (hive-style partitions, one folder per UTC trade date)::

    date=2024-08-08/symbol=BTCUSDT/part-<first id>-<last id>.parquet   trades (TradeEvent schema)
    _rejected/symbol=BTCUSDT/part-<first id>-<last id>.jsonl           records normalize() refused, with the reason
    _checkpoints/symbol=BTCUSDT.json                                    the commit record (``LoadCheckpoint``)

Names starting with ``_`` are skipped by Parquet dataset readers (pyarrow, Spark). Every
object is written whole or not at all: locally to a temporary name, flushed to disk
(``fsync``) and renamed; on S3 by a single upload, which becomes visible only once complete.
Runs in the loader's process; S3 goes through ``pyarrow.fs.S3FileSystem`` with credentials from
the default AWS provider chain (``aws.endpoint_url`` in the configuration points it at moto).

Example::

    store = open_store("s3://coattail-data/raw/history/aggtrades", region="us-east-1", endpoint_url=None)
    store.put("_checkpoints/symbol=BTCUSDT.json", b"{}")
"""

from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from coattail_framework.errors import ConfigError

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem


class ObjectStore(ABC):
    """Whole-object reads and atomic writes below one root; paths are relative, ``/``-separated."""

    root: str
    """The destination as the user gave it (for messages)."""

    @abstractmethod
    def put(self, path: str, data: bytes) -> None:
        """Store ``data`` at ``path`` atomically and durably (replacing any previous object)."""

    @abstractmethod
    def get(self, path: str) -> bytes | None:
        """The object at ``path``, or None when there is none."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove ``path``; nothing happens when it does not exist."""

    def uri(self, path: str) -> str:
        """``path`` as a full location for messages."""
        return f"{self.root.rstrip('/')}/{path}"


class LocalStore(ObjectStore):
    """A folder on the local file system (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(root)
        self._root = Path(root)

    def put(self, path: str, data: bytes) -> None:
        target = self._root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def get(self, path: str) -> bytes | None:
        try:
            return (self._root / path).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, path: str) -> None:
        (self._root / path).unlink(missing_ok=True)


class S3Store(ObjectStore):
    """An ``s3://bucket/prefix`` location through pyarrow's S3 file system."""

    def __init__(self, root: str, filesystem: S3FileSystem) -> None:
        self.root = root
        parts = urlsplit(root)
        self._base = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
        self._fs = filesystem

    def _key(self, path: str) -> str:
        return f"{self._base}/{path}"

    def put(self, path: str, data: bytes) -> None:
        with self._fs.open_output_stream(self._key(path)) as stream:
            stream.write(data)

    def get(self, path: str) -> bytes | None:
        from pyarrow.fs import FileType

        key = self._key(path)
        if self._fs.get_file_info(key).type == FileType.NotFound:
            return None
        with self._fs.open_input_stream(key) as stream:
            data: bytes = stream.read()
        return data

    def delete(self, path: str) -> None:
        from pyarrow.fs import FileType

        key = self._key(path)
        if self._fs.get_file_info(key).type != FileType.NotFound:
            self._fs.delete_file(key)


def s3_filesystem(*, region: str, endpoint_url: str | None) -> S3FileSystem:
    """pyarrow's S3 file system for the configured region; ``endpoint_url`` (moto) overrides AWS."""
    from pyarrow.fs import S3FileSystem

    if endpoint_url is None:
        return S3FileSystem(region=region)
    endpoint = urlsplit(endpoint_url)
    if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
        raise ConfigError(
            f"aws.endpoint_url must be an http(s) URL such as http://127.0.0.1:5000, got {endpoint_url!r}"
        )
    return S3FileSystem(region=region, endpoint_override=endpoint.netloc, scheme=endpoint.scheme)


def open_store(destination: str, *, region: str, endpoint_url: str | None) -> ObjectStore:
    """The store for ``destination``: ``s3://bucket/prefix`` or a local folder."""
    if destination.startswith("s3://"):
        if not urlsplit(destination).netloc:
            raise ConfigError(f"history destination {destination!r} names no bucket; use s3://<bucket>/<prefix>")
        return S3Store(destination, s3_filesystem(region=region, endpoint_url=endpoint_url))
    if "://" in destination:
        raise ConfigError(f"history destination {destination!r}: only local paths and s3:// URIs are supported")
    return LocalStore(destination)
