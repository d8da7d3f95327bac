"""A per-backend circuit breaker: stop calling a backend that keeps failing.

Closed: calls flow. After ``failures`` consecutive failures it opens and calls
are refused without touching the backend. After ``reset_s`` one probe call is
let through (half-open); its success closes the breaker, its failure re-opens
it for another ``reset_s``. Single-threaded asyncio code, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures; see the module docstring for the states."""

    def __init__(
        self,
        failures: int = 5,
        reset_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failures < 1 or reset_s <= 0:
            raise ValueError("failures must be >= 1 and reset_s > 0")
        self.threshold = failures
        self.reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one probe at a time."""
        if self._opened_at is None:
            return True
        if self._probing or self._clock() - self._opened_at < self.reset_s:
            return False
        self._probing = True
        self._changed(BreakerState.HALF_OPEN)
        return True

    def success(self) -> None:
        self._failures = 0
        was_closed = self._opened_at is None
        self._opened_at = None
        self._probing = False
        if not was_closed:
            self._changed(BreakerState.CLOSED)

    def failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self.threshold:
            self._opened_at = self._clock()
            self._probing = False
            self._changed(BreakerState.OPEN)

    def _changed(self, state: BreakerState) -> None:
        """Tell the observer (metrics) about a transition; it must not break routing."""
        if self._on_change is not None:
            self._on_change(state)
