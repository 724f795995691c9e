"""Fresh virtual environments for install tests: what a plain install of a distribution pulls in.

Runs in the pytest process of a distribution's suite and needs ``uv`` on PATH (every nox
session has it). When ``UV_CONSTRAINT`` is set (the nox sessions set it to the lock), the
install takes the locked versions, so a test sees what a user's install gets. Sibling
distributions are not on PyPI: a test names each local project it installs.

Example::

    root = monorepo_root(Path(__file__))
    python = clean_venv(tmp_path / "venv", root / "packages/coattail-framework", root / "packages/coattail-kinesis")
    assert not installed_distributions(python) & HEAVY_DISTRIBUTIONS
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HEAVY_DISTRIBUTIONS = frozenset({"pyspark", "pyiceberg", "pyarrow", "pandas", "moto", "coattail-devstack"})
"""What a connector, the producer or the framework core must not pull (PEP 503 names): the
Spark and Iceberg side, and the local stack and test kit (moto, coattail-devstack, ADR-037)."""

_INSTALLED_PROBE = (
    "import json, importlib.metadata as m; "
    "print(json.dumps(sorted({d.metadata['Name'].lower().replace('_', '-') for d in m.distributions()})))"
)


def monorepo_root(start: Path) -> Path:
    """The checkout holding ``start`` (a test file): the folder with ``packages/`` and ``services/``."""
    for parent in start.resolve().parents:
        if (parent / "packages").is_dir() and (parent / "services").is_dir():
            return parent
    raise FileNotFoundError(f"no monorepo checkout above {start}: install tests run from a checkout")


def clean_venv(folder: Path, *projects: Path, timeout_s: float = 600.0) -> Path:
    """A new venv in ``folder`` (this interpreter's Python) with ``projects`` installed; returns its python."""
    uv = shutil.which("uv")
    if uv is None:
        raise FileNotFoundError("install tests need uv on PATH (pip install uv)")
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(folder)], check=True, timeout=timeout_s)  # noqa: S603 - a test kit running uv and the venv it made
    python = folder / "bin" / "python"
    command = [uv, "pip", "install", "--quiet", "--python", str(python), *map(str, projects)]
    subprocess.run(command, check=True, timeout=timeout_s)  # noqa: S603 - a test kit running uv and the venv it made
    return python


def installed_distributions(python: Path) -> set[str]:
    """The PEP 503 names of every distribution installed for ``python``."""
    result = subprocess.run([str(python), "-c", _INSTALLED_PROBE], check=True, capture_output=True, text=True)  # noqa: S603 - the venv it made
    return set(json.loads(result.stdout))


def imported_after(python: Path, statement: str) -> set[str]:
    """Top-level modules loaded by ``python`` after running ``statement`` (e.g. an entry point's load)."""
    probe = f"import sys, json\n{statement}\nprint(json.dumps(sorted({{n.split('.')[0] for n in sys.modules}})))"
    result = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True)  # noqa: S603 - the venv it made
    return set(json.loads(result.stdout.splitlines()[-1]))
