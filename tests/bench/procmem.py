"""Peak memory of this process, its Spark JVM and the JVM's Python workers, sampled from /proc.

Runs in the benchmark process (the Spark driver) on Linux. ``MemorySampler`` reads
``/proc/<pid>/smaps_rollup`` (Pss: the process's private pages plus its share of pages it
shares, so the workers a daemon forks are not counted once per fork; VmRSS from
``/proc/<pid>/status`` where smaps_rollup is unreadable) of the process tree under the calling
process every ``interval`` seconds from a thread: the driver is this Python process, the JVM
is its topmost ``java`` descendant (a child of the JVM caught between fork and exec still
shows ``java`` and the JVM's pages: it is neither counted as a JVM nor as a worker), workers
are Python descendants of the JVM (``pyspark.daemon`` and the workers it forks, Python data
source processes). Peaks are of the sum over each group at one sample, in MiB; ``total``
is the peak of the three groups' sum at one sample.

    with MemorySampler() as memory:
        ...
    memory.peaks()  # {"driver_python_mib": ..., "jvm_mib": ..., "python_workers_mib": ...}
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

PROC = Path("/proc")


def _rss_kib(pid: int) -> int:
    """The process's proportional set size (KiB), else its resident set size, else 0 (it ended)."""
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            for line in (PROC / str(pid) / name).read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return 0


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found, pending = [], list(tree.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(tree.get(child, []))
    return found


def spark_processes(root: int | None = None) -> tuple[list[int], list[int]]:
    """The Spark JVMs under ``root`` (default: this process) and the Python workers under them."""
    root = root or os.getpid()
    tree = _children()
    java = [pid for pid in _descendants(root, tree) if "java" in _cmdline(pid).split(" ", 1)[0]]
    forks = {pid for jvm in java for pid in _descendants(jvm, tree)}  # a JVM's child before exec shows java
    jvms = [pid for pid in java if pid not in forks]
    workers = [pid for jvm in jvms for pid in _descendants(jvm, tree) if "python" in _cmdline(pid).split(" ", 1)[0]]
    return jvms, workers


def sample(root: int | None = None) -> dict[str, int]:
    """One sample of the tree under ``root`` (default: this process): KiB per group."""
    root = root or os.getpid()
    jvms, workers = spark_processes(root)
    groups = {
        "driver_python": _rss_kib(root),
        "jvm": sum(_rss_kib(pid) for pid in jvms),
        "python_workers": sum(_rss_kib(pid) for pid in workers),
    }
    return {**groups, "total": sum(groups.values()), "python_worker_processes": len(workers)}


class MemorySampler:
    """Samples ``sample()`` from a thread until closed; keeps the peak of each group."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self._peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, value in sample().items():
                self._peak[key] = max(self._peak.get(key, 0), value)
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self) -> dict[str, float]:
        """Peak MiB per group (and the most Python worker processes seen at once)."""
        return {
            "driver_python_mib": round(self._peak.get("driver_python", 0) / 1024, 1),
            "jvm_mib": round(self._peak.get("jvm", 0) / 1024, 1),
            "python_workers_mib": round(self._peak.get("python_workers", 0) / 1024, 1),
            "total_mib": round(self._peak.get("total", 0) / 1024, 1),
            "python_worker_processes": self._peak.get("python_worker_processes", 0),
        }
