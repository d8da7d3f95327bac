"""Free-text de-identification: replace every finding with its vault surrogate.

Findings come from the detector (known-identifier propagation, patterns,
dictionaries, optional NER). On top of it :class:`KnownSweep` hunts every
structured identifier value of the item itself, ignoring case, spacing and
punctuation, and every full date equal to a known date in any format: a
safety net that makes "structured identifiers never reach the cloud" hold by
construction, whatever the detector does.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

import ahocorasick

from sluicegate.core.privacy import surrogates as sg
from sluicegate.core.privacy.findings import Finding, Kind
from sluicegate.core.privacy.vault import Vault, name_tokens

Span = tuple[int, int, str, int]  # start, end, label, rank (lower wins an overlap)

_KIND_LABEL = {
    Kind.NAME: "NAME",
    Kind.DATE: "DATE",
    Kind.ID: "ID",
    Kind.PHONE: "PHONE",
    Kind.EMAIL: "EMAIL",
    Kind.URL: "URL",
    Kind.IP: "IP",
    Kind.SSN: "SSN",
    Kind.ACCOUNT: "ACCOUNT",
    Kind.LOCATION: "LOCATION",
    Kind.AGE: "AGE",
}
#: What a replacement is counted as (audit events carry these, never values).
LABEL_KIND = {
    "PATIENT": "name",
    "NAME": "name",
    "DATE": "date",
    "ID": "id",
    "SSN": "ssn",
    "ACCOUNT": "account",
    "PHONE": "phone",
    "EMAIL": "email",
    "URL": "url",
    "IP": "ip",
    "LOCATION": "location",
    "AGE": "age",
}
_PIECE = re.compile(r"[^\W\d_]+|\d+")
_DIGITS = re.compile(r"\d{7,}")
_NON_ALNUM = re.compile(r"[\W_]+")


class KnownSweep:
    """The item's own identifier values, found in text whatever their case or punctuation."""

    def __init__(self, identifiers: Mapping[str, Sequence[str]]) -> None:
        self._dates: dict[date, str] = {}
        self._long: dict[str, str] = {}  # digit-only values of 7+ digits, inside longer runs too
        self._automaton: ahocorasick.Automaton | None = None
        entries: dict[str, tuple[int, str, bool, str]] = {}
        for key, values in identifiers.items():
            for value in values:
                if not isinstance(value, str) or not value.strip():
                    continue
                label = sg.label_for(key, value)
                self._add_date(value)
                self._add(entries, value, label, single=False)
                if label in ("PATIENT", "NAME"):
                    tokens = name_tokens(value)
                    if len(tokens) == 1:
                        self._add(entries, value, label, single=True)
                    else:
                        for token in tokens:
                            self._add(entries, token, label, single=True)
                digits = re.sub(r"\D", "", value)
                if len(digits) >= 7 and not any(c.isalpha() for c in value):
                    self._long.setdefault(digits, label)
                if label == "PHONE" and len(digits) >= 11:
                    self._add(entries, digits[-10:], label, single=False)
        if entries:
            automaton = ahocorasick.Automaton()
            for key, entry in entries.items():
                automaton.add_word(key, entry)
            automaton.make_automaton()
            self._automaton = automaton

    def _add_date(self, value: str) -> None:
        v = value.strip()
        expr = sg.parse_date(v) or next(iter(sg.find_dates(v[:10])), None)
        if expr is not None and expr.start == 0:
            self._dates.setdefault(expr.value, "DATE")

    @staticmethod
    def _add(
        entries: dict[str, tuple[int, str, bool, str]], value: str, label: str, *, single: bool
    ) -> None:
        key = "".join(m.group() for m in _PIECE.finditer(value)).lower()
        minimum = 2 if label in ("PATIENT", "NAME") else 3
        if len(key) < minimum:
            return
        old = entries.get(key)
        # a full value listed as such beats the same word derived from a longer name
        if old is None or (old[2] and not single):
            entries[key] = (len(key), label, single, value)

    def find(self, text: str) -> list[Span]:
        """Spans of known values in ``text`` (rank 0: they win every overlap)."""
        spans: list[Span] = []
        if self._dates:
            for expr in sg.find_dates(text):
                if expr.value in self._dates:
                    spans.append((expr.start, expr.end, "DATE", 0))
        if self._long:
            for m in _DIGITS.finditer(text):
                run = m.group()
                label = next((lab for v, lab in self._long.items() if v in run), None)
                if label is not None:
                    spans.append((m.start(), m.end(), label, 0))
        if self._automaton is None:
            return spans
        low = text.lower()
        if len(low) != len(text):  # rare: a character whose lower case is longer
            low = "".join(c.lower()[:1] or c for c in text)
        stream = _NON_ALNUM.sub("", low)
        hits = list(self._automaton.iter(stream))
        if not hits:
            return spans
        gap_at: list[int] = []  # stream index before which each run of non-alphanumerics sat
        skipped: list[int] = []  # characters removed up to and including that run
        removed = 0
        for m in _NON_ALNUM.finditer(low):
            gap_at.append(m.start() - removed)
            removed += m.end() - m.start()
            skipped.append(removed)

        def at(i: int) -> int:  # text index of stream character i
            k = bisect.bisect_right(gap_at, i) - 1
            return i + (skipped[k] if k >= 0 else 0)

        for last, (length, label, single, value) in hits:
            start, end = at(last - length + 1), at(last) + 1
            if not (_edge(low, start - 1, start) and _edge(low, end, end - 1)):
                continue  # inside a longer word or number
            found = text[start:end]
            if single and found.islower() and label in ("PATIENT", "NAME"):
                continue  # "will", "may": an ordinary word, not the name
            if length == 2 and _alnum(found) not in (_alnum(value), _alnum(value).upper()):
                continue  # two-letter names only as written
            spans.append((start, end, label, 0))
        return spans


def _edge(low: str, outside: int, inside: int) -> bool:
    """Whether a match may stop between ``inside`` and its neighbour ``outside``.

    It may at the text's edge, next to a non-alphanumeric character, or where
    letters meet digits ("Todd315", "MRN0048213").
    """
    if outside < 0 or outside >= len(low) or not low[outside].isalnum():
        return True
    return low[outside].isdigit() != low[inside].isdigit()


def _alnum(value: str) -> str:
    return "".join(m.group() for m in _PIECE.finditer(value))


def finding_spans(findings: Iterable[Finding]) -> list[Span]:
    """Detector findings as spans (known-identifier findings rank above patterns)."""
    return [
        (f.start, f.end, _KIND_LABEL.get(f.kind, "ID"), 1 if f.source == "known" else 2)
        for f in findings
    ]


def _merge(spans: Iterable[Span]) -> list[tuple[int, int, str]]:
    """Union of overlapping spans; each union takes the label of its best member."""
    out: list[tuple[int, int, str]] = []
    best: Span | None = None
    start = end = -1
    for span in sorted(spans, key=lambda s: (s[0], -s[1])):
        if best is not None and span[0] < end:
            end = max(end, span[1])
            if (span[3], -(span[1] - span[0])) < (best[3], -(best[1] - best[0])):
                best = span
            continue
        if best is not None:
            out.append((start, end, best[2]))
        best, start, end = span, span[0], span[1]
    if best is not None:
        out.append((start, end, best[2]))
    return out


def replace_spans(text: str, spans: Iterable[Span], vault: Vault) -> tuple[str, Counter[str]]:
    """``text`` with every span replaced by its surrogate, and counts by kind."""
    counts: Counter[str] = Counter()
    parts: list[str] = []
    at = 0
    for start, end, label in _merge(spans):
        if start > at and text[start - 1] == "(" and ")" in text[start:end].split("(")[0]:
            start -= 1  # "(03) 5555 6473" found from its digits: take the bracket too
        original = text[start:end]
        surrogate = vault.surrogate(label, original)
        parts.append(text[at:start])
        parts.append(surrogate)
        at = end
        if surrogate != original:
            counts[LABEL_KIND.get(label, "id")] += 1
    parts.append(text[at:])
    return "".join(parts), counts


def deidentify_text(
    text: str, vault: Vault, findings: Iterable[Finding], sweep: KnownSweep | None = None
) -> tuple[str, Counter[str]]:
    """Replace the detector's findings and the sweep's known values in ``text``."""
    spans = finding_spans(findings)
    if sweep is not None:
        spans += sweep.find(text)
    return replace_spans(text, spans, vault)
