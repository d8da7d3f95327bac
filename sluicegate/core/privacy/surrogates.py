"""Surrogate values: tag labels, date expressions that keep their format, realistic fakes.

Realistic surrogates are drawn from ranges reserved for fiction or
documentation (phone numbers 555-01xx, ``example.*`` e-mail domains, RFC 5737
IP addresses, SSN areas 9xx that are never issued) and ids without long digit
runs, so the guard can tell them from real identifiers without seeing the vault.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

#: Surrogate tag labels by category (the part of ``[LABEL_n]`` before the number).
LABELS = (
    "PATIENT",
    "NAME",
    "DATE",
    "ID",
    "SSN",
    "ACCOUNT",
    "PHONE",
    "EMAIL",
    "URL",
    "IP",
    "LOCATION",
)

MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH_NUM = {
    **{m: i + 1 for i, m in enumerate(MONTHS)},
    **{m[:3]: i + 1 for i, m in enumerate(MONTHS)},
}
_MONTH_NUM["sept"] = 9
_MONTH_RE = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
_DAY_RE = r"\d{1,2}(?:st|nd|rd|th)?"

# Each pattern names its year / month / day groups; everything else in the match
# (separators, time of day, "of") is kept as it is when a date is re-rendered.
_DATE_PATTERNS = [
    re.compile(
        r"(?<![\w.])(?P<y>\d{4})(?P<s>[-/.])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})(?![\d])",
    ),
    re.compile(
        r"(?<![\w.])(?P<a>\d{1,2})(?P<s>[-/])(?P<b>\d{1,2})(?P=s)(?P<y>\d{4}|\d{2})(?![\w/])",
    ),
    re.compile(r"(?<![\w.])(?P<a>\d{1,2})\.(?P<b>\d{1,2})\.(?P<y>\d{4})(?![\w.])"),
    re.compile(
        r"(?<![\w])(?P<y>(?:19|20)\d{2})(?P<m>0[1-9]|1[0-2])(?P<d>0[1-9]|[12]\d|3[01])"
        r"(?:\d{2,6}(?:\.\d+)?)?(?:[+-]\d{4})?(?![\w])",
    ),
    re.compile(
        rf"(?<![\w])(?P<mon>{_MONTH_RE})\.?\s+(?P<d>{_DAY_RE}),?\s+(?P<y>\d{{4}})(?![\w])",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?<![\w])(?P<d>{_DAY_RE})(?:\s+of)?[\s-]+(?P<mon>{_MONTH_RE})\.?,?[\s-]+"
        rf"(?P<y>\d{{4}}|\d{{2}})(?![\w])",
        re.IGNORECASE,
    ),
]

_MONTH_HINT = re.compile(_MONTH_RE, re.IGNORECASE)


@dataclass(frozen=True)
class DateExpr:
    """A full date found in text, with what is needed to write another date the same way."""

    start: int
    end: int
    value: date
    text: str
    _parts: tuple[tuple[str, int, int, str], ...]  # (role, start, end, original) in ``text``

    def render(self, new: date) -> str:
        """``new`` written in this expression's format (widths, month names, separators)."""
        out = self.text
        for role, s, e, orig in sorted(self._parts, key=lambda p: -p[1]):
            out = out[:s] + _render_part(role, orig, new) + out[e:]
        return out


def _render_part(role: str, orig: str, new: date) -> str:
    if role == "y":
        return f"{new.year % 100:02d}" if len(orig) == 2 else f"{new.year:04d}"
    if role == "m":
        return f"{new.month:02d}" if len(orig) == 2 else str(new.month)
    if role == "mon":
        full = MONTHS[new.month - 1]
        if orig.lower() in MONTHS:
            word = full
        else:
            word = "sept" if new.month == 9 and len(orig) == 4 else full[:3]
        if orig.isupper():
            return word.upper()
        return word if orig.islower() else word.capitalize()
    # day, maybe with an ordinal suffix
    digits = re.match(r"\d+", orig)
    width = len(digits.group()) if digits else 1
    padded = width == 2 and (orig.startswith("0") or role == "dd")
    day = f"{new.day:02d}" if padded else str(new.day)
    if len(orig) > width:
        suffix = (
            "th" if 11 <= new.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(new.day % 10, "th")
        )
        day += suffix if orig[width:].islower() else suffix.upper()
    return day


def find_dates(text: str) -> list[DateExpr]:
    """Every full calendar date written in ``text`` (numeric or with month names)."""
    patterns = _DATE_PATTERNS if _MONTH_HINT.search(text) else _DATE_PATTERNS[:4]
    candidates = sorted(
        ((m.start(), rank, m) for rank, p in enumerate(patterns) for m in p.finditer(text)),
        key=lambda c: (c[0], c[1]),
    )
    found: list[DateExpr] = []
    end = -1
    for start, _, m in candidates:
        if start < end:
            continue
        expr = _expr(m)
        if expr is not None:
            found.append(expr)
            end = m.end()
    return found


def parse_date(value: str) -> DateExpr | None:
    """``value`` as one date expression filling the whole (stripped) string, else None."""
    v = value.strip()
    for expr in find_dates(v):
        if expr.start == 0 and expr.end == len(v):
            return expr
    return None


def _expr(m: re.Match[str]) -> DateExpr | None:
    groups = m.groupdict()
    base = m.start()
    parts: list[tuple[str, int, int, str]] = []
    y_text = groups["y"]
    year = int(y_text)
    if len(y_text) == 2:
        year += 2000 if year <= (date.today().year % 100) + 1 else 1900
    if groups.get("mon"):
        month = _MONTH_NUM.get(groups["mon"].lower()[:4]) or _MONTH_NUM.get(
            groups["mon"].lower()[:3]
        )
        if month is None or groups["mon"].lower() not in _month_spellings(month):
            return None
        parts.append(("mon", m.start("mon") - base, m.end("mon") - base, groups["mon"]))
        day = int(re.match(r"\d+", groups["d"]).group())  # type: ignore[union-attr]
        parts.append(("d", m.start("d") - base, m.end("d") - base, groups["d"]))
    elif groups.get("a"):
        a, b = int(groups["a"]), int(groups["b"])
        day_first = a > 12 or "." in m.group()
        month, day = (b, a) if day_first else (a, b)
        m_group, d_group = ("b", "a") if day_first else ("a", "b")
        parts.append(("m", m.start(m_group) - base, m.end(m_group) - base, groups[m_group]))
        parts.append(("dd", m.start(d_group) - base, m.end(d_group) - base, groups[d_group]))
    else:
        month, day = int(groups["m"]), int(groups["d"])
        parts.append(("m", m.start("m") - base, m.end("m") - base, groups["m"]))
        parts.append(("dd", m.start("d") - base, m.end("d") - base, groups["d"]))
    parts.append(("y", m.start("y") - base, m.end("y") - base, y_text))
    try:
        value = date(year, month, day)
    except ValueError:
        return None
    return DateExpr(m.start(), m.end(), value, m.group(), tuple(parts))


def _month_spellings(month: int) -> set[str]:
    full = MONTHS[month - 1]
    return {full, full[:3], "sept"} if month == 9 else {full, full[:3]}


def shift(value: date, days: int) -> date:
    """``value`` moved by ``days``, clamped to the representable range."""
    try:
        return value + timedelta(days=days)
    except OverflowError:
        return value


def label_for(kind: str, value: str = "") -> str:
    """The surrogate label for a harvest kind."""
    k = kind.lower()
    if k == "name":
        return "PATIENT"
    if "name" in k or k in ("provider", "person"):
        return "NAME"
    if k == "phone" and "@" in value:
        return "EMAIL"
    table = {
        "phone": "PHONE",
        "email": "EMAIL",
        "address": "LOCATION",
        "ssn": "SSN",
        "account": "ACCOUNT",
        "url": "URL",
        "ip": "IP",
    }
    if k in ("birth_date", "date") or k.endswith("date"):
        return "DATE"
    return table.get(k, "ID")


# --- generalisation (Safe Harbor) -----------------------------------------------------


def generalize_zip(value: str) -> str:
    """A ZIP/postal code cut to its first three digits (Safe Harbor); others redacted."""
    digits = re.sub(r"\D", "", value)
    return digits[:3] if len(digits) >= 5 else ""


def generalize_age(value: str) -> str:
    """Ages over 89 become "90+"; younger ages are kept."""
    m = re.search(r"\d+", value)
    if m and int(m.group()) > 89:
        return value[: m.start()] + "90+" + value[m.end() :]
    return value


# --- realistic fakes ----------------------------------------------------------------------


def _reserved_shape(value: str) -> str:
    """An id that happens to look like an SSN or a phone number gets the reserved form of one."""
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    chars = list(value)
    if re.fullmatch(r"\d{3}-\d{2}-\d{4}", value) or len(digits) == 9:
        chars[digits[0]] = "9"  # SSN area 9xx is never issued
    elif len(digits) in (10, 11):
        for i, c in zip(digits[-7:-2], "55501", strict=True):
            chars[i] = c  # 555-01xx is reserved for fiction
    return "".join(chars)


_local = threading.local()


def _shared_faker() -> Any:
    """One ``faker`` generator per thread (building one costs milliseconds; reseeding is free)."""
    fake = getattr(_local, "fake", None)
    if fake is None:
        from faker import Faker as _Faker  # imported lazily: only realistic mode needs it

        fake = _local.fake = _Faker("en_US")
    return fake


class Faker:
    """Seeded fake values (``faker``) that never coincide with a value in ``avoid``."""

    def __init__(self, seed: int, avoid: Callable[[str], bool]) -> None:
        self._fake: Any = _shared_faker()
        self._fake.seed_instance(seed)
        self._rng = random.Random(seed)
        self._avoid = avoid

    def _fresh(self, make: Callable[[], str]) -> str:
        for _ in range(50):
            value = make()
            if not self._avoid(value):
                return value
        return make() + "x"

    def first_name(self) -> str:
        return self._fresh(self._fake.first_name)

    def last_name(self) -> str:
        return self._fresh(self._fake.last_name)

    def city(self) -> str:
        return self._fresh(self._fake.city)

    def street(self) -> str:
        return self._fresh(self._fake.street_address)

    def email(self) -> str:
        tld = self._rng.choice(["com", "org", "net"])
        return self._fresh(lambda: f"{self._fake.user_name()}@example.{tld}")

    def url(self) -> str:
        return self._fresh(lambda: f"https://www.example.org/{self._fake.slug()}")

    def ip(self) -> str:
        net = self._rng.choice(["192.0.2", "198.51.100", "203.0.113"])
        return self._fresh(lambda: f"{net}.{self._rng.randint(1, 254)}")

    def ssn(self) -> str:
        r = self._rng
        return self._fresh(
            lambda: f"9{r.randint(0, 99):02d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"
        )

    def phone(self, original: str) -> str:
        """Same punctuation as ``original``; the last seven digits are 555-01xx."""
        return self._fresh(lambda: self._phone(original))

    def _phone(self, original: str) -> str:
        digits = [c for c in original if c.isdigit()]
        tail = list("55501" + f"{self._rng.randint(0, 99):02d}")
        head = [str(self._rng.randint(2, 9))] + [
            str(self._rng.randint(0, 9)) for _ in range(max(0, len(digits) - 8))
        ]
        new = (head + tail)[-len(digits) :] if len(digits) >= 7 else tail
        out, i = [], 0
        for c in original:
            if c.isdigit() and i < len(new):
                out.append(new[i])
                i += 1
            elif not c.isdigit():
                out.append(c)
        return "".join(out) + "".join(new[i:])

    def identifier(self, original: str) -> str:
        """Same shape as ``original`` (letters, digits, punctuation), no run of 8+ digits."""
        return self._fresh(lambda: self._identifier(original))

    def _identifier(self, original: str) -> str:
        r = self._rng
        out: list[str] = []
        run = 0
        for c in original:
            if c.isdigit():
                run += 1
                out.append(
                    r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") if run % 8 == 0 else str(r.randint(0, 9))
                )
                if run % 8 == 0:
                    run = 0
            elif c.isalpha():
                run = 0
                letter = r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")
                out.append(letter if c.isupper() else letter.lower())
            else:
                run = 0
                out.append(c)
        value = "".join(out)
        value = value if value != original else "X" + value
        return _reserved_shape(value)
