"""Test matrix of the monorepo: one tagged session per distribution, plus lint and typecheck.

Each distribution's tests run in a venv holding only that distribution, installed from a
built wheel (non-editable, so a missing entry point fails), its declared dependencies and
its ``test`` extra. Sibling distributions are resolved from a local wheelhouse built in
the same run. PySpark lines come from ``[tool.coattail] spark = [...]`` in each
distribution's pyproject.toml.

    nox -l                       # every session
    nox -t coattail-framework    # one distribution's sessions
    nox                          # everything the README's test command runs
"""

from __future__ import annotations

import os
from pathlib import Path

import nox
import tomllib

ROOT = Path(__file__).parent
WHEELHOUSE = ROOT / ".nox" / "_wheelhouse"
PYTHON = "3.11"

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

# Pins a PySpark line needs besides PySpark itself (see ../shared/DESIGN.md).
SPARK_PINS: dict[str, list[str]] = {
    "3.5": ["numpy<2", "pyarrow>=15,<20", "pandas>=2.2,<2.3"],
    "4": ["pandas>=2.2,<3", "pyarrow>=15,<26"],
}


def _distributions() -> dict[str, Path]:
    found = {}
    for pyproject in sorted([*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]):
        found[tomllib.loads(pyproject.read_text())["project"]["name"]] = pyproject.parent
    return found


DISTRIBUTIONS = _distributions()


def _metadata(dist: str) -> dict:
    return tomllib.loads((DISTRIBUTIONS[dist] / "pyproject.toml").read_text())


def _local_requirements(dist: str) -> list[str]:
    """The sibling distributions ``dist`` needs, transitively (declared dependencies only)."""
    seen: list[str] = []
    pending = [dist]
    while pending:
        current = pending.pop()
        project = _metadata(current)["project"]
        requirements = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            requirements.extend(extra)
        for requirement in requirements:
            name = requirement.split(";")[0].split("[")[0]
            for separator in "<>=!~ ":
                name = name.split(separator)[0]
            if name in DISTRIBUTIONS and name not in seen and name != dist:
                seen.append(name)
                pending.append(name)
    return seen


def _build_wheels(session: nox.Session, dists: list[str]) -> dict[str, Path]:
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    wheels = {}
    for dist in dists:
        out = WHEELHOUSE / dist
        session.run("uv", "build", "--quiet", "--wheel", "--out-dir", str(out), str(DISTRIBUTIONS[dist]), external=True)
        version = _metadata(dist)["project"]["version"]
        (wheel,) = out.glob(f"{dist.replace('-', '_')}-{version}-*.whl")
        wheels[dist] = wheel
    return wheels


def _pyspark_wheel(session: nox.Session, spark: str) -> list[str]:
    """``--find-links`` to a PySpark ``spark`` wheel, built once into the wheelhouse.

    PyPI ships PySpark as an sdist only: left to uv, every session would build it again
    (about 20 s and 2 GB of uv cache per session). pip (run by uv) builds it once per run.
    """
    out = WHEELHOUSE / "pyspark" / spark
    if not any(out.glob(f"pyspark-{spark}-*.whl")):
        session.run(
            "uv", "tool", "run", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
            "--wheel-dir", str(out), f"pyspark=={spark}", external=True,
        )  # fmt: skip
    return ["--find-links", str(out)]


def _spark_pins(session: nox.Session, spark: str) -> list[str]:
    line = "3.5" if spark.startswith("3.") else "4"
    return [f"pyspark=={spark}", *SPARK_PINS[line], *_pyspark_wheel(session, spark)]


def _pulls_pyspark(dist: str, extras: list[str]) -> bool:
    """Whether ``dist`` with ``extras`` requires PySpark directly or through a sibling's ``spark`` extra."""
    project = _metadata(dist)["project"]
    optional = project.get("optional-dependencies", {})
    requirements = [*project.get("dependencies", []), *(r for extra in extras for r in optional.get(extra, []))]
    return any(r.startswith("pyspark") or "[spark]" in r for r in requirements)


def _test_session(dist: str, spark: str | None) -> None:
    def run(session: nox.Session) -> None:
        locals_ = _local_requirements(dist)
        wheels = _build_wheels(session, [dist, *locals_])
        chosen = [e for e in ("spark", "test") if e in _metadata(dist)["project"].get("optional-dependencies", {})]
        extras = ",".join(chosen)
        line = spark
        if line is None and _pulls_pyspark(dist, chosen):
            # Tests that need PySpark without testing on its lines (the API's tests write through
            # the framework's sinks): the pipeline's line, from the wheelhouse, not an sdist build.
            line = PIPELINE_SPARK
        target = f"{dist}[{extras}] @ {wheels[dist].as_uri()}" if extras else str(wheels[dist])
        find_links = [arg for d in locals_ for arg in ("--find-links", str(wheels[d].parent))]
        # Local wheels keep their version between edits: never take them from uv's cache.
        fresh = [arg for d in [dist, *locals_] for arg in ("--reinstall-package", d, "--refresh-package", d)]
        session.install(target, *find_links, *fresh, *(_spark_pins(session, line) if line else []))
        env = {
            "PYSPARK_PYTHON": str(Path(session.bin) / "python"),
            "PYSPARK_DRIVER_PYTHON": str(Path(session.bin) / "python"),
            "SPARK_LOCAL_IP": "127.0.0.1",
        }
        tests = DISTRIBUTIONS[dist] / "tests"
        session.chdir(session.create_tmp())
        session.run(
            "pytest", "--import-mode=importlib", "-p", "no:cacheprovider", str(tests), *session.posargs, env=env
        )

    run.__name__ = f"tests-{dist}" + (f"-spark{spark}" if spark else "")
    nox.session(python=PYTHON, name=run.__name__, tags=[dist, "tests"])(run)


for _dist in DISTRIBUTIONS:
    _sparks = _metadata(_dist).get("tool", {}).get("coattail", {}).get("spark", [])
    for _spark in _sparks or [None]:
        _test_session(_dist, _spark)


@nox.session(python=PYTHON, tags=["lint"])
def lint(session: nox.Session) -> None:
    """ruff over every distribution, the noxfile and the top-level tests."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON, tags=["typecheck"])
def typecheck(session: nox.Session) -> None:
    """mypy (strict settings in mypy.ini) over every distribution's sources."""
    session.install(
        "mypy>=1.11", "pytest>=8", "types-PyYAML", "boto3-stubs[essential,kinesis,ssm,cloudwatch,emr-serverless]"
    )
    session.install(*(f"-e{path}" for path in DISTRIBUTIONS.values()), *_spark_pins(session, PIPELINE_SPARK))
    sources = [str(path / "src") for path in DISTRIBUTIONS.values()]
    session.run("mypy", *sources, env={"MYPYPATH": os.pathsep.join(sources)})


# -- The whole pipeline on one machine: replay, demo, benchmarks, cross-package tests -----------
# They install the stream job's built wheel with its ``spark`` and ``replay`` extras (the producer
# and connectors it replays through, moto as the local AWS) on the PySpark floor, EMR's 4.0.2.

PIPELINE_SPARK = "4.0.2"


def _install_pipeline(session: nox.Session, extras: str = "spark,replay", *packages: str) -> dict[str, str]:
    """Install coattail-stream-job[extras] from its built wheel and siblings; returns the Spark env."""
    dist = "coattail-stream-job"
    locals_ = _local_requirements(dist)
    wheels = _build_wheels(session, [dist, *locals_])
    find_links = [arg for d in locals_ for arg in ("--find-links", str(wheels[d].parent))]
    pins = _spark_pins(session, PIPELINE_SPARK)
    session.install(f"{dist}[{extras}] @ {wheels[dist].as_uri()}", *find_links, *pins, *packages)
    python = str(Path(session.bin) / "python")
    return {"PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python, "SPARK_LOCAL_IP": "127.0.0.1"}


@nox.session(python=PYTHON, tags=["pipeline"], default=False)
def replay(session: nox.Session) -> None:
    """Replay recordings through the whole pipeline: ``nox -s replay -- RECORDING... --out DIR [--config FILE]``."""
    if not session.posargs:
        session.error(
            "pass recordings and --out, e.g. "
            "nox -s replay -- binance:tests/data/binance/ws/spot_btcusdt_20240808.gz --out out/"
        )
    env = _install_pipeline(session)
    session.run("python", "-m", "coattail_stream_job.replay", "replay", *session.posargs, env=env)


@nox.session(python=PYTHON, tags=["pipeline"], default=False)
def demo(session: nox.Session) -> None:
    """The bundled recordings through the whole pipeline: summary table and demo-out/report.html."""
    env = _install_pipeline(session)
    session.run("python", "-m", "coattail_stream_job.replay", "demo", *session.posargs, env=env)


@nox.session(python=PYTHON, tags=["pipeline"], default=False)
def bench(session: nox.Session) -> None:
    """Every benchmark in tests/bench, same run, same machine: writes docs/BENCHMARKS.md."""
    env = _install_pipeline(session)
    session.run("python", "tests/bench/run_all.py", "--out", "docs/BENCHMARKS.md", *session.posargs, env=env)


@nox.session(python=PYTHON, name="tests-integration", tags=["integration", "tests"])
def tests_integration(session: nox.Session) -> None:
    """Cross-package tests (tests/e2e) on the built wheels: fault tolerance, the EMR archive built and run."""
    env = _install_pipeline(session, "spark,replay,test")
    tests = ROOT / "tests" / "e2e"
    session.chdir(session.create_tmp())
    session.run("pytest", "--import-mode=importlib", "-p", "no:cacheprovider", str(tests), *session.posargs, env=env)


@nox.session(name="package-emr", python=PYTHON, tags=["package"])
def package_emr(session: nox.Session) -> None:
    """The stream job's EMR Serverless archive: dist/stream-job-venv.tar.gz and dist/emr_entry.py.

    Installs services/stream-job/requirements.lock (hashes) plus wheels of the stream job and
    the plugins it pins into a Python 3.11 venv and packs it with venv-pack (PySpark excluded:
    EMR provides it). ``-- --update-lock`` re-resolves the lock first; ``-- --python PATH``
    picks the interpreter the archive's python links to (see docs/DEPLOY.md).
    """
    script = DISTRIBUTIONS["coattail-stream-job"] / "src" / "coattail_stream_job" / "packaging.py"
    session.run("python", str(script), "--root", str(ROOT), "--output", str(ROOT / "dist"), *session.posargs)
