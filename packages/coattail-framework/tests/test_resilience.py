"""The one retry, backoff and wait policy (coattail_framework.resilience), on a fake clock: exact calls and delays."""

from __future__ import annotations

import asyncio
import random

import pytest

from coattail_framework.resilience import Backoff, RetryExhaustedError, retry, retry_async, wait_until, wait_until_async


class FakeTime:
    """A monotonic clock that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def sleep_async(self, seconds: float) -> None:
        self.sleep(seconds)


def failing(times: int, error: Exception, result: str = "ok") -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return result

    return calls, call


def test_backoff_grows_to_the_cap_and_resets() -> None:
    policy = Backoff(initial=0.5, cap=3.0, jitter=0.0)
    assert policy.delays(5) == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.attempt == 5
    policy.reset()
    assert policy.next_delay() == 0.5


def test_full_jitter_stays_within_zero_and_the_ceiling_and_spreads() -> None:
    policy = Backoff(initial=1.0, cap=8.0, rng=random.Random(20261206))
    delays = [policy.next_delay() for _ in range(4)]
    ceilings = [1.0, 2.0, 4.0, 8.0]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    many = Backoff(initial=1.0, cap=1.0, rng=random.Random(3)).delays(2000)
    assert min(many) < 0.01
    assert max(many) > 0.99
    partial = Backoff(initial=1.0, cap=1.0, jitter=0.25, rng=random.Random(3)).delays(500)
    assert all(0.75 <= d <= 1.0 for d in partial)
    assert min(partial) < 0.76


def test_huge_attempt_counts_do_not_overflow() -> None:
    policy = Backoff(initial=1.0, cap=30.0, multiplier=10.0, jitter=0.0)
    assert policy.ceiling(10_000) == 30.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0.0, "cap": 1.0},
        {"initial": 1.0, "cap": 0.0},
        {"initial": 1.0, "cap": 1.0, "multiplier": 0.5},
        {"initial": 1.0, "cap": 1.0, "jitter": 1.5},
    ],
)
def test_backoff_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(**kwargs)


def test_retry_returns_after_transient_failures_with_the_backoff_delays() -> None:
    fake = FakeTime()
    calls, call = failing(2, ConnectionError("reset"))
    seen: list[tuple[int, str, float]] = []
    result = retry(
        call,  # type: ignore[arg-type]
        what="GET /api/v3/aggTrades",
        retryable=lambda e: isinstance(e, ConnectionError),
        backoff=Backoff(initial=1.0, cap=10.0, jitter=0.0),
        max_attempts=5,
        on_retry=lambda n, e, d: seen.append((n, str(e), d)),
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert result == "ok"
    assert len(calls) == 3
    assert fake.sleeps == [1.0, 2.0]
    assert seen == [(1, "reset", 1.0), (2, "reset", 2.0)]


def test_retry_stops_after_max_attempts_naming_what_failed() -> None:
    fake = FakeTime()
    calls, call = failing(99, TimeoutError("read timed out"))
    with pytest.raises(RetryExhaustedError) as caught:
        retry(
            call,  # type: ignore[arg-type]
            what="commit coattail.raw_trades",
            retryable=lambda e: isinstance(e, TimeoutError),
            backoff=Backoff(initial=1.0, cap=10.0, jitter=0.0),
            max_attempts=4,
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert len(calls) == 4
    assert fake.sleeps == [1.0, 2.0, 4.0]
    error = caught.value
    assert (error.what, error.attempts, error.elapsed_s) == ("commit coattail.raw_trades", 4, 7.0)
    assert isinstance(error.__cause__, TimeoutError)
    assert str(error) == (
        "commit coattail.raw_trades failed 4 time(s) in 7.0 s (max_attempts=4); "
        "last error: TimeoutError: read timed out"
    )


def test_retry_does_not_start_a_wait_that_ends_past_the_deadline() -> None:
    fake = FakeTime()
    calls, call = failing(99, ConnectionError("refused"))
    with pytest.raises(RetryExhaustedError, match=r"failed 3 time\(s\) in 3.0 s \(deadline 5 s\)"):
        retry(
            call,  # type: ignore[arg-type]
            what="PutRecords",
            retryable=lambda e: True,
            backoff=Backoff(initial=1.0, cap=10.0, jitter=0.0),
            deadline_s=5.0,
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert len(calls) == 3  # at 0 s, 1 s, 3 s; the next wait (4 s) would end at 7 s
    assert fake.now - 100.0 == 3.0


def test_a_non_retryable_error_is_raised_as_it_is_after_one_call() -> None:
    fake = FakeTime()
    calls, call = failing(99, PermissionError("AccessDenied"))
    with pytest.raises(PermissionError, match="AccessDenied"):
        retry(
            call,  # type: ignore[arg-type]
            what="GetRecords",
            retryable=lambda e: isinstance(e, ConnectionError),
            backoff=Backoff(initial=1.0, cap=1.0),
            max_attempts=10,
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert len(calls) == 1
    assert fake.sleeps == []


def test_a_retry_without_any_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="unbounded"):
        retry(lambda: 1, what="x", retryable=lambda e: True, backoff=Backoff(initial=1, cap=1))


def test_retry_async_retries_coroutines_and_never_retries_cancellation() -> None:
    fake = FakeTime()
    attempts: list[int] = []

    async def flaky() -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionResetError("peer")
        return 7

    async def cancelled() -> int:
        attempts.append(1)
        raise asyncio.CancelledError

    async def main() -> int:
        value = await retry_async(
            flaky,
            what="ws connect",
            retryable=lambda e: isinstance(e, OSError),
            backoff=Backoff(initial=0.5, cap=4.0, jitter=0.0),
            max_attempts=3,
            sleep=fake.sleep_async,
            clock=fake.clock,
        )
        attempts.clear()
        with pytest.raises(asyncio.CancelledError):
            await retry_async(
                cancelled, what="x", retryable=lambda e: True, backoff=Backoff(initial=1, cap=1), max_attempts=5
            )
        assert attempts == [1]
        return value

    assert asyncio.run(main()) == 7
    assert fake.sleeps == [0.5, 1.0]


def test_wait_until_polls_until_true_or_the_timeout() -> None:
    fake = FakeTime()
    ready_at = fake.now + 0.35
    assert wait_until(lambda: fake.now >= ready_at, 1.0, interval_s=0.1, sleep=fake.sleep, clock=fake.clock)
    assert round(fake.now - 100.0, 6) == 0.4
    fake = FakeTime()
    assert not wait_until(lambda: False, 0.25, interval_s=0.1, sleep=fake.sleep, clock=fake.clock)
    assert [round(s, 6) for s in fake.sleeps] == [0.1, 0.1, 0.05]
    assert wait_until(lambda: True, 0.0)


def test_wait_until_async_lets_other_tasks_run() -> None:
    async def main() -> bool:
        flag: list[bool] = []

        async def setter() -> None:
            await asyncio.sleep(0.02)
            flag.append(True)

        task = asyncio.create_task(setter())
        held = await wait_until_async(lambda: bool(flag), 2.0, interval_s=0.005)
        await task
        return held

    assert asyncio.run(main())
    assert not asyncio.run(wait_until_async(lambda: False, 0.03))
