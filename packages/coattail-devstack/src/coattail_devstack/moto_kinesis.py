"""moto's Kinesis shards, indexed: ``GetRecords`` and ``PutRecord`` cost the same on a long stream.

Runs in whichever process hosts moto (the embedded local stack, the benchmarks' moto
process). moto 5 keeps a shard's records in an insertion-ordered dict and, on every
``PutRecord``, copies all keys to find the last sequence number, and on every
``GetRecords`` walks the shard from its first record. Both grow linearly with the
stream, on the same cores as the job moto serves locally. ``index_moto_kinesis_shards``
replaces those two methods of ``moto.kinesis.models.Shard`` with versions that return
the same values (same records, same next position, same ``MillisBehindLatest``) from a
sorted key list kept beside the dict. Real Kinesis is untouched: this only runs where moto does.
The patch reads moto's private ``Shard`` internals, so it is applied only to the moto versions in
``PATCHED_MOTO_VERSIONS``; any other moto is left as it is (it answers correctly, only slower).

    index_moto_kinesis_shards()   # once, before or after moto's server starts; idempotent
"""

from __future__ import annotations

import bisect
import datetime
import importlib.metadata
import inspect
import itertools
import logging
import re
from typing import Any

LOG = logging.getLogger(__name__)

_KEYS = "_coattail_sorted_keys"

PATCHED_MOTO_VERSIONS: tuple[tuple[int, ...], tuple[int, ...]] = ((5, 2, 5), (5, 3))
"""moto releases whose ``Shard`` the patch was checked against: (lowest included, highest excluded).

5.2.5 keeps ``Record.created_at`` as epoch seconds (float), 5.2.6 as a ``datetime``; both are
tested (``tests/test_moto_kinesis.py``). Compared on the release numbers only, so 5.3.0rc1 is
outside. Widen the upper bound only after running those tests on the newer moto.
"""


def _sorted_keys(shard: Any) -> list[int]:
    """The shard's sequence numbers in order (``records`` only grows, or is replaced on a split)."""
    records = shard.records
    cached = shard.__dict__.get(_KEYS)
    if cached is None or cached[0] is not records or len(cached[1]) > len(records):
        keys = list(records)
    else:
        keys = cached[1]
        missing = len(records) - len(keys)
        if missing:
            keys.extend(reversed(list(itertools.islice(reversed(records), missing))))
    shard.__dict__[_KEYS] = (records, keys)
    return keys


def _get_max_sequence_number(shard: Any) -> int:
    return next(reversed(shard.records)) if shard.records else 0


def _get_records(shard: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
    keys = _sorted_keys(shard)
    start = bisect.bisect_right(keys, int(last_sequence_id))
    chosen = keys[start:] if limit is None else keys[start : start + limit]
    if not chosen:
        return [], int(last_sequence_id), 0
    results = [shard.records[key] for key in chosen]
    behind = shard.records[keys[-1]].created_at - results[-1].created_at
    return results, chosen[-1], _millis(behind)


def _millis(behind: float | datetime.timedelta) -> int:
    """``MillisBehindLatest`` as moto computes it (``created_at``: epoch seconds to 5.2.5, a datetime from 5.2.6)."""
    seconds = behind.total_seconds() if isinstance(behind, datetime.timedelta) else behind
    return int(seconds * 1000)


def _release(version: str) -> tuple[int, ...] | None:
    """The release numbers of a version string (``"5.2.6.dev1"`` -> ``(5, 2, 6)``); None if unreadable."""
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:
        leading = re.match(r"\d+(?:\.\d+)*", version.strip())
        return tuple(int(part) for part in leading.group().split(".")) if leading else None
    try:
        return Version(version).release
    except InvalidVersion:
        return None


def index_moto_kinesis_shards(moto_version: str | None = None) -> bool:
    """Patch ``moto.kinesis.models.Shard`` (process-wide; idempotent); False if moto is left as it is.

    ``moto_version`` defaults to the installed distribution's. A moto outside
    ``PATCHED_MOTO_VERSIONS``, or whose ``Shard.get_records`` no longer takes
    ``(last_sequence_id, limit)``, is left as it is (and logged): correctness first, the
    patch only saves CPU.
    """
    from moto.kinesis.models import Shard

    version = importlib.metadata.version("moto") if moto_version is None else moto_version
    release = _release(version)
    lowest, above = PATCHED_MOTO_VERSIONS
    if release is None or not lowest <= release < above:
        LOG.warning(
            "moto %s is outside the versions whose Kinesis shards coattail indexes (>=%s,<%s); "
            "left as it is (GetRecords scans the shard, correct but slower)",
            version,
            ".".join(map(str, lowest)),
            ".".join(map(str, above)),
        )
        return False
    if Shard.get_records is _get_records:
        return True
    if list(inspect.signature(Shard.get_records).parameters) != ["self", "last_sequence_id", "limit"]:
        LOG.warning("moto's Kinesis Shard changed; its shards are not indexed (GetRecords scans the shard)")
        return False
    setattr(Shard, "get_max_sequence_number", _get_max_sequence_number)  # noqa: B010 - patching a class
    setattr(Shard, "get_records", _get_records)  # noqa: B010
    return True
