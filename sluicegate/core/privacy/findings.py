"""What a detector reports: a typed span of text, never its value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """Identifier categories, coarse enough for surrogate labels and audit events."""

    NAME = "name"
    DATE = "date"
    ID = "id"
    PHONE = "phone"
    EMAIL = "email"
    URL = "url"
    IP = "ip"
    SSN = "ssn"
    ACCOUNT = "account"
    LOCATION = "location"
    AGE = "age"


#: Which source wins when two findings overlap (lower is stronger).
SOURCE_RANK = {"known": 0, "pattern": 1, "dictionary": 2, "ner": 3}


@dataclass(frozen=True, order=True)
class Finding:
    """A half-open span ``text[start:end]`` holding an identifier of ``kind``.

    ``source`` says which recognizer produced it: ``known`` (propagated from the
    item's structured identifiers), ``pattern``, ``dictionary`` or ``ner``.
    """

    start: int
    end: int
    kind: Kind
    source: str


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """Sorted, non-overlapping findings.

    Overlapping (or touching-inside) spans become one span covering their union,
    so nothing any recognizer flagged is left uncovered; the merged span takes
    the kind of its strongest member (known over pattern over dictionary over
    NER, then the longer span).
    """
    ordered = sorted(findings, key=lambda f: (f.start, -f.end))
    out: list[Finding] = []
    best: Finding | None = None
    start = end = -1
    for f in ordered:
        if best is not None and f.start < end:
            end = max(end, f.end)
            if _stronger(f, best):
                best = f
            continue
        if best is not None:
            out.append(Finding(start, end, best.kind, best.source))
        best, start, end = f, f.start, f.end
    if best is not None:
        out.append(Finding(start, end, best.kind, best.source))
    return out


def _stronger(a: Finding, b: Finding) -> bool:
    ra, rb = SOURCE_RANK.get(a.source, 9), SOURCE_RANK.get(b.source, 9)
    if ra != rb:
        return ra < rb
    return (a.end - a.start) > (b.end - b.start)
