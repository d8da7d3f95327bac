"""Held-out format variants for the pattern stage: dates, phones, ids, ages, contacts, ZIPs.

A generator of identifier *formats* (not corpus strings): each class draws a
random value, spells it in one of many ways and drops it into one of several
carrier phrases, recording where it went. The rules were written against the
format classes, then checked on seeds they were never run on: the tests use a
random seed each run (printed on failure), so a rule that only fits the
examples fails sooner or later. Near-miss negatives (doses, vitals, scores,
sizes, device models) must stay untouched.

Run ``python -m tests.test_privacy_pattern_variants [seed]`` for a per-class table.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from sluicegate.core.privacy.findings import merge
from sluicegate.core.privacy.patterns import find_patterns

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass(frozen=True)
class Case:
    """One generated sentence and the span of the identifier it carries."""

    cls: str
    text: str
    start: int
    end: int

    @property
    def value(self) -> str:
        return self.text[self.start : self.end]


def _ord(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _mon(r: random.Random, m: int) -> str:
    """A month name as notes write it: full, three letters, with a dot, 'Sept', any case."""
    name = _MONTHS[m - 1]
    style = r.choice(["full", "abbr", "abbr.", "upper", "lower"])
    if style == "full":
        return name
    short = "Sept" if m == 9 and r.random() < 0.4 else name[:3]
    if style == "abbr":
        return short
    if style == "abbr.":
        return short + "." if len(name) > 3 else name
    return short.upper() if style == "upper" else short.lower()


def _yy(y: int) -> str:
    return f"{y % 100:02d}"


def _day_month(r: random.Random) -> tuple[int, int, int]:
    return r.randint(1, 28), r.randint(1, 12), r.randint(1925, 2029)


def _clock(r: random.Random) -> str:
    h, mi = r.randint(0, 23), r.choice([0, 5, 12, 15, 30, 41, 45, 59])
    return r.choice(
        [
            f"{h:02d}:{mi:02d}",
            f"{h}:{mi:02d}",
            f"{(h % 12) or 12}:{mi:02d} {r.choice(['AM', 'PM', 'am', 'pm', 'a.m.', 'p.m.'])}",
            f"{(h % 12) or 12}:{mi:02d}{r.choice(['am', 'pm', 'AM', 'PM'])}",
            f"{h:02d}:{mi:02d}:{r.randint(0, 59):02d}",
        ]
    )


# ------------------------------------------------------------------ dates


def _date_numeric(r: random.Random) -> str:
    d, m, y = _day_month(r)
    sep = r.choice(["/", "-", "."])
    year = str(y) if r.random() < 0.6 else _yy(y)
    dd = f"{d:02d}" if r.random() < 0.5 else str(d)
    mm = f"{m:02d}" if r.random() < 0.5 else str(m)
    if r.random() < 0.3:  # day first, unambiguous
        d = r.randint(13, 28)
        return f"{d}{sep}{mm}{sep}{year}"
    return f"{mm}{sep}{dd}{sep}{year}"


def _date_iso(r: random.Random) -> str:
    d, m, y = _day_month(r)
    sep = r.choice(["-", "/", "."])
    return f"{y}{sep}{m:02d}{sep}{d:02d}"


def _time_case(r: random.Random) -> Case:
    """A date with a clock time after it: the date is the identifier, the time is not."""
    d, m, y = _day_month(r)
    value = r.choice(
        [
            f"{m}/{d}/{y}",
            f"{m:02d}/{d:02d}/{_yy(y)}",
            f"{y}-{m:02d}-{d:02d}",
            f"{_mon(r, m)} {d}, {y}",
            f"{d} {_mon(r, m)} {y}",
            f"{d}-{_mon(r, m)}-{y}",
        ]
    )
    after = r.choice([" ", " at ", ", ", " @ ", "@"]) + _clock(r)
    carrier = r.choice(_DATE_CARRIERS)
    return _place("date-time", carrier.replace("{v}", "{v}" + after), value)


def _date_text(r: random.Random) -> str:
    d, m, y = _day_month(r)
    mon = _mon(r, m)
    return r.choice(
        [
            f"{mon} {d}, {y}",
            f"{mon} {d} {y}",
            f"{mon} {_ord(d)}, {y}",
            f"{mon} {_ord(d)} {y}",
            f"{d} {mon} {y}",
            f"{d} {mon}, {y}",
            f"{_ord(d)} {mon} {y}",
            f"{_ord(d)} of {mon}, {y}",
            f"{_ord(d)} of {mon} {y}",
            f"{d}-{mon}-{y}",
            f"{d:02d}-{mon}-{_yy(y)}",
            f"{d}/{mon}/{y}",
            f"{mon}-{d:02d}-{y}",
            f"{mon}/{d}/{y}",
            f"{y} {mon} {d}",
            f"{y}-{mon}-{d:02d}",
            f"{mon} {d}, '{_yy(y)}",
            f"{mon} the {_ord(d)}, {y}",
            f"{d}{mon[:3]}{y}",
            f"{mon}. {d}, {y}".replace("..", "."),
        ]
    )


def _weekday_case(r: random.Random) -> Case:
    """A weekday before a date: the date is the identifier, the weekday is not (as annotated)."""
    d, m, y = _day_month(r)
    wd = r.choice(_WEEKDAYS)
    wd = wd if r.random() < 0.5 else wd[:3]
    value = r.choice([f"{_mon(r, m)} {d}, {y}", f"{d} {_mon(r, m)} {y}", f"{m}/{d}/{y}"])
    return _place(
        "date-weekday",
        r.choice(["Seen {w}, {v}.", "Surgery on {w} {v} went well."]).replace("{w}", wd),
        value,
    )


def _date_partial(r: random.Random) -> str:
    d, m, y = _day_month(r)
    mon = _mon(r, m)
    return r.choice(
        [
            f"{mon} {d}",
            f"{mon} {_ord(d)}",
            f"{d} {mon}",
            f"{_ord(d)} of {mon}",
            f"{mon} {y}",
            f"{mon}, {y}",
            f"{mon} of {y}",
            f"{mon} '{_yy(y)}",
            f"{m}/{y}",
            f"{m:02d}/{y}",
            f"{m:02d}-{y}",
            f"{y}-{m:02d}",
        ]
    )


def _date_short_numeric(r: random.Random) -> str:
    d, m, _ = _day_month(r)
    d = r.randint(11, 28)  # "3/14": fractions and scores have small second numbers
    return r.choice([f"{m}/{d}", f"{m:02d}/{d:02d}"])


def _date_range(r: random.Random) -> str:
    d, m, y = _day_month(r)
    e = min(28, d + r.randint(1, 9))
    mon = _mon(r, m)
    return r.choice(
        [
            f"{m}/{d}-{m}/{e}",
            f"{m}/{d}/{y}-{m}/{e}/{y}",
            f"{m}/{d}/{y} - {m}/{e}/{y}",
            f"{mon} {d}-{e}, {y}",
            f"{mon} {d} - {e}, {y}",
            f"{d}-{e} {mon} {y}",
            f"{mon} {d} to {mon} {e}, {y}",
            f"{m}/{d} to {m}/{e}",
            f"{m}/{d} through {m}/{e}/{y}",
        ]
    )


_YEAR_CARRIERS = [
    "diagnosed in {v}, treated with surgery.",
    "s/p appendectomy {v}.",
    "Lives alone since {v}.",
    "Last colonoscopy ({v}) was normal.",
    "She quit smoking in {v}.",
    "History of MI in {v} and stents.",
    "Hysterectomy, {v}.",
    "Back in {v} he had a stroke.",
]


# ------------------------------------------------------------------ phones


def _nanp(r: random.Random) -> tuple[str, str, str]:
    return str(r.randint(201, 989)), str(r.randint(200, 999)), f"{r.randint(0, 9999):04d}"


def _phone_us(r: random.Random) -> str:
    a, b, c = _nanp(r)
    return r.choice(
        [
            f"({a}) {b}-{c}",
            f"({a}){b}-{c}",
            f"{a}-{b}-{c}",
            f"{a}.{b}.{c}",
            f"{a} {b} {c}",
            f"{a}{b}{c}",
            f"1-{a}-{b}-{c}",
            f"1 ({a}) {b}-{c}",
            f"+1 {a} {b} {c}",
            f"+1-{a}-{b}-{c}",
            f"+1 ({a}) {b}-{c}",
            f"+1.{a}.{b}.{c}",
            f"{a}/{b}-{c}",
            f"({a}) {b} {c}",
            f"{a} - {b} - {c}",
            f"{a}\u2013{b}\u2013{c}",
            f"{a}- {b}- {c}",
            f"{a} -{b}- {c}",
        ]
    )


def _phone_ext(r: random.Random) -> str:
    a, b, c = _nanp(r)
    ext = str(r.randint(1, 99999))
    base = r.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{b}-{c}"])
    return base + r.choice(
        [
            f" x{ext}",
            f" x {ext}",
            f" ext. {ext}",
            f" ext {ext}",
            f" Ext.{ext}",
            f"x{ext}",
            f" extension {ext}",
            f", ext. {ext}",
            f" #{ext}",
        ]
    )


def _phone_intl(r: random.Random) -> str:
    d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
    return r.choice(
        [
            f"+44 20 {d(4)} {d(4)}",
            f"+44 (0)20 {d(4)} {d(4)}",
            f"+44 7{d(3)} {d(6)}",
            f"0044 20 {d(4)} {d(4)}",
            f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+33 (0)6 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+49 30 {d(8)}",
            f"+49 (0) 89 {d(3)} {d(4)}",
            f"+49-30-{d(7)}",
            f"+353 1 {d(3)} {d(4)}",
            f"+353 (0)1 {d(3)} {d(4)}",
            f"+91 {d(5)} {d(5)}",
            f"+91-{d(10)}",
            f"+61 2 {d(4)} {d(4)}",
            f"+61 4{d(2)} {d(3)} {d(3)}",
            f"+39 06 {d(4)} {d(4)}",
            f"+34 {d(3)} {d(3)} {d(3)}",
            f"+31 (0)20 {d(3)} {d(4)}",
            f"+48 {d(3)}-{d(3)}-{d(3)}",
            f"+55 11 9{d(4)}-{d(4)}",
            f"+52 55 {d(4)} {d(4)}",
            f"+81 3-{d(4)}-{d(4)}",
            f"+27 21 {d(3)} {d(4)}",
            f"+1 {d(3)}.{d(3)}.{d(4)}",
            f"00 33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+46 8 {d(3)} {d(2)} {d(2)}",
            f"+41 44 {d(3)} {d(2)} {d(2)}",
        ]
    )


def _phone_national(r: random.Random) -> str:
    d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
    return r.choice(
        [
            f"020 {d(4)} {d(4)}",
            f"0161 {d(3)} {d(4)}",
            f"07{d(3)} {d(6)}",
            f"(0{d(2)}) {d(4)} {d(4)}",
            f"0{d(1)} {d(2)} {d(2)} {d(2)} {d(2)}",
            f"0{d(1)}.{d(2)}.{d(2)}.{d(2)}.{d(2)}",
            f"030 {d(8)}",
            f"030-{d(7)}",
            f"(030) {d(7)}",
            f"01 {d(3)} {d(4)}",
            f"0{d(2)}-{d(3)} {d(4)}",
            f"0{d(4)} {d(6)}",
        ]
    )


def _phone_short(r: random.Random) -> str:
    _, b, c = _nanp(r)
    return r.choice([f"{b}-{c}", f"{b} {c}", f"{b}.{c}"])


_PHONE_CARRIERS = [
    "Call {v} with questions.",
    "Phone: {v}",
    "Tel. {v}",
    "tel: {v}",
    "Ph# {v}",
    "Ph: {v}",
    "Fax: {v}",
    "fax {v} attn records",
    "Cell {v}, evenings",
    "mobile no. {v}",
    "Daughter can be reached at {v}.",
    "Contact number: {v}",
    "Direct line {v}.",
    "Please phone {v} to reschedule.",
    "T: {v}",
    "F: {v}",
    "Home # {v}",
    "Wife ({v}) updated.",
    "Office: {v} / after hours {v2}",
    "Telephone number {v}.",
    "Emergency contact: son, {v}",
    "Callback {v}",
    "P: {v}",
    "Main switchboard {v}.",
    "Tel {v}, Fax {v2}",
    "Ph. {v}",
    "phone # {v}",
]

# ------------------------------------------------------------------ ids


def _digits(r: random.Random, k: int) -> str:
    return str(r.randint(1, 9)) + "".join(str(r.randint(0, 9)) for _ in range(k - 1))


def _id_value(r: random.Random) -> str:
    k = r.randint(6, 10)
    letters = "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(r.randint(1, 3)))
    return r.choice(
        [
            _digits(r, k),
            "00" + _digits(r, k - 2),
            f"{_digits(r, 3)}-{_digits(r, 3)}-{_digits(r, 3)}",
            f"{_digits(r, 2)}-{_digits(r, 6)}",
            f"{_digits(r, 3)} {_digits(r, 3)} {_digits(r, 4)}",
            f"{_digits(r, 4)}.{_digits(r, 4)}",
            f"{letters}{_digits(r, k)}",
            f"{letters}-{_digits(r, k)}",
            f"{letters}-{_digits(r, 2)}-{_digits(r, 5)}",
            f"{_digits(r, 4)}-{_digits(r, 6)}",
            f"{_digits(r, k)}{letters[0]}",
            f"{letters}{_digits(r, 2)}-{_digits(r, 5)}",
            f"{r.randint(2000, 2029)}-{_digits(r, 6)}",
        ]
    )


_ID_LABELS = [
    "MRN",
    "MRN:",
    "MRN #",
    "MR#",
    "MR #:",
    "Medical record number",
    "Medical Record No.",
    "Med Rec #",
    "Med. Rec. No.",
    "Record No.",
    "Record number:",
    "Hospital number",
    "Hosp #",
    "Patient ID:",
    "Pt ID",
    "Pt. ID",
    "Patient number",
    "Chart #",
    "Chart number",
    "Account #",
    "Acct #:",
    "Acct No.",
    "Account number",
    "Accession #",
    "Accession number:",
    "Acc #",
    "Acc. No.",
    "Encounter #",
    "Encounter ID",
    "Visit #",
    "Visit number",
    "CSN",
    "FIN:",
    "Member ID",
    "Member #",
    "Policy #",
    "Policy number",
    "Claim #",
    "Subscriber ID",
    "Insurance ID:",
    "Specimen #",
    "Specimen ID:",
    "Case #",
    "Case number",
    "Reference #",
    "Ref #",
    "Ref. No.",
    "ID #",
    "ID:",
    "ID No.",
    "Order #",
    "Requisition #",
    "Health card no.",
    "Unit number",
    "Registration no.",
    "Lab #",
    "Study #",
    "Exam #",
    "Report #",
    "Patient account",
    "Billing #",
    "Group #",
    "Enc. #",
    "Document ID",
    "License #",
    "Passport no.",
]


def _id_labelled(r: random.Random) -> tuple[str, str]:
    label = r.choice(_ID_LABELS)
    if r.random() < 0.2:
        label = label.upper()
    elif r.random() < 0.1:
        label = label.lower()
    return label, _id_value(r)


def _ssn(r: random.Random) -> str:
    a, g, s = r.randint(1, 665), r.randint(1, 99), r.randint(1, 9999)
    return r.choice(
        [f"{a:03d}-{g:02d}-{s:04d}", f"{a:03d} {g:02d} {s:04d}", f"{a:03d}.{g:02d}.{s:04d}"]
    )


# ------------------------------------------------------------------ ages, contacts, zip


def _age(r: random.Random) -> tuple[str, str]:
    """(template with {v} standing for the number, number)."""
    n = str(r.randint(90, 109))
    return r.choice(
        [
            "{v} yo",
            "{v}yo",
            "{v} y/o",
            "{v} y.o.",
            "{v}-year-old",
            "{v} year old",
            "{v}-yo",
            "{v} yr old",
            "{v} yrs old",
            "{v} years old",
            "{v} years of age",
            "aged {v}",
            "age {v}",
            "Age: {v}",
            "{v}M",
            "{v}F",
            "{v} M",
            "{v} F",
            "{v}-y/o",
            "{v} yoF",
            "{v} yoM",
            "({v} years)",
            "{v}-year old",
            "{v} y",
        ]
    ), n


def _email(r: random.Random) -> str:
    user = r.choice(["jdoe", "mary.k.smith", "r_patel+clinic", "ABC123", "o.neill-fam"])
    host = r.choice(
        ["example.org", "mail.example.co.uk", "hospital.example.com", "x-y.example.net"]
    )
    return f"{user}{r.randint(1, 99)}@{host}"


def _url(r: random.Random) -> str:
    return r.choice(
        [
            f"https://portal.example.org/patient/{r.randint(1000, 99999)}",
            f"http://example.com/records?id={r.randint(1000, 99999)}",
            f"www.example-clinic.org/{r.randint(10, 999)}",
            f"https://www.example.net/a/b-{r.randint(1, 99)}.html",
        ]
    )


def _ip(r: random.Random) -> str:
    return r.choice(
        [
            f"{r.randint(11, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
            f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}",
            f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
            f"2001:db8:{r.randint(1, 9999):x}::{r.randint(1, 999):x}",
        ]
    )


_STATES = ["MA", "NY", "CA", "TX", "OH", "WA", "Mass.", "Calif.", "Texas", "Ohio", "New York"]


def _zip(r: random.Random) -> tuple[str, str]:
    z = f"{r.randint(1001, 99950):05d}"
    if r.random() < 0.25:
        z += f"-{r.randint(0, 9999):04d}"
    town = r.choice(["Springfield", "Greenville", "Fairview", "Riverton", "Oakdale", "Milford"])
    return r.choice(
        [
            f"{town}, {r.choice(_STATES)} {{v}}",
            f"{town} {r.choice(_STATES)} {{v}}",
            f"{town}, {r.choice(_STATES)}, {{v}}",
            f"{town} {{v}} and can be reached by phone",
            f"Lives at 14 Mill Lane, {town} {{v}}, USA",
            f"Hauptweg 12, {{v}} {town}",
            f"{town}, {r.choice(['PR', 'GU', 'VI'])} {{v}}",
            "ZIP {v}",
            "Zip code: {v}",
            "zip {v}",
            "My zip code is {v}.",
            "postal code {v}",
        ]
    ), z


def _postcode(r: random.Random) -> str:
    """Other countries' postcodes, after a label."""
    d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
    up = lambda: r.choice("ABCEGHJKLMNPRSTVXY")  # noqa: E731
    return r.choice(
        [
            d(4),
            f"{d(2)}-{d(3)}",
            f"{d(3)} {d(2)}",
            f"{d(4)}-{d(3)}",
            f"{d(5)}-{d(3)}",
            f"{up()}{d(1)}{up()} {d(1)}{up()}{d(1)}",
            f"{up()}{up()}{d(1)} {d(1)}{up()}{up()}",
        ]
    )


# ------------------------------------------------------------------ assembly

_DATE_CARRIERS = [
    "Seen on {v} for follow-up.",
    "Admitted {v} with chest pain.",
    "DOB: {v}",
    "Date of birth {v}.",
    "Date of service: {v}",
    "Discharged {v}, stable.",
    "Last visit {v}; no changes.",
    "Surgery ({v}) was uneventful.",
    "Labs drawn {v} were normal.",
    "{v}: patient called about refills.",
    "Next appointment is {v}.",
    "Report dated {v}.",
    "MRI from {v} showed no change.",
    "Signed {v}",
]
_DATE_RANGE_CARRIERS = [
    "Inpatient stay {v} for pneumonia.",
    "Admitted from {v}.",
    "On vacation {v}, back after.",
    "Course of radiation {v}.",
]
_SHORT_CARRIERS = [
    "Seen on {v} for follow-up.",
    "Admitted {v} with chest pain.",
    "Labs drawn {v} were normal.",
    "Last visit {v}; no changes.",
    "CT from {v} unchanged.",
    "Follow up {v} in clinic.",
    "Started on lasix {v}.",
]


def _place(cls: str, carrier: str, value: str, **more: str) -> Case:
    start = carrier.index("{v}")
    text = (
        carrier.replace("{v}", value, 1).format(**more)
        if more
        else carrier.replace("{v}", value, 1)
    )
    return Case(cls, text, start, start + len(value))


Maker = Callable[[random.Random], Case]


def _date_case(cls: str, make: Callable[[random.Random], str], carriers: list[str]) -> Maker:
    return lambda r: _place(cls, r.choice(carriers), make(r))


def _phone_case(cls: str, make: Callable[[random.Random], str]) -> Maker:
    def build(r: random.Random) -> Case:
        carrier = r.choice(_PHONE_CARRIERS)
        return (
            _place(cls, carrier, make(r), v2=make(r))
            if "{v2}" in carrier
            else _place(cls, carrier, make(r))
        )

    return build


def _id_case(r: random.Random) -> Case:
    label, value = _id_labelled(r)
    sep = r.choice([" ", ": ", " ", "  ", " - ", "#"]) if not label.endswith((":", "#")) else " "
    carrier = r.choice(["{l}{s}{v}", "Pt {l}{s}{v}.", "{l}{s}{v}, see chart", "({l}{s}{v})"])
    head = carrier.split("{v}")[0].replace("{l}", label).replace("{s}", sep)
    text = head + value + carrier.split("{v}")[1]
    return Case("id-labelled", text, len(head), len(head) + len(value))


def _ssn_case(r: random.Random) -> Case:
    carrier = r.choice(["SSN {v}", "SSN: {v}", "Social Security No. {v}", "ss# {v}", "{v} (SSN)"])
    return _place("ssn", carrier, _ssn(r))


def _age_case(r: random.Random) -> Case:
    shape, n = _age(r)
    carrier = r.choice(
        ["Pt is a {a} with CHF.", "{a} admitted from home.", "HPI: {a}, fall at home.", "({a})"]
    )
    head = carrier.split("{a}")[0] + shape.split("{v}")[0]
    text = carrier.replace("{a}", shape.replace("{v}", n))
    return Case("age", text, len(head), len(head) + len(n))


def _zip_case(r: random.Random) -> Case:
    shape, z = _zip(r)
    carrier = r.choice(["{a}", "Lives at 12 Elm Road, {a}.", "Address: {a}\n"])
    head = carrier.split("{a}")[0] + shape.split("{v}")[0]
    text = carrier.replace("{a}", shape.replace("{v}", z))
    return Case("zip", text, len(head), len(head) + len(z))


def _year_case(r: random.Random) -> Case:
    return _place("date-year", r.choice(_YEAR_CARRIERS), str(r.randint(1940, 2025)))


CLASSES: dict[str, Maker] = {
    "date-numeric": _date_case("date-numeric", _date_numeric, _DATE_CARRIERS),
    "date-iso": _date_case("date-iso", _date_iso, _DATE_CARRIERS),
    "date-time": _time_case,
    "date-text": _date_case("date-text", _date_text, _DATE_CARRIERS),
    "date-weekday": _weekday_case,
    "date-partial": _date_case("date-partial", _date_partial, _SHORT_CARRIERS),
    "date-short-numeric": _date_case("date-short-numeric", _date_short_numeric, _SHORT_CARRIERS),
    "date-range": _date_case("date-range", _date_range, _DATE_RANGE_CARRIERS),
    "date-year": _year_case,
    "phone-us": _phone_case("phone-us", _phone_us),
    "phone-ext": _phone_case("phone-ext", _phone_ext),
    "phone-intl": _phone_case("phone-intl", _phone_intl),
    "phone-national": _phone_case("phone-national", _phone_national),
    "phone-short": _phone_case("phone-short", _phone_short),
    "id-labelled": _id_case,
    "ssn": _ssn_case,
    "age": _age_case,
    "email": lambda r: _place("email", r.choice(["Email {v}", "e-mail: {v}.", "<{v}>"]), _email(r)),
    "url": lambda r: _place("url", r.choice(["See {v} for forms.", "portal: {v}"]), _url(r)),
    "ip": lambda r: _place(
        "ip", r.choice(["Logged in from {v}.", "IP {v}", "host {v}:8080"]), _ip(r)
    ),
    "zip": _zip_case,
    "postcode-labelled": lambda r: _place(
        "postcode-labelled",
        r.choice(["Postcode: {v}", "postal code {v}", "ZIP: {v}"]),
        _postcode(r),
    ),
}


def cases(seed: int, per_class: int = 200) -> list[Case]:
    r = random.Random(seed)
    out = []
    for make in CLASSES.values():
        for _ in range(per_class):
            case = make(r)
            if r.random() < 0.1:
                case = Case(case.cls, case.text.upper(), case.start, case.end)
            out.append(case)
    return out


_CONNECTOR = re.compile(r"\b(?:to|through|thru|until|till)\b", re.IGNORECASE)


def covered(case: Case) -> bool:
    """Every letter and digit of the value lies inside some finding (the eval's rule), but
    the word joining the two ends of a range ("3/14 to 3/18") is not an identifier."""
    mask = bytearray(len(case.text))
    for f in merge(find_patterns(case.text)):
        mask[f.start : f.end] = b"\x01" * (f.end - f.start)
    for w in _CONNECTOR.finditer(case.text, case.start, case.end):
        mask[w.start() : w.end()] = b"\x01" * (w.end() - w.start())
    return all(mask[i] for i in range(case.start, case.end) if case.text[i].isalnum())


def recall_by_class(seed: int, per_class: int = 200) -> dict[str, tuple[float, list[str]]]:
    found: dict[str, list[bool]] = {}
    missed: dict[str, list[str]] = {}
    for case in cases(seed, per_class):
        ok = covered(case)
        found.setdefault(case.cls, []).append(ok)
        if not ok:
            missed.setdefault(case.cls, []).append(case.text)
    return {c: (sum(v) / len(v), missed.get(c, [])) for c, v in found.items()}


# ------------------------------------------------------------------ negatives


def _negatives(seed: int, n: int) -> list[str]:
    r = random.Random(seed)
    i = r.randint
    shapes = [
        lambda: f"Lasix {i(10, 80)} mg IV bid, K {i(3, 5)}.{i(0, 9)}",
        lambda: f"BP {i(90, 180)}/{i(40, 110)}, HR {i(50, 130)}, RR {i(10, 30)}",
        lambda: f"Pain {i(0, 10)}/10, strength {i(0, 5)}/5 in all extremities",
        lambda: f"Lesion measures {i(1, 9)}.{i(0, 9)} x {i(1, 9)}.{i(0, 9)} cm",
        lambda: f"Heparin gtt at {i(500, 1800)} units/hr, recheck PTT at {i(10, 23)}00",
        lambda: f"I/O {i(1000, 2500)}/{i(500, 2000)} cc",
        lambda: f"INR {i(1, 3)}.{i(0, 9)}, Hgb {i(7, 15)}.{i(0, 9)}, Plt {i(90, 450)}",
        lambda: f"Vent AC {i(400, 600)}/{i(10, 20)}/{i(5, 10)}/{i(30, 60)}%",
        lambda: f"Medtronic {r.choice(['Model', 'model'])} {i(5000, 5999)} pacemaker",
        lambda: f"{i(2, 4)}+ pitting edema, {i(1, 4)}/6 systolic murmur",
        lambda: f"EF {i(20, 60)}-{i(61, 70)}%",
        lambda: f"Gleason {i(3, 5)}+{i(3, 5)}, PSA {i(1, 20)}.{i(0, 9)}",
        lambda: f"Titrated O2 to {i(2, 6)} L, sats {i(88, 100)}%",
        lambda: f"G{i(1, 5)}P{i(0, 4)}, {i(20, 40)} weeks",
        lambda: f"L{i(1, 4)}-L{i(2, 5)} disc bulge, C{i(3, 6)}-C{i(4, 7)}",
        lambda: f"Insulin sliding scale {i(150, 200)}-{i(201, 250)}: {i(2, 6)} units",
        lambda: f"Tylenol {i(325, 650)} mg q{i(4, 8)}h prn",
        lambda: f"Glucose {i(70, 400)}, Na {i(130, 145)}, Cl {i(95, 110)}",
        lambda: f"ratio 1:{i(2, 1000)}, dilution 1:{i(10, 100)}",
        lambda: f"MAP {i(60, 90)}, CVP {i(5, 15)}, PAP {i(20, 50)}/{i(10, 25)}",
        lambda: f"Temp {i(96, 103)}.{i(0, 9)} F, weight {i(50, 120)}.{i(0, 9)} kg",
        lambda: f"{i(18, 22)}g IV in left AC, {i(14, 18)} Fr foley",
        lambda: f"TV {i(350, 600)}, PEEP {i(5, 12)}, FiO2 {i(30, 100)}%",
        lambda: f"Urine output {i(20, 90)}-{i(91, 150)} cc/hr",
        lambda: f"WBC {i(4, 20)}.{i(0, 9)} (ref 4.0-11.0)",
        lambda: f"GCS {i(3, 15)}, RASS -{i(1, 4)}, CAM negative",
        lambda: f"{i(2, 5)} of {i(6, 10)} cores positive, {i(10, 90)}%",
        lambda: f"Morphine {i(1, 4)}-{i(5, 8)} mg IV q{i(2, 4)}h",
        lambda: f"NYHA class {i(1, 4)}, {i(1, 3)}-vessel CAD",
        lambda: f"Visual acuity 20/{i(20, 200)} OD",
        lambda: f"Stent {i(2, 4)}.{i(0, 9)} x {i(8, 38)} mm to LAD",
        lambda: f"Fluid restriction {i(1000, 2000)} ml/day",
        lambda: f"{r.choice(['T', 'Temp', 'Tmax', 'temp', 'T:'])} {i(96, 104)} F, HR {i(60, 110)}",
        lambda: f"afebrile, Tmax {i(98, 101)}F overnight",
        lambda: f"Temp {i(97, 99)}-{i(100, 103)} F",
        lambda: (
            f"Quiet from {r.choice(['1900', '2000', '2100', '2200'])}-{r.choice(['2300', '0100'])}"
        ),
        lambda: (
            f"Visitors {r.choice(['1930', '2000', '1900'])}-{r.choice(['2030', '2100', '2130'])}"
        ),
        lambda: f"Heparin {i(10, 20)}00-{i(21, 30)}00 units",
        lambda: f"Zoll {r.choice(['M', 'R', 'X'])} Series {i(1990, 2020)} defibrillator checked",
        lambda: f"Medtronic model {i(2000, 2030)}-{i(10, 99)} lead",
        lambda: f"Medtronic {i(2000, 2030)}-{i(13, 99)} lead",
        lambda: f"Strength {i(3, 4)}/5 to 5/5, pain {i(2, 6)}/10 to {i(7, 9)}/10",
        lambda: f"BP {i(100, 120)}/{i(60, 70)} to {i(130, 160)}/{i(80, 99)}",
        lambda: f"Tylenol 1/2 to 1 tab, murmur {i(1, 2)}/6-{i(3, 4)}/6",
        lambda: f"O2 sat {i(88, 92)}-{i(93, 99)}% on {i(2, 4)}L",
        lambda: f"Weight {i(90, 140)} kg, height {i(150, 190)} cm",
        lambda: f"PEEP {i(5, 8)}-{i(9, 12)}, RR {i(10, 14)}-{i(15, 24)}",
        lambda: f"recheck in {i(1, 3)}-{i(4, 6)} weeks, q{i(2, 4)}-{i(6, 8)}h prn",
        lambda: f"no. of lesions {i(2, 9)}, no {i(10, 99)} Fr drain",
        lambda: f"Pt on {i(2, 6)} L NC, voided {i(100, 900)} ml",
        lambda: f"Ca {i(8, 10)}.{i(0, 9)}, Mg {i(1, 2)}.{i(0, 9)}, Phos {i(2, 4)}.{i(0, 9)}",
        lambda: f"{i(91, 99)}% RA, walked {i(91, 99)} m",
    ]
    return [r.choice(shapes)() for _ in range(n)]


# ------------------------------------------------------------------ tests

#: Floors per class (150 cases each), just under the minimum over 50 random seeds measured
#: 2026-11-28. What stays below 1.0 is left on purpose: a 7-digit number with no label and
#: a space ("son, 555 0134") reads like a count; "1/4 to 1/8" like fractions; "since 2000"
#: like a time.
FLOORS = {cls: 0.97 for cls in CLASSES} | {"phone-short": 0.9}


@pytest.fixture(scope="module")
def seed() -> int:
    return random.randrange(10**6)


def test_format_classes_reach_their_floors(seed: int) -> None:
    print(f"pattern variants seed {seed}")  # shown on failure
    for cls, (recall, missed) in recall_by_class(seed, 150).items():
        assert recall >= FLOORS[cls], (cls, recall, missed[:5])


def test_clinical_numbers_stay_untouched(seed: int) -> None:
    print(f"pattern variants seed {seed}")
    hit = [t for t in _negatives(seed, 1500) if find_patterns(t)]
    assert not hit, hit[:10]


def test_generator_is_reproducible_and_places_values() -> None:
    a, b = cases(3, 5), cases(3, 5)
    assert a == b and len(a) == 5 * len(CLASSES)
    assert all(c.value and c.value.strip() == c.value for c in a)


if __name__ == "__main__":  # a per-class table for a seed
    s = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    for cls, (rec, miss) in recall_by_class(s, per).items():
        print(f"{cls:20s} {rec:.3f}  {miss[:4]}")
    neg = [t for t in _negatives(s, 2000) if find_patterns(t)]
    print("negatives hit", len(neg), sorted({t for t in neg})[:20])
