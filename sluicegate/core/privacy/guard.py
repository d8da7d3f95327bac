"""The guard: an independent last scan of everything about to leave for the cloud.

It shares no code with the de-identifier (a test checks its imports): its own
normaliser, its own date reader, its own patterns. It hunts the item's known
identifiers (case-folded words, digits whatever their punctuation, known dates
in any common format) and high-risk patterns (SSN, e-mail, phone, long digit
runs, card and IBAN numbers with their checksums). Surrogate tags are removed
before the scan, and realistic surrogates are drawn from reserved ranges that
the patterns here skip (555-01xx phones, ``example.*`` mail, SSN areas 9xx).

It reports finding *kinds* only, never values; if anything inside it fails it
reports ``guard_error``, so a broken guard blocks instead of waving through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

# Surrogate tag labels, spelled out here rather than imported (independence).
_LABELS = "PATIENT|NAME|DATE|ID|SSN|ACCOUNT|PHONE|EMAIL|URL|IP|LOCATION"
_TAG = re.compile(
    rf"\\?\[\s*(?:{_LABELS})\s*(?:\\?_|-|\s)\s*\d+\s*\\?\]|(?<![\w\\])(?:{_LABELS})\\?_\d+(?!\d)",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[\W_]+")
_NUMBER = re.compile(r"\d+(?:[ \t.\-/()]{1,3}\d+)*")
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
    for m in (names,)
}
_MON = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DATES = [
    (re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?!\d)"), "xxy"),
    (re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)"), "ymd"),
    (re.compile(rf"\b{_MON}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}}|\d{{2}})\b", re.I), "mdy"),
    (
        re.compile(
            rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?[\s-]+{_MON},?[\s-]+(\d{{4}}|\d{{2}})\b", re.I
        ),
        "dmy",
    ),
]
_MON_HINT = re.compile(_MON, re.I)
_SSN = re.compile(r"(?<![\d-])(\d{3})[- ](\d{2})[- ](\d{4})(?![\d-])")
_SSN_BARE = re.compile(r"\b(?:ssn|social security(?: number| no\.?)?)\W{0,3}(\d{9})\b", re.I)
_EMAIL = re.compile(r"[\w.+%-]+@([\w-]+(?:\.[\w-]+)+)")
_PHONE = re.compile(
    r"(?<![\w.-])(?:\+?1[ .-]?)?\(?([2-9]\d{2})\)?[ .-]?(\d{3})[ .-]?(\d{4})(?![.-]?\d)"
    r"|(?<![\w+])\+\d{1,3}[ .-]?(?:\(?\d{1,4}\)?[ .-]?){2,4}\d{2,4}(?!\d)"
)
_LONG_DIGITS = re.compile(r"(?<!\d)\d{9,}(?!\d)")
_CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")


def _norm_words(text: str) -> str:
    """Case-folded words separated by single spaces, with a space at each end."""
    return " " + _NON_WORD.sub(" ", text.casefold()).strip() + " "


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _valid(y: int, m: int, d: int) -> date | None:
    if y < 100:
        y += 1900 if y > 30 else 2000
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _dates_in(text: str) -> set[date]:
    """Every full date written in ``text``; ambiguous day/month orders give both."""
    out: set[date] = set()
    patterns = _DATES if _MON_HINT.search(text) else _DATES[:3]  # month names are rarer
    for pattern, order in patterns:
        for m in pattern.finditer(text):
            g = m.groups()
            cands: list[date | None] = []
            if order == "ymd":
                cands.append(_valid(int(g[0]), int(g[1]), int(g[2])))
            elif order == "xxy":
                a, b, y = int(g[0]), int(g[1]), int(g[2])
                cands += [_valid(y, a, b), _valid(y, b, a)]
            elif order == "mdy":
                cands.append(_valid(int(g[2]), _MONTHS[g[0][:3].lower()], int(g[1])))
            else:
                cands.append(_valid(int(g[2]), _MONTHS[g[1][:3].lower()], int(g[0])))
            out.update(c for c in cands if c is not None)
    return out


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _iban_ok(value: str) -> bool:
    v = value.replace(" ", "")
    moved = v[4:] + v[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _reserved_phone(digits: str) -> bool:
    return digits[-7:-2] == "55501"


class _Known:
    """The item's identifiers, normalised the guard's own way."""

    def __init__(self, identifiers: Mapping[str, Sequence[str]]) -> None:
        self.words: list[tuple[str, str, bool]] = []  # (normalised, kind, one-word name)
        self.numbers: list[tuple[str, str]] = []
        self.dates: dict[date, str] = {}
        for kind, values in identifiers.items():
            for value in values:
                if isinstance(value, str):
                    self._add(kind, value)

    def _add(self, kind: str, value: str) -> None:
        digits = _digits(value)
        alnum = _NON_WORD.sub("", value)
        if "date" in kind or re.fullmatch(
            r"\d{4}-\d{2}-\d{2}.*|\d{8}(\d{4,6})?([+-]\d{4})?", value
        ):
            for d in _dates_in(value[:10]) or _dates_in(value):
                self.dates[d] = kind
        if len(digits) >= 4 and not any(c.isalpha() for c in value):
            self.numbers.append((digits, kind))
            if len(digits) >= 11 and "phone" in kind:
                self.numbers.append((digits[-10:], kind))
            return
        if len(alnum) < 3:
            return
        norm = _norm_words(value)
        name_like = "name" in kind or kind in ("provider", "person")
        self.words.append((norm, kind, name_like and norm.count(" ") == 2))

    def scan(self, text: str) -> set[str]:
        hits: set[str] = set()
        folded = _norm_words(text)
        for norm, kind, single in self.words:
            if norm in folded and (not single or _written_as_name(text, norm.strip())):
                hits.add(kind)
        if self.numbers:
            runs = [_digits(m.group()) for m in _NUMBER.finditer(text)]
            for known, kind in self.numbers:
                if any(r == known or (len(known) >= 7 and known in r) for r in runs):
                    hits.add(kind)
        if self.dates:
            hits.update(self.dates[d] for d in _dates_in(text) if d in self.dates)
        return hits


def _written_as_name(text: str, word: str) -> bool:
    """A one-word identifier counts unless every occurrence is an all-lowercase word."""
    for m in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE):
        if not m.group().islower():
            return True
    return False


def _patterns(text: str) -> set[str]:
    hits: set[str] = set()
    for m in _SSN.finditer(text):
        area, group, serial = m.groups()
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            hits.add("ssn")
    low = text.casefold()
    if ("ssn" in low or "social" in low) and _SSN_BARE.search(text):
        hits.add("ssn")
    for m in _EMAIL.finditer(text) if "@" in text else ():
        domain = m.group(1).casefold()
        if not re.search(r"(^|\.)example\.(com|org|net)$", domain):
            hits.add("email")
    for m in _PHONE.finditer(text):
        if not _reserved_phone(_digits(m.group())):
            hits.add("phone")
    for m in _CARD.finditer(text):
        digits = _digits(m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            hits.add("card")
    if any(not _reserved_phone(m.group()) for m in _LONG_DIGITS.finditer(text)):
        hits.add("digits")
    for m in _IBAN.finditer(text):
        if _iban_ok(m.group()):
            hits.add("iban")
    return hits


def scan(identifiers: Mapping[str, Sequence[str]], texts: Iterable[str]) -> list[str]:
    """Finding kinds in ``texts`` (sorted, no values); ``[]`` means nothing found."""
    known = _Known(identifiers)
    hits: set[str] = set()
    for text in texts:
        clean = _TAG.sub(" ", text)
        hits |= known.scan(clean)
        hits |= _patterns(clean)
    return sorted(hits)


def known_hits(identifiers: Mapping[str, Sequence[str]], texts: Iterable[str]) -> list[str]:
    """Only the known-identifier part of :func:`scan`: which kinds of the item's values remain."""
    known = _Known(identifiers)
    hits: set[str] = set()
    for text in texts:
        hits |= known.scan(_TAG.sub(" ", text))
    return sorted(hits)


def guard(identifiers: Mapping[str, Sequence[str]], inputs: Mapping[str, str]) -> list[str]:
    """:func:`scan` that fails closed: any internal error is itself a finding."""
    try:
        return scan(identifiers, list(inputs.values()))
    except Exception:
        return ["guard_error"]
