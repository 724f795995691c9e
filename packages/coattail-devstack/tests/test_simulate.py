"""``coattail-devstack simulate``: a connector's simulator, found by entry point, serving a bundled recording."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp
import pytest

from coattail_devstack.simulate import SIMULATOR_GROUP
from coattail_devstack.testing.commands import console_script, running, stop
from coattail_devstack.testing.venv import monorepo_root
from coattail_framework.recordings import read_recording

DEVSTACK = console_script("coattail-devstack")
RECORDING = monorepo_root(Path(__file__)) / "tests/data/binance/ws/spot_btcusdt_20240808.gz"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def first_recorded(stream: str) -> dict[str, Any]:
    """The payload of the recording's first frame on ``stream`` (as Binance's ``/ws/<stream>`` sends it)."""
    for message in read_recording(RECORDING):
        frame = json.loads(message.payload)
        if frame.get("stream") == stream:
            data: dict[str, Any] = frame["data"]
            return data
    raise AssertionError(f"{RECORDING} has no frame on {stream}")


async def first_frame(url: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws,
    ):
        message = await asyncio.wait_for(ws.receive(), timeout=30)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        frame: dict[str, Any] = json.loads(message.data)
        return frame


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_simulate_serves_the_recording_on_loopback_and_stops_on_a_signal(number: signal.Signals) -> None:
    port = free_port()
    command = [str(DEVSTACK), "simulate", "binance", "--recording", str(RECORDING), "--port", str(port)]
    with running(command) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.communicate(timeout=30)[1]
        announced = json.loads(line)
        settings = announced["connector_settings"]
        base = urlparse(settings["base_url"])
        assert (announced["exchange"], base.scheme, base.hostname, base.port) == ("binance", "ws", "127.0.0.1", port)
        stream = f"{settings['symbols'][0].lower()}@{settings['stream']}"
        assert stream == "btcusdt@trade"

        frame = asyncio.run(first_frame(f"{settings['base_url']}/ws/{stream}"))

        assert frame == first_recorded(stream)
        code, errors = stop(process, number)
    assert code == 0, errors


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["no-such-venue", "--recording", str(RECORDING), "--port", "0"],
            f"no exchange simulator 'no-such-venue' in entry points {SIMULATOR_GROUP}",
        ),
        (
            ["binance", "--recording", str(RECORDING), "--port", "0", "--host", "0.0.0.0"],  # noqa: S104 - refused, never bound,
            "--host must be an IPv4 loopback address",
        ),
        (["binance", "--recording", "missing.gz", "--port", "0"], "--recording missing.gz: no such file"),
    ],
    ids=["unknown-exchange", "not-loopback", "missing-recording"],
)
def test_simulate_refuses_bad_arguments_naming_them(arguments: list[str], message: str) -> None:
    done = subprocess.run(
        [str(DEVSTACK), "simulate", *arguments], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 2, done.stderr
    assert message in done.stderr
