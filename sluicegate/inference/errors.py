"""Describing a remote failure safely: short, and never repeating request text."""

from __future__ import annotations

from collections.abc import Iterable

MAX_REASON_CHARS = 200
_WINDOW = 24  # a quoted piece of a long input line is caught by its windows
WITHHELD = "[server message withheld: it repeated request text]"


def safe_reason(message: str, texts: Iterable[str]) -> str:
    """The first line of a server's reason, cut short, withheld if it echoes any of ``texts``.

    ``texts`` are the request's inputs (PHI for sensitive work); a server that
    quotes them back in an error must not carry them into logs or job records.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reason = lines[0] if lines else "no detail"
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + "..."
    for value in texts:
        for line in str(value).splitlines():
            fragment = line.strip()
            if len(fragment) >= 4 and fragment in reason:
                return WITHHELD
            for start in range(0, max(len(fragment) - _WINDOW, 0) + 1, _WINDOW // 2):
                window = fragment[start : start + _WINDOW]
                if len(window) == _WINDOW and window in reason:
                    return WITHHELD
    return reason
