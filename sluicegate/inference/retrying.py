"""The retry policy for remote model calls (tenacity), shared by cloud backends.

Retried within one call: 429, 500, 502, 503, 504, connect/read timeouts and
truncated streams, with exponential backoff plus jitter, or exactly the wait a
``Retry-After`` header asks for. Never retried: 400, 401, 402, 422 and every
other client error — repeating them cannot help and may cost money. The whole
call stays inside one deadline, so a server asking for a wait longer than the
time left ends the call at once (the pipeline retries the job later).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class Retryable(Exception):
    """One attempt failed in a way another attempt may fix.

    ``retry_after`` is the server's requested wait in seconds, when it sent one.
    The message must never contain request text.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def is_retryable_status(status: int) -> bool:
    """True for the HTTP statuses that are worth another attempt."""
    return status in RETRYABLE_STATUS


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = datetime.now(UTC).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class _WaitHonouringRetryAfter(wait_base):
    """The server's ``Retry-After`` when given, else exponential backoff with jitter."""

    def __init__(self, backoff_s: float, backoff_max_s: float) -> None:
        self._backoff = wait_exponential_jitter(
            initial=backoff_s, max=backoff_max_s, exp_base=2, jitter=backoff_s
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(retry_state))


class _StopBeforeDeadline(stop_base):
    """Stop when the next wait would end past the call's deadline (monotonic clock)."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() + retry_state.upcoming_sleep >= self._deadline


def retry_policy(
    *,
    max_retries: int,
    backoff_s: float,
    backoff_max_s: float,
    deadline: float,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """An ``AsyncRetrying`` for one call: retries :class:`Retryable` only, then re-raises it."""
    return AsyncRetrying(
        retry=retry_if_exception_type(Retryable),
        wait=_WaitHonouringRetryAfter(backoff_s, backoff_max_s),
        stop=stop_after_attempt(max_retries + 1) | _StopBeforeDeadline(deadline),
        before_sleep=before_sleep,
        reraise=True,
    )
