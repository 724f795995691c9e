"""The ``coattail-devstack`` command: ``localstack`` and ``simulate``.

Runs in its own process on a developer's machine. A ``CoattailError`` (a bad argument, an
exchange without a simulator) is printed on stderr and exits 2.

    coattail-devstack localstack --root .local-stack
    coattail-devstack simulate binance --recording FILE --port 9443
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from coattail_devstack import localstack, simulate
from coattail_framework.errors import CoattailError

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "localstack": (localstack.DESCRIPTION, localstack.add_arguments, localstack.run),
    "simulate": (simulate.DESCRIPTION, simulate.add_arguments, simulate.run),
}


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per entry of ``COMMANDS``."""
    top = argparse.ArgumentParser(prog="coattail-devstack", description="Coat Tail Capital's local stack.")
    commands = top.add_subparsers(dest="command", required=True)
    for name, (description, add_arguments, _) in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=description, description=description))
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; its exit code (2 on a ``CoattailError``)."""
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except CoattailError as error:
        print(f"coattail-devstack {args.command}: {error}", file=sys.stderr)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main())
