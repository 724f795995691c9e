"""A command under test as a child process: started, read from, stopped by a signal.

Runs in the pytest process. ``running`` starts a command with text pipes for stdout and
stderr and kills it if it still runs when the block ends (a failed assertion included);
``stop`` sends a signal and returns the exit code and stderr; ``console_script`` is the path
of an installed command beside this interpreter (the venv's ``bin``).

Example::

    with running([str(console_script("coattail-devstack")), "localstack"]) as process:
        first = process.stdout.readline()
        code, errors = stop(process, signal.SIGTERM)
    assert code == 0, errors
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def console_script(name: str) -> Path:
    """The console script ``name`` of this interpreter's environment (beside ``sys.executable``)."""
    return Path(sys.executable).with_name(name)


@contextmanager
def running(command: Sequence[str]) -> Iterator[subprocess.Popen[str]]:
    """``command`` started with text pipes for stdout and stderr; killed at the end of the block if still running."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603 - a test kit running the command under test
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def stop(process: subprocess.Popen[str], number: signal.Signals, timeout_s: float = 30.0) -> tuple[int, str]:
    """Send ``number`` to ``process``, wait at most ``timeout_s`` for it to end; its exit code and stderr."""
    process.send_signal(number)
    _, errors = process.communicate(timeout=timeout_s)
    return process.returncode, errors
