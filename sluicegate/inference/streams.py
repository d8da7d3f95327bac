"""A backend's streaming answer: text deltas now, the full :class:`Generation` after.

``backend.stream(request)`` returns a :class:`GenerationStream`. Iterate it for
the text as it is produced; once iteration has finished, ``.generation`` holds
the same answer as ``generate()`` would have returned (text, usage, finish
reason), so a caller can audit and account for a streamed call too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable

from sluicegate.core.interfaces import Generation

_OPEN, _CLOSE = "<think>", "</think>"


class GenerationStream(AsyncIterator[str]):
    """Text deltas from a backend; ``generation`` is set when the stream ends cleanly."""

    def __init__(self, produce: Callable[[GenerationStream], AsyncGenerator[str, None]]) -> None:
        self.generation: Generation | None = None
        self._gen = produce(self)

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> str:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop early: closes the connection and cancels the generation server-side."""
        await self._gen.aclose()


class ThinkFilter:
    """Drops ``<think>…</think>`` from streamed text, even with tags split across deltas.

    Whitespace right after a closed block is dropped too, as :func:`strip_think`
    does for whole answers.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._thinking = False
        self._after_block = False

    def feed(self, delta: str) -> str:
        """The part of ``delta`` that is answer text and safe to emit now."""
        text = self._pending + delta
        self._pending = ""
        out: list[str] = []
        while text:
            tag = _CLOSE if self._thinking else _OPEN
            index = text.lower().find(tag)
            if index == -1:
                keep = _partial_suffix(text, tag)
                body, self._pending = text[: len(text) - keep], text[len(text) - keep :]
                if not self._thinking:
                    out.append(self._emit(body))
                break
            if not self._thinking:
                out.append(self._emit(text[:index]))
            self._thinking = not self._thinking
            self._after_block = not self._thinking
            text = text[index + len(tag) :]
        return "".join(out)

    def flush(self) -> str:
        """Text held back at the end (a prefix of a tag that never completed)."""
        text, self._pending = self._pending, ""
        return "" if self._thinking else self._emit(text)

    def _emit(self, text: str) -> str:
        if self._after_block:
            text = text.lstrip()
            if text:
                self._after_block = False
        return text


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that could start ``tag``."""
    lowered = text.lower()
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(lowered[-size:]):
            return size
    return 0
