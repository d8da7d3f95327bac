"""Known-identifier propagation: hunt an item's structured identifiers in its narrative.

A FHIR Patient or an HL7 PID segment tells us exactly which name, MRN, birth
date, phone and address belong to the item; this module turns each value into
the variants people actually write ("J. Smith", "SMITH, JOHN", "3/14/70",
"(617) 555-0100", "12 Main St") and finds every occurrence in free text with
one Aho-Corasick pass over the lower-cased text plus one scan of digit groups
(so phone numbers and ids match whatever their punctuation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

import ahocorasick

from sluicegate.core.privacy.findings import Finding, Kind
from sluicegate.core.privacy.names import is_common_word
from sluicegate.core.privacy.surrogates import MONTHS

_MONTHS = MONTHS
TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "rev",
        "jr",
        "sr",
        "ii",
        "iii",
        "iv",
        "md",
        "phd",
        "rn",
        "np",
        "pa",
        "do",
        "dds",
    ]
)
_STREET_ABBREV = {
    "street": "st",
    "avenue": "ave",
    "road": "rd",
    "drive": "dr",
    "boulevard": "blvd",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "terrace": "ter",
    "circle": "cir",
    "parkway": "pkwy",
    "highway": "hwy",
    "square": "sq",
    "apartment": "apt",
    "suite": "ste",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
}
_SEPARATORS = " .-/()"
_DROP_SEPARATORS = str.maketrans("", "", _SEPARATORS)
# A run of digits with at most two separator characters between digit runs.
_DIGIT_GROUP = re.compile(r"\d+(?:[ .\-/()]{1,2}\d+)*")
_WS = str.maketrans({"\n": " ", "\r": " ", "\t": " ", "\f": " ", "\v": " "})
#: ``_WS`` for ASCII text as bytes: ``bytes.translate`` is a table lookup per byte, several
#: times faster than ``str.translate``'s per-character mapping.
_WS_ASCII = bytes.maketrans(b"\n\r\t\f\v", b"     ")
_MIN_DIGITS = 4  # shorter digit strings collide with ordinary numbers
_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)


def kind_for_key(key: str) -> Kind:
    """Map a ``WorkItem.identifiers`` key onto a Kind (unknown keys are ids)."""
    k = key.lower()
    if "name" in k or k in {"initials", "alias"}:
        return Kind.NAME
    if k in {"birth_date", "dob", "date", "birthdate"} or k.endswith(("_date", "date")):
        return Kind.DATE
    if "email" in k:
        return Kind.EMAIL
    if "phone" in k or k in {"fax", "telecom", "mobile", "pager"}:
        return Kind.PHONE
    if k in {"address", "city", "zip", "postal_code", "street", "location"} or "address" in k:
        return Kind.LOCATION
    if k in {"account", "iban", "card", "bank_account"} or "account" in k:
        return Kind.ACCOUNT
    if k == "ssn":
        return Kind.SSN
    if k in {"url", "website"}:
        return Kind.URL
    if k in {"ip", "ip_address"}:
        return Kind.IP
    return Kind.ID


class KnownIdentifiers:
    """Variants of one item's structured identifiers, compiled for fast search."""

    def __init__(self, literals: Mapping[str, Kind], digits: Mapping[str, Kind]) -> None:
        self._digits = dict(digits)
        #: The needles as bytes for ``_find_digits``'s first check; empty (no check) when
        #: one holds a digit outside ASCII, which that check would not see.
        needles = [n.encode("ascii") for n in self._digits if n.isascii()]
        self._ascii_needles = needles if len(needles) == len(self._digits) else []
        self._automaton: ahocorasick.Automaton | None = None
        self._count = len(literals) + len(digits)
        if literals:
            automaton = ahocorasick.Automaton()
            for variant, kind in literals.items():
                guard = " " not in variant and is_common_word(variant)
                automaton.add_word(variant, (len(variant), kind, guard))
            automaton.make_automaton()
            self._automaton = automaton
        self._kinds = {**{v: k for v, k in literals.items()}, **self._digits}

    @classmethod
    def from_identifiers(cls, identifiers: Mapping[str, Sequence[str]]) -> KnownIdentifiers:
        """Build from ``WorkItem.identifiers`` (key -> values)."""
        literals: dict[str, Kind] = {}
        digits: dict[str, Kind] = {}
        for key, values in identifiers.items():
            kind = kind_for_key(key)
            for value in values:
                if not isinstance(value, str) or not value.strip():
                    continue
                for lit in _literal_variants(kind, value):
                    lit = _norm(lit)
                    if len(lit) < 2 or lit in literals:
                        continue
                    if lit.isdigit() and len(lit) < _MIN_DIGITS and kind is not Kind.LOCATION:
                        continue  # "12" would hit every ordinary 12 in the text
                    literals[lit] = kind
                for d in _digit_variants(kind, value):
                    digits.setdefault(d, kind)
        return cls(literals, digits)

    def __len__(self) -> int:
        return self._count

    def kinds(self) -> dict[str, Kind]:
        """Variant -> Kind (variants are identifier values: keep them on-prem)."""
        return dict(self._kinds)

    def find(self, text: str) -> list[Finding]:
        """Every occurrence of every variant, as (possibly overlapping) findings."""
        out: list[Finding] = []
        if self._automaton is not None:
            out.extend(self._find_literals(text))
        if self._digits:
            out.extend(self._find_digits(text))
        return out

    def _find_literals(self, text: str) -> Iterable[Finding]:
        assert self._automaton is not None
        low = _lower(text)
        n = len(text)
        for last, (length, kind, guard) in self._automaton.iter(low):
            start, end = last - length + 1, last + 1
            if start > 0 and low[start - 1].isalnum() and low[start].isalnum():
                continue
            if end < n and low[end].isalnum() and low[end - 1].isalnum():
                continue
            if guard and text[start:end].islower():
                continue  # "will", "rose": a common word written as a word
            yield Finding(start, end, kind, "known")

    def _find_digits(self, text: str) -> Iterable[Finding]:
        if self._ascii_needles:
            # Every hit lies in the text's digits run together: when no needle does, skip
            # the scan of digit groups (most texts hold none of this item's numbers).
            all_digits = text.encode("ascii", "ignore").translate(None, _NOT_DIGITS)
            if not any(needle in all_digits for needle in self._ascii_needles):
                return
        shortest = min(len(n) for n in self._digits)
        for m in _DIGIT_GROUP.finditer(text):
            group = m.group()
            # Most groups are vital signs: rule them out in C before the
            # character-by-character walk that locates a hit.
            if len(group) < shortest:
                continue
            compact = group.translate(_DROP_SEPARATORS)
            if not any(needle in compact for needle in self._digits):
                continue
            digits: list[str] = []
            pos: list[int] = []
            starts: set[int] = set()
            ends: set[int] = set()
            prev_digit = False
            for i, ch in enumerate(group):
                if ch.isdigit():
                    if not prev_digit:
                        starts.add(len(digits))
                    digits.append(ch)
                    pos.append(m.start() + i)
                    prev_digit = True
                else:
                    if prev_digit:
                        ends.add(len(digits))
                    prev_digit = False
            ends.add(len(digits))
            joined = "".join(digits)
            for needle, kind in self._digits.items():
                at = joined.find(needle)
                while at != -1:
                    stop = at + len(needle)
                    if at in starts and stop in ends:
                        yield Finding(pos[at], pos[stop - 1] + 1, kind, "known")
                    at = joined.find(needle, at + 1)


def _lower(text: str) -> str:
    low = text.lower()
    if text.isascii():
        return low.encode("ascii").translate(_WS_ASCII).decode("ascii")
    if len(low) != len(text):  # rare: a character whose lower case is longer
        low = "".join(c.lower()[:1] or c for c in text)
    return low.translate(_WS)


def _norm(value: str) -> str:
    return " ".join(value.lower().split())


def _literal_variants(kind: Kind, value: str) -> Iterable[str]:
    yield value
    if kind is Kind.NAME:
        yield from name_variants(value)
    elif kind is Kind.DATE:
        parsed = parse_date(value)
        if parsed is not None:
            yield from date_variants(parsed)
    elif kind is Kind.LOCATION:
        yield from address_variants(value)
    elif kind in (Kind.ID, Kind.ACCOUNT, Kind.SSN):
        compact = re.sub(r"[\s\-./]", "", value)
        yield compact
        m = re.fullmatch(r"([A-Za-z]+)[\s\-#:]*(\w+)", value.strip())
        if m:
            yield from (f"{m[1]}-{m[2]}", f"{m[1]} {m[2]}", f"{m[1]}{m[2]}", f"{m[1]}#{m[2]}")
            if len(m[2]) >= 5:
                yield m[2]


def _digit_variants(kind: Kind, value: str) -> Iterable[str]:
    if kind in (Kind.NAME, Kind.DATE, Kind.EMAIL, Kind.LOCATION, Kind.URL):
        return
    digits = re.sub(r"\D", "", value)
    if len(digits) < _MIN_DIGITS:
        return
    # Only when the letters are a prefix label ("MRN-0048213") or absent.
    if re.search(r"\d\D*[A-Za-z]", value):
        return
    yield digits
    if kind is Kind.PHONE:
        if len(digits) == 11 and digits.startswith("1"):
            yield digits[1:]
        if len(digits) >= 10:
            yield digits[-10:]
            yield digits[-7:]
    else:
        stripped = digits.lstrip("0")
        if len(stripped) >= 5 and stripped != digits:
            yield stripped


def name_variants(value: str) -> Iterable[str]:
    """'John A. Smith' -> Smith, John, 'J. Smith', 'SMITH, JOHN', 'Smith, J' ..."""
    raw = value.strip()
    if "," in raw:
        family_part, _, given_part = raw.partition(",")
        given = _name_tokens(given_part)
        family = _name_tokens(family_part)
    else:
        tokens = _name_tokens(raw)
        given, family = tokens[:-1], tokens[-1:]
    parts = given + family
    for p in parts:
        if len(p) > 1:
            yield p
            for piece in re.split(r"[-']", p):
                if len(piece) > 2:
                    yield piece
    if not family:
        return
    last = " ".join(family)
    if given:
        first = given[0]
        initial = first[0]
        middle = given[1:]
        full = " ".join(given + family)
        yield full
        yield f"{first} {last}"
        yield f"{last}, {first}"
        yield f"{last},{first}"
        yield f"{last} {first}"
        yield f"{last}, {' '.join(given)}"
        for fmt in (
            "{i}. {l}",
            "{i} {l}",
            "{i}.{l}",
            "{l}, {i}",
            "{l}, {i}.",
            "{l} {i}",
            "{l},{i}",
        ):
            yield fmt.format(i=initial, l=last)
        if middle:
            mids = " ".join(m[0] + "." for m in middle)
            yield f"{first} {mids} {last}"
            yield f"{first} {' '.join(m[0] for m in middle)} {last}"
            yield f"{initial}. {mids} {last}"
            yield f"{last}, {first} {mids}"
        inits = "".join(t[0] for t in parts)
        if len(inits) >= 2:
            yield ".".join(inits) + "."


def _name_tokens(text: str) -> list[str]:
    tokens = [t.strip(".") for t in re.split(r"\s+", text.strip()) if t.strip(".")]
    return [t for t in tokens if t.lower() not in TITLES]


def parse_date(value: str) -> date | None:
    """Best-effort parse of a structured date (FHIR, HL7 TS, US numeric)."""
    v = value.strip()
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:\d{2,6}(?:\.\d+)?)?(?:[+-]\d{4})?", v)
    if m:
        return _safe_date(int(m[1]), int(m[2]), int(m[3]))
    m = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})", v)
    if m:
        return _safe_date(int(m[1]), int(m[2]), int(m[3]))
    m = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", v)
    if m:
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        if "." in v or a > 12:  # European day-first
            return _safe_date(y, b, a)
        return _safe_date(y, a, b)
    for fmt in ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y"):
        try:
            return datetime.strptime(v, fmt).date()
        except ValueError:
            continue
    return None


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def date_variants(d: date) -> Iterable[str]:
    """Every common rendering of a date, numeric and textual."""
    y4, y2 = f"{d.year:04d}", f"{d.year % 100:02d}"
    ms = {str(d.month), f"{d.month:02d}"}
    ds = {str(d.day), f"{d.day:02d}"}
    for mo in ms:
        for da in ds:
            for y in (y4, y2):
                for sep in "/-.":
                    yield f"{mo}{sep}{da}{sep}{y}"
                    yield f"{da}{sep}{mo}{sep}{y}"
            for sep in "-/.":
                yield f"{y4}{sep}{mo}{sep}{da}"
    yield f"{y4}{d.month:02d}{d.day:02d}"
    full = _MONTHS[d.month - 1]
    suffix = "th" if 11 <= d.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th")
    for mon in {full, full[:3], full[:3] + ".", full[:4] if full[:4] == "sept" else full[:3]}:
        for day in (str(d.day), f"{d.day:02d}", f"{d.day}{suffix}"):
            for y in (y4, y2):
                yield f"{mon} {day}, {y}"
                yield f"{mon} {day} {y}"
                yield f"{day} {mon} {y}"
                yield f"{day} {mon}, {y}"
                yield f"{day}-{mon}-{y}"
                yield f"{day} of {mon} {y}"
                yield f"{day} of {mon}, {y}"
            yield f"{mon} {day}"
            yield f"{day} {mon}"


def address_variants(value: str) -> Iterable[str]:
    """Whole address, each line/comma part, street-suffix abbreviations, ZIP."""
    parts = [p.strip() for p in re.split(r"[,\n;]+", value) if p.strip()]
    for part in parts:
        zips = re.findall(r"\b\d{5}(?:-\d{4})?\b", part)
        yield from zips
        for z in zips:
            yield z[:5]
        words = part.split()
        if len(words) == 1 and len(part) <= 2:
            continue  # a state code alone identifies nobody
        rest = re.sub(r"\b\d{5}(?:-\d{4})?\b", "", part).strip()
        if len(rest) > 2 and not re.fullmatch(r"[A-Z]{2}", rest):
            yield rest
        yield part
        low = [w.lower().strip(".") for w in words]
        abbr = [_STREET_ABBREV.get(w, w) for w in low]
        expand = {v: k for k, v in _STREET_ABBREV.items()}
        long = [expand.get(w, w) for w in low]
        yield " ".join(abbr)
        yield " ".join(
            w + "." if w in expand and w != orig else w for w, orig in zip(abbr, low, strict=True)
        )
        yield " ".join(long)
