"""Re-identification: put the originals back into model output, on-prem.

Models reformat what they are given: ``[PATIENT_1]`` comes back as
``[Patient 1]``, ``PATIENT_1``, ``[ patient_1 ]`` or markdown-escaped
``\\[PATIENT\\_1\\]``; realistic surrogates come back in other case or spacing
and with possessives; shifted dates come back in another format. All of these
are restored; a surrogate-looking tag the vault does not know is left as it is
and counted as unresolved.
"""

from __future__ import annotations

import re
from functools import lru_cache

from sluicegate.core.privacy import surrogates as sg
from sluicegate.core.privacy.vault import Vault

_LABELS = "|".join(sg.LABELS)
_TAG = re.compile(
    rf"\\?\[\s*(?P<l1>{_LABELS})\s*(?:\\?_|-|\s)\s*(?P<n1>\d+)\s*\\?\]"
    rf"|(?<![\w\\])(?P<l2>{_LABELS})\\?_(?P<n2>\d+)(?!\d)",
    re.IGNORECASE,
)


def reidentify_text(text: str, vault: Vault) -> tuple[str, int, int]:
    """``(text with originals restored, how many restored, how many tags unknown)``."""
    spans: list[tuple[int, int, str]] = []
    unresolved = 0
    for m in _TAG.finditer(text):
        label = (m.group("l1") or m.group("l2")).upper()
        original = vault.tag(label, int(m.group("n1") or m.group("n2")))
        if original is None:
            unresolved += 1
        else:
            spans.append((m.start(), m.end(), original))
    if vault.mode == "realistic":
        spans += _realistic_spans(text, vault, spans)
    spans.sort()
    parts: list[str] = []
    at = 0
    for start, end, original in spans:
        parts.append(text[at:start])
        parts.append(original)
        at = end
    parts.append(text[at:])
    return "".join(parts), len(spans), unresolved


def _realistic_spans(
    text: str, vault: Vault, taken: list[tuple[int, int, str]]
) -> list[tuple[int, int, str]]:
    mapping = {s: o for s, o in vault.mapping().items() if not _TAG.fullmatch(s)}
    found: list[tuple[int, int, str]] = []

    def free(start: int, end: int) -> bool:
        return not any(start < e and s < end for s, e, _ in [*taken, *found])

    if mapping:
        lookup = {_key(s): o for s, o in mapping.items()}
        for m in _pattern(tuple(sorted(mapping, key=len, reverse=True))).finditer(text):
            original = lookup.get(_key(m.group()))
            if original is not None and free(m.start(), m.end()):
                found.append((m.start(), m.end(), original))
    if vault.date_offset_days:
        for expr in sg.find_dates(text):
            if free(expr.start, expr.end):
                back = expr.render(sg.shift(expr.value, -vault.date_offset_days))
                found.append((expr.start, expr.end, back))
    return found


def _key(value: str) -> str:
    return " ".join(value.casefold().split())


@lru_cache(maxsize=64)
def _pattern(surrogates: tuple[str, ...]) -> re.Pattern[str]:
    """Each surrogate, any case, any whitespace between its words, as whole words."""
    alts = []
    for s in surrogates:
        body = r"\s+".join(re.escape(w) for w in s.split())
        head = r"(?<!\w)" if s[:1].isalnum() else ""
        tail = r"(?!\w)" if s[-1:].isalnum() else ""
        alts.append(f"{head}{body}{tail}")
    return re.compile("|".join(alts), re.IGNORECASE)
