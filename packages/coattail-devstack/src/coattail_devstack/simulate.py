"""``coattail-devstack simulate <exchange>``: a connector's exchange simulator serving a recording.

Runs in its own process, on one asyncio loop, until SIGINT or SIGTERM (then exit code 0).
The simulator is found through the ``coattail.simulators`` entry points, which each
connector distribution that ships one declares (name: the exchange, value: its
``ExchangeSimulator`` subclass), so this module names no connector. It binds a loopback
address only (default 127.0.0.1). Once it listens it prints one JSON line on stdout: the
exchange and ``connector_settings`` (the URLs that point the unchanged
connector, the producer or ``load-history`` at it).

Example (a shell)::

    coattail-devstack simulate binance --recording tests/data/binance/ws/spot_btcusdt_20240808.gz --port 9443
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import ipaddress
import json
import signal
import sys
from pathlib import Path

from coattail_framework.errors import CoattailError
from coattail_framework.recordings import read_recording
from coattail_framework.simulator import ExchangeSimulator

SIMULATOR_GROUP = "coattail.simulators"
"""Entry point group of exchange simulators: ``<exchange> = "<module>:<ExchangeSimulator subclass>"``."""

DESCRIPTION = "Serve a recording through an exchange's local simulator on 127.0.0.1 until Ctrl-C or SIGTERM."


def simulator_class(exchange: str) -> type[ExchangeSimulator]:
    """The simulator class the ``coattail.simulators`` entry point ``exchange`` names; CoattailError if none."""
    points = importlib.metadata.entry_points(group=SIMULATOR_GROUP)
    found = [point for point in points if point.name == exchange]
    if not found:
        known = ", ".join(sorted(point.name for point in points)) or "none"
        raise CoattailError(
            f"no exchange simulator {exchange!r} in entry points {SIMULATOR_GROUP} (installed: {known}); "
            "install the connector distribution that ships it"
        )
    loaded = found[0].load()
    if not (isinstance(loaded, type) and issubclass(loaded, ExchangeSimulator)):
        raise CoattailError(f"entry point {SIMULATOR_GROUP}:{exchange} = {found[0].value} is not an ExchangeSimulator")
    return loaded


def loopback_host(host: str) -> str:
    """``host`` if it is an IPv4 loopback address (127.0.0.0/8); CoattailError otherwise."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if not isinstance(address, ipaddress.IPv4Address) or not address.is_loopback:
        raise CoattailError(f"--host must be an IPv4 loopback address such as 127.0.0.1, got {host!r}")
    return host


async def serve(exchange: str, simulator: ExchangeSimulator, recording: Path, host: str, port: int) -> None:
    """Load ``recording`` into ``simulator``, listen on ``host:port``, announce, serve until SIGINT/SIGTERM."""
    simulator.load(read_recording(recording))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    await simulator.start(host, port)
    try:
        announcement = {"exchange": exchange, "connector_settings": simulator.connector_settings()}
        sys.stdout.write(json.dumps(announcement) + "\n")
        sys.stdout.flush()
        await stopping.wait()
    finally:
        await simulator.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments on ``parser``."""
    parser.add_argument("exchange", help=f"the simulator's name in entry points {SIMULATOR_GROUP} (e.g. binance)")
    parser.add_argument("--recording", type=Path, required=True, help="a recorded websocket session (.gz or text)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")


def run(args: argparse.Namespace) -> int:
    """Serve ``args.recording`` through the ``args.exchange`` simulator until interrupted; 0."""
    host = loopback_host(args.host)
    if not args.recording.is_file():
        raise CoattailError(f"--recording {args.recording}: no such file")
    simulator = simulator_class(args.exchange)()
    asyncio.run(serve(args.exchange, simulator, args.recording, host, args.port))
    return 0
