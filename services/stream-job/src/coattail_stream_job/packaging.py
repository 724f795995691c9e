"""The stream job's EMR Serverless artifacts: a relocatable venv archive and its entry point.

Runs on a build machine (``nox -s package-emr``, CI, the packaging test), never on EMR,
and needs only the standard library and ``uv`` on PATH, so it also runs as a plain script.

1. Builds wheels of ``coattail-stream-job`` and every sibling distribution it depends on
   (declared ``dependencies`` only: the plugins it pins exactly, the framework).
2. Installs the third-party packages from ``services/stream-job/requirements.lock``
   (``uv pip compile`` output, pinned with hashes, resolved within the monorepo lock
   ``locks/pyspark-4.0.2.txt`` so it pins the versions every test ran with) into a fresh venv of EMR's Python
   (3.11 for emr-spark-8.0.0), then the local wheels without dependencies, and checks that
   every declared requirement is met (``uv pip check``).
3. Refuses the result if PySpark or py4j got in: EMR provides both, from its own Spark.
4. Packs the venv with venv-pack (``dist/stream-job-venv.tar.gz``) and copies the entry
   point script (``dist/emr_entry.py``) beside it.

The venv's ``bin/python`` is a link to the interpreter that built it: build on the platform
that runs it (inside the EMR image, see docs/DEPLOY.md) so the link resolves there.

    python -m coattail_stream_job.packaging --root . --output dist            # from the lock
    python -m coattail_stream_job.packaging --root . --lock-only   # the lock only (`nox -s lock`)
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

STREAM_JOB = "coattail-stream-job"
LOCK_PATH = Path("services/stream-job/requirements.lock")
"""The archive's lock (with hashes), relative to the repository root."""
MONOREPO_LOCK = Path("locks/pyspark-4.0.2.txt")
"""The monorepo lock of EMR's PySpark line (emr-spark-8.0.0 runs Spark 4.0.2), relative to the
root: the archive's lock is resolved within it, and the wheels are built with its back-ends."""
ARCHIVE_NAME = "stream-job-venv.tar.gz"
ENTRY_POINT = Path(__file__).with_name("emr_entry.py")
EMR_PYTHON = "3.11"
"""emr-spark-8.0.0 ships Python 3.11 (also 3.12 and 3.13); the archive targets 3.11."""
EMR_PYTHON_SIDE = ("pandas>=2.2,<3",)
"""What EMR's PySpark needs in the job's Python besides the job's own requirements: pandas
for the pandas API (``applyInPandasWithState``); pyarrow<26 is pinned by the job itself."""
PROVIDED_BY_EMR = ("pyspark", "py4j")
VENV_PACK = "venv-pack==0.2.0"
LOCK_COMMAND = "nox -s lock"

log = logging.getLogger(__name__)


class PackagingError(RuntimeError):
    """The archive cannot be built; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Artifacts:
    """What one build produced."""

    archive: Path
    entry_point: Path
    lock: Path
    interpreter: Path
    """The interpreter the archive's ``bin/python`` links to: it must exist where the job runs."""
    distributions: dict[str, str]
    """Every distribution in the archive: name -> version."""

    def sha256(self) -> str:
        """The archive's SHA-256 (hex)."""
        digest = hashlib.sha256()
        with self.archive.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


def normalize(name: str) -> str:
    """PEP 503 normal form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The distribution name a PEP 508 requirement string starts with."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise PackagingError(f"cannot read a distribution name from requirement {requirement!r}")
    return normalize(match.group(1))


def local_distributions(root: Path) -> dict[str, Path]:
    """Every distribution of the repository at ``root``: name -> its folder."""
    found: dict[str, Path] = {}
    for pyproject in sorted([*root.glob("packages/*/pyproject.toml"), *root.glob("services/*/pyproject.toml")]):
        found[normalize(tomllib.loads(pyproject.read_text())["project"]["name"])] = pyproject.parent
    if STREAM_JOB not in found:
        raise PackagingError(f"{root}: no services/*/pyproject.toml names {STREAM_JOB}; pass the repository root")
    return found


def shipped_distributions(root: Path) -> dict[str, Path]:
    """``coattail-stream-job`` and the sibling distributions it needs at run time (transitively)."""
    local = local_distributions(root)
    shipped: dict[str, Path] = {}
    pending = [STREAM_JOB]
    while pending:
        name = pending.pop()
        shipped[name] = local[name]
        project = tomllib.loads((local[name] / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            dependency = requirement_name(requirement)
            if dependency in local and dependency not in shipped and dependency not in pending:
                pending.append(dependency)
    return dict(sorted(shipped.items()))


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    """Run a build command (in ``cwd``); its output is returned, a failure raised with the command's stderr."""
    arguments = [str(part) for part in command]
    log.info("$ %s", " ".join(arguments))
    completed = subprocess.run(arguments, capture_output=True, text=True, check=False, cwd=cwd)  # noqa: S603
    if completed.returncode != 0:
        raise PackagingError(f"`{' '.join(arguments)}` failed ({completed.returncode}):\n{completed.stderr.strip()}")
    return completed.stdout


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise PackagingError("uv is not on PATH; install it (pip install uv) to build the EMR archive")
    return uv


def build_wheels(distributions: dict[str, Path], out: Path, *, constraints: Path) -> dict[str, Path]:
    """Build one wheel per distribution into ``out``: name -> wheel (build back-ends from ``constraints``)."""
    uv = _uv()
    wheels: dict[str, Path] = {}
    for name, folder in distributions.items():
        target = out / name
        _run(uv, "build", "--quiet", "--wheel", "--build-constraints", constraints, "--out-dir", target, folder)
        (wheel,) = target.glob("*.whl")
        wheels[name] = wheel
    return wheels


def compile_lock(wheels: dict[str, Path], lock: Path, *, constraints: Path, python_version: str = EMR_PYTHON) -> None:
    """Resolve the third-party requirements of ``wheels`` (plus ``EMR_PYTHON_SIDE``) into ``lock``.

    Local distributions are resolved from the wheels and left out of the lock: they are
    installed from freshly built wheels. Versions are those of ``constraints`` (the monorepo
    lock); pins carry hashes; the target is Linux, ``python_version``.
    """
    with tempfile.TemporaryDirectory(prefix="coattail-lock-") as scratch:
        requirements = Path(scratch) / "requirements.in"
        lines = [f"{name} @ {wheel.resolve().as_uri()}" for name, wheel in wheels.items()]
        requirements.write_text("\n".join([*lines, *EMR_PYTHON_SIDE]) + "\n")
        excluded = [arg for name in wheels for arg in ("--no-emit-package", name)]
        # Relative paths in a scratch folder: the lock's annotations name no temporary folder.
        locked = Path(scratch) / "locks" / constraints.name
        locked.parent.mkdir()
        shutil.copyfile(constraints, locked)
        lock.parent.mkdir(parents=True, exist_ok=True)
        _run(
            _uv(),
            "pip",
            "compile",
            "--quiet",
            requirements.name,
            "--python-version",
            python_version,
            "--python-platform",
            "linux",
            "--generate-hashes",
            "--constraint",
            locked.relative_to(scratch),
            "--custom-compile-command",
            LOCK_COMMAND,
            *excluded,
            "--output-file",
            lock.resolve(),
            cwd=requirements.parent,
        )
    for provided in PROVIDED_BY_EMR:
        if re.search(rf"^{provided}==", lock.read_text(), flags=re.MULTILINE):
            raise PackagingError(
                f"{lock}: {provided} was resolved into the lock; EMR provides it, drop the requirement"
            )


def _installed(python: Path) -> dict[str, str]:
    listing = _run(_uv(), "pip", "freeze", "--python", python)
    installed: dict[str, str] = {}
    for line in listing.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            installed[normalize(name)] = version.strip()
        elif " @ " in line:
            installed[normalize(line.split(" @ ", 1)[0])] = "local"
    return installed


def _monorepo_lock(root: Path) -> Path:
    constraints = root / MONOREPO_LOCK
    if not constraints.is_file():
        raise PackagingError(f"{constraints} does not exist; create it with `{LOCK_COMMAND}`")
    return constraints


def update_lock(root: Path) -> Path:
    """Re-resolve ``services/stream-job/requirements.lock`` within the monorepo lock; returns its path."""
    root = root.resolve()
    constraints = _monorepo_lock(root)
    with tempfile.TemporaryDirectory(prefix="coattail-emr-lock-") as scratch:
        wheels = build_wheels(shipped_distributions(root), Path(scratch), constraints=constraints)
        compile_lock(wheels, root / LOCK_PATH, constraints=constraints)
    return root / LOCK_PATH


def build_archive(
    root: Path,
    output: Path,
    *,
    python: str = EMR_PYTHON,
    update_lock: bool = False,
    compress_level: int = 4,
) -> Artifacts:
    """Build ``output/stream-job-venv.tar.gz`` and ``output/emr_entry.py`` from the lock.

    ``python`` is what ``uv venv --python`` accepts (a version or an interpreter path); only
    non-uv-managed interpreters are used, as the archive links to it. ``update_lock``
    re-resolves ``services/stream-job/requirements.lock`` first.
    """
    root = root.resolve()
    output = output.resolve()
    lock = root / LOCK_PATH
    constraints = _monorepo_lock(root)
    uv = _uv()
    with tempfile.TemporaryDirectory(prefix="coattail-emr-build-") as scratch:
        build = Path(scratch)
        wheels = build_wheels(shipped_distributions(root), build / "wheels", constraints=constraints)
        if update_lock:
            compile_lock(wheels, lock, constraints=constraints)
        if not lock.is_file():
            raise PackagingError(f"{lock} does not exist; create it with `{LOCK_COMMAND}`")
        venv = build / "venv"
        _run(uv, "venv", "--quiet", "--python-preference", "only-system", "--python", python, venv)
        venv_python = venv / "bin" / "python"
        version = _run(venv_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").strip()
        if version != EMR_PYTHON:
            raise PackagingError(f"the build interpreter is Python {version}; EMR runs the job on {EMR_PYTHON}")
        # Bytecode compiled into the archive: a Python process on EMR (driver, every worker) imports
        # pandas, pyarrow and boto3 without compiling them first (``import pandas``: 0.57 s, 2.2 s from source).
        install: list[str | Path] = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv_python]
        _run(*install, "--require-hashes", "-r", lock)
        _run(*install, "--no-deps", *wheels.values())
        try:
            _run(uv, "pip", "check", "--python", venv_python)
        except PackagingError as error:
            raise PackagingError(
                f"{error}\n{lock} no longer covers the job's requirements: run `{LOCK_COMMAND}`"
            ) from None
        distributions = _installed(venv_python)
        leaked = [name for name in PROVIDED_BY_EMR if name in distributions]
        if leaked:
            raise PackagingError(f"{', '.join(leaked)} got into the archive; EMR provides them: drop the requirement")
        output.mkdir(parents=True, exist_ok=True)
        archive = output / ARCHIVE_NAME
        _run(
            uv,
            "tool",
            "run",
            "--quiet",
            "--from",
            VENV_PACK,
            "venv-pack",
            "--quiet",
            "--force",
            "--compress-level",
            str(compress_level),
            "--prefix",
            venv,
            "--output",
            archive,
        )
        interpreter = Path(os.readlink(venv_python))
    entry_point = output / ENTRY_POINT.name
    shutil.copyfile(ENTRY_POINT, entry_point)
    artifacts = Artifacts(archive, entry_point, lock, interpreter, distributions)
    log.info(
        "%s: %d distributions, %.1f MB; its python links to %s (must exist where the job runs)",
        archive,
        len(distributions),
        archive.stat().st_size / 1e6,
        interpreter,
    )
    return artifacts


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m coattail_stream_job.packaging``: build the archive; prints the artifacts' paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: here)")
    parser.add_argument("--output", type=Path, default=Path("dist"), help="output folder (default: dist)")
    parser.add_argument("--python", default=EMR_PYTHON, help=f"interpreter or version for the venv ({EMR_PYTHON})")
    parser.add_argument("--update-lock", action="store_true", help="re-resolve requirements.lock before building")
    parser.add_argument("--lock-only", action="store_true", help="re-resolve requirements.lock, build nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.lock_only:
            print(f"lock        {update_lock(args.root)}")  # noqa: T201
            return 0
        artifacts = build_archive(args.root, args.output, python=args.python, update_lock=args.update_lock)
    except PackagingError as error:
        print(f"package-emr: {error}", file=sys.stderr)  # noqa: T201
        return 2
    print(f"archive     {artifacts.archive} (sha256 {artifacts.sha256()})")  # noqa: T201
    print(f"entry point {artifacts.entry_point}")  # noqa: T201
    print(f"python      {artifacts.interpreter}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
