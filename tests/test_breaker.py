"""Circuit breaker states on a controlled clock."""

from __future__ import annotations

import pytest

from sluicegate.inference.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_consecutive_failures_only() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, reset_s=10, clock=clock)
    breaker.failure()
    breaker.failure()
    breaker.success()  # a success resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.state == BreakerState.CLOSED and breaker.allow()
    breaker.failure()
    assert breaker.state == BreakerState.OPEN
    assert breaker.allow() is False


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_s=10, clock=clock)
    breaker.failure()
    clock.now += 9.9
    assert breaker.allow() is False
    clock.now += 0.1
    assert breaker.state == BreakerState.HALF_OPEN
    assert breaker.allow() is True  # the probe
    assert breaker.allow() is False  # nobody else while it runs
    breaker.success()
    assert breaker.state == BreakerState.CLOSED and breaker.allow()


def test_failed_probe_reopens_for_another_reset_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, reset_s=5, clock=clock)
    breaker.failure()
    breaker.failure()
    clock.now += 5
    assert breaker.allow()
    breaker.failure()  # one failed probe suffices, whatever the threshold
    assert breaker.state == BreakerState.OPEN
    clock.now += 4.9
    assert breaker.allow() is False
    clock.now += 0.1
    assert breaker.allow() is True


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="failures"):
        CircuitBreaker(failures=0)


def test_transitions_are_reported_once_each() -> None:
    clock = Clock()
    seen: list[BreakerState] = []
    breaker = CircuitBreaker(failures=2, reset_s=5, clock=clock, on_change=seen.append)
    breaker.success()
    breaker.failure()
    assert seen == []
    breaker.failure()
    breaker.failure()  # still open: re-opened, reported again (its timer restarted)
    clock.now += 5
    assert breaker.allow()
    breaker.success()
    breaker.success()
    opened, probing, closed = BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED
    assert seen == [opened, opened, probing, closed]
