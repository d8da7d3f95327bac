"""Server-sent events from an httpx response, per the WHATWG event-stream rules.

Both cloud (DeepSeek / OpenAI-compatible) and Triton ``generate_stream``
answers are SSE. Comment lines (``: keep-alive``) and blank lines between
events are keep-alives and produce nothing; an event is dispatched only at the
blank line that ends it, so a stream cut in the middle of an event yields no
half-event (the caller notices the missing terminator instead).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: its ``event:`` type (default ``message``) and joined data."""

    data: str
    event: str = "message"


async def iter_sse(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    """Events from decoded lines (``response.aiter_lines()``); comments are skipped."""
    data: list[str] = []
    event = ""
    async for line in lines:
        if not line:
            if data:
                yield SseEvent("\n".join(data), event or "message")
            data, event = [], ""
            continue
        if line.startswith(":"):  # comment, e.g. ": keep-alive"
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        # "id" and "retry" mean nothing for a one-shot generation; unknown fields are ignored.
    # End of stream: an event without its blank line is incomplete and dropped.
