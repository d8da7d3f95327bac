"""Masking of identifiers in log events: a structlog processor.

Log events should carry ids and counts only; this is the safety net for the
ones that don't (an exception message quoting input, a library's own log).
E-mail addresses, phone numbers, SSNs and runs of seven or more digits are
replaced; UUIDs (job ids) are left alone. Values of sensitive keys are
replaced whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from typing import Any

MASK = "***"
_PATTERN = re.compile(
    r"(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)"
    r"|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<ssn>\b\d{3}-\d{2}-\d{4}\b)"
    r"|(?P<phone>(?:\+\d{1,3}[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b)"
    r"|(?P<intl>\+\d[\d\s-]{7,}\d)"
    r"|(?P<digits>\d{7,})"
)
_EXEMPT = frozenset({"timestamp", "level", "logger", "logger_name"})


def _replace(match: re.Match[str]) -> str:
    return match.group(0) if match.group("uuid") else MASK


def mask_text(text: str) -> str:
    return _PATTERN.sub(_replace, text)


def _mask(value: Any, sensitive: frozenset[str]) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {
            k: MASK if str(k).lower() in sensitive else _mask(v, sensitive)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_mask(v, sensitive) for v in value)
    if isinstance(value, BaseException):
        return mask_text(f"{type(value).__name__}: {value}")
    return value


class MaskingProcessor:
    """structlog processor: masks every string value of the event dict."""

    def __init__(self, sensitive_keys: Iterable[str]) -> None:
        self.sensitive = frozenset(k.lower() for k in sensitive_keys)

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if key in _EXEMPT:
                continue
            event[key] = MASK if key.lower() in self.sensitive else _mask(value, self.sensitive)
        return event
