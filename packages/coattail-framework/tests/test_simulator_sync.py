"""The simulators' clock sync (coattail_framework.simulator.ReadSync, sync_clients): who is pinged and waited for."""

from __future__ import annotations

import asyncio
import time

from coattail_framework.simulator import ReadSync, sync_clients


def test_a_reader_that_answers_is_waited_for_and_a_silent_one_only_once() -> None:
    async def main() -> tuple[list[bytes], list[bytes], float, float]:
        quick, silent = ReadSync(), ReadSync()
        quick_pings: list[bytes] = []
        silent_pings: list[bytes] = []

        async def quick_ping(payload: bytes) -> None:
            quick_pings.append(payload)
            asyncio.get_running_loop().call_later(0.02, quick.answered, payload)

        async def silent_ping(payload: bytes) -> None:
            silent_pings.append(payload)

        started = time.monotonic()
        await sync_clients([(quick, quick_ping), (silent, silent_ping)], b"clock-sync 1", timeout_s=0.2)
        first = time.monotonic() - started
        started = time.monotonic()
        await sync_clients([(quick, quick_ping), (silent, silent_ping)], b"clock-sync 2", timeout_s=5.0)
        second = time.monotonic() - started
        return quick_pings, silent_pings, first, second

    quick_pings, silent_pings, first, second = asyncio.run(main())
    assert quick_pings == [b"clock-sync 1", b"clock-sync 2"]
    assert silent_pings == [b"clock-sync 1"]  # still behind: neither pinged nor waited for again
    assert first >= 0.19  # waited the whole timeout (0.2 s) for the silent reader
    assert second < 2.5  # only for the quick one: waiting for the silent one would take the 5 s timeout


def test_only_the_pending_payload_answers_and_a_leaving_client_releases_the_wait() -> None:
    sync = ReadSync()
    assert sync.begin(b"clock-sync 7")
    assert not sync.begin(b"clock-sync 8")
    assert not sync.answered(b"someone else's pong")
    assert sync.answered(b"clock-sync 7")
    assert sync.payload is None

    async def leaves() -> bool:
        other = ReadSync()
        other.begin(b"clock-sync 9")
        asyncio.get_running_loop().call_later(0.01, other.release)
        return await other.caught_up(5.0)

    assert asyncio.run(leaves())
