"""What the EMR archive holds, from its inputs: the shipped distributions and ``requirements.lock``.

The local stack and the test kit (``coattail-devstack``: moto, pytest) run only on a
developer's machine (ADR-037); the archive must hold neither. ``tests/e2e/test_emr_archive.py``
checks the built archive itself; this runs in a second, on the lock and the pyproject files.
"""

from __future__ import annotations

import re
from pathlib import Path

from coattail_stream_job.packaging import LOCK_PATH, normalize, shipped_distributions

ROOT = Path(__file__).resolve().parents[3]
LOCAL_ONLY = {"coattail-devstack", "moto", "pytest", "flask", "werkzeug"}
"""The test kit and what its moto server and pytest bring: never in the archive."""


def locked_names(lock: Path) -> set[str]:
    """The PEP 503 names a hashed requirements file pins."""
    return {normalize(match) for match in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text(), re.M)}


def test_the_archive_ships_no_local_stack_distribution() -> None:
    shipped = set(shipped_distributions(ROOT))

    assert {"coattail-stream-job", "coattail-framework", "coattail-kinesis"} <= shipped
    assert shipped & LOCAL_ONLY == set()


def test_the_archive_lock_pins_no_moto_and_no_test_kit() -> None:
    pinned = locked_names(ROOT / LOCK_PATH)

    assert {"boto3", "pyiceberg", "pyarrow"} <= pinned
    assert pinned & LOCAL_ONLY == set()
