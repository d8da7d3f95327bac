"""How identifiers are written in the fresh-data corpus: dates, phones, ids, ages.

Each function returns ``Piece``s: ``(text, category)`` where ``category`` names
the gold span (``None`` for surrounding words that are not the identifier, such
as a weekday, a label or "the" in "on the 4th"). The formats are chosen to be
many and varied on purpose, so that a detector built for one corpus's habits
shows its gaps.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

Piece = tuple[str, str | None]

MONTHS = (
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
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``22nd``."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _abbr(month: int, r: random.Random) -> str:
    name = MONTHS[month - 1]
    if month == 9 and r.random() < 0.3:
        return "Sept"
    return name[:3]


def random_date(r: random.Random, start: date, days: int) -> date:
    return start + timedelta(days=r.randrange(days))


def full_date(r: random.Random, d: date) -> str:
    """A date with day, month and year, in one of many spellings."""
    m, day, y, yy = d.month, d.day, d.year, d.year % 100
    mon = _abbr(m, r)
    dot = "" if mon == "May" else "."
    options = [
        f"{m}/{day}/{y}",
        f"{m:02d}/{day:02d}/{y}",
        f"{m:02d}-{day:02d}-{yy:02d}",
        f"{m}/{day}/{yy:02d}",
        f"{m}-{day}-{y}",
        f"{y}-{m:02d}-{day:02d}",
        f"{y}/{m:02d}/{day:02d}",
        f"{y}{m:02d}{day:02d}",
        f"{MONTHS[m - 1]} {day}, {y}",
        f"{MONTHS[m - 1]} {ordinal(day)}, {y}",
        f"{day} {MONTHS[m - 1]} {y}",
        f"{mon}{dot} {day}, {y}",
        f"{day:02d}-{mon}-{y}",
        f"{day:02d}-{mon.upper()}-{y}",
        f"{day}{mon.upper()}{y}",
        f"{day}.{m}.{y}",
        f"{day:02d}.{m:02d}.{yy:02d}",
        f"{ordinal(day)} {MONTHS[m - 1]} {y}",
        f"{day} {mon} {yy:02d}",
    ]
    return r.choice(options)


def partial_date(r: random.Random, d: date) -> list[Piece]:
    """A date written without its year, or as 'the 4th', or after a weekday."""
    m, day = d.month, d.day
    mon = _abbr(m, r)
    choice = r.randrange(9)
    if choice == 0:
        return [("the ", None), (ordinal(day), "DATE")]
    if choice == 1:
        return [(f"{WEEKDAYS[d.weekday()]}, ", None), (f"{MONTHS[m - 1]} {day}", "DATE")]
    text = [
        f"{m}/{day}",
        f"{MONTHS[m - 1]} {day}",
        f"{mon} {ordinal(day)}",
        f"{day} {MONTHS[m - 1]}",
        f"{ordinal(day)} of {MONTHS[m - 1]}",
        f"{mon}-{day:02d}",
        f"{m:02d}/{day:02d}",
    ][choice - 2]
    return [(text, "DATE")]


def any_date(r: random.Random, d: date) -> list[Piece]:
    """Mostly full dates, sometimes partial ones."""
    if r.random() < 0.7:
        return [(full_date(r, d), "DATE")]
    return partial_date(r, d)


def clock(r: random.Random) -> str:
    """A time of day (not an identifier on its own)."""
    h, m = r.randint(0, 23), r.randrange(0, 60, 5)
    return r.choice(
        [
            f"{h:02d}:{m:02d}",
            f"{h:02d}{m:02d}",
            f"{h % 12 or 12}:{m:02d} {'am' if h < 12 else 'PM'}",
            f"{h % 12 or 12}{'am' if h < 12 else 'pm'}",
        ]
    )


def date_time(r: random.Random, d: date) -> list[Piece]:
    """A date with a time of day; only the date is gold (a time alone is not PHI)."""
    sep = r.choice([" ", " at ", " @ ", ", ", "  "])
    return [(full_date(r, d), "DATE"), (sep + clock(r), None)]


def month_year(r: random.Random, d: date) -> list[Piece]:
    return [
        (
            r.choice(
                [
                    f"{MONTHS[d.month - 1]} {d.year}",
                    f"{_abbr(d.month, r)} {d.year}",
                    f"{d.month}/{d.year}",
                    f"{d.month:02d}/{d.year % 100:02d}",
                ]
            ),
            "DATE",
        )
    ]


# ------------------------------------------------------------------ numbers


def _area(r: random.Random) -> str:
    while True:
        a = f"{r.randint(2, 9)}{r.randint(0, 8)}{r.randint(0, 9)}"
        if a[1:] != "11":
            return a


def us_phone(r: random.Random) -> str:
    a, e, n = _area(r), f"{r.randint(2, 9)}{r.randint(0, 9)}{r.randint(0, 9)}", r.randint(0, 9999)
    line = f"{n:04d}"
    return r.choice(
        [
            f"({a}) {e}-{line}",
            f"({a}){e}-{line}",
            f"{a}-{e}-{line}",
            f"{a}.{e}.{line}",
            f"{a} {e} {line}",
            f"{a}{e}{line}",
            f"+1 {a} {e} {line}",
            f"+1-{a}-{e}-{line}",
            f"1-{a}-{e}-{line}",
            f"+1 ({a}) {e}-{line}",
            f"{e}-{line}",
        ]
    )


def intl_phone(r: random.Random) -> str:
    d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
    return r.choice(
        [
            f"+44 20 {d(4)} {d(4)}",
            f"07{d(3)} {d(6)}",
            f"+353 1 {d(3)} {d(4)}",
            f"+49 30 {d(8)}",
            f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+91 9{d(4)} {d(5)}",
            f"+52 55 {d(4)} {d(4)}",
            f"+39 06 {d(4)} {d(4)}",
            f"+48 22 {d(3)} {d(2)} {d(2)}",
            f"+31 20 {d(3)} {d(4)}",
            f"+55 11 9{d(4)}-{d(4)}",
        ]
    )


def phone(r: random.Random) -> str:
    """A phone or fax number, sometimes international, sometimes with an extension."""
    number = intl_phone(r) if r.random() < 0.12 else us_phone(r)
    if r.random() < 0.18:
        ext = str(r.randint(10, 99999))
        number += r.choice([f" x{ext}", f" ext. {ext}", f" ext {ext}", f" X{ext}", f" x.{ext}"])
    return number


def pager(r: random.Random) -> str:
    if r.random() < 0.3:
        return us_phone(r)
    return r.choice(
        [
            str(r.randint(10000, 99999)),
            f"{r.randint(1, 9)}-{r.randint(1000, 9999)}",
            f"#{r.randint(1000, 99999)}",
            str(r.randint(1000, 9999)),
        ]
    )


def _digits(r: random.Random, k: int) -> str:
    return "".join(str(r.randint(0, 9)) for _ in range(k))


def _letters(r: random.Random, k: int) -> str:
    return "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(k))


def mrn_value(r: random.Random) -> str:
    return r.choice(
        [
            _digits(r, 7),
            _digits(r, 8),
            "00" + _digits(r, 6),
            f"{_digits(r, 4)}-{_digits(r, 3)}",
            f"{_digits(r, 2)}-{_digits(r, 2)}-{_digits(r, 3)}",
            "E" + _digits(r, 7),
            "MR" + _digits(r, 6),
            "H" + _digits(r, 8),
            f"{_digits(r, 3)} {_digits(r, 4)}",
        ]
    )


def mrn(r: random.Random) -> list[Piece]:
    """An MRN with one of many labels (the label is not gold)."""
    label = r.choice(
        ["MRN ", "MRN: ", "MRN# ", "MR# ", "Med Rec No. ", "Unit No: ", "Hosp # ", "chart ", "#"]
    )
    return [(label, None), (mrn_value(r), "MRN")]


def account(r: random.Random) -> list[Piece]:
    label = r.choice(["Acct # ", "Account No. ", "FIN ", "CSN: ", "Visit # ", "Enc #", "HAR "])
    value = r.choice(
        [
            _digits(r, 10),
            "A" + _digits(r, 9),
            f"{_digits(r, 5)}-{_digits(r, 4)}",
            "V" + _digits(r, 8),
            f"{_digits(r, 3)}{_letters(r, 1)}{_digits(r, 5)}",
        ]
    )
    return [(label, None), (value, "ACCOUNT")]


def accession(r: random.Random) -> str:
    yy = r.randint(15, 26)
    return r.choice(
        [
            f"RAD-{yy}-{_digits(r, 6)}",
            "CT" + _digits(r, 8),
            f"{yy}-{_digits(r, 7)}",
            "ACC" + _digits(r, 7),
            f"S{yy}-{_digits(r, 5)}",
            f"MR{yy}{_digits(r, 6)}",
        ]
    )


def member_id(r: random.Random) -> str:
    return r.choice(
        [
            _letters(r, 3) + _digits(r, 9),
            "W" + _digits(r, 9),
            f"{r.randint(1, 9)}{_letters(r, 2)}{r.randint(0, 9)}-{_letters(r, 1)}{_digits(r, 2)}"
            f"-{_letters(r, 2)}{_digits(r, 2)}",
            _digits(r, 9) + r.choice("ABCDT"),
            f"{_letters(r, 2)}{_digits(r, 5)}{_letters(r, 1)}",
        ]
    )


def ssn(r: random.Random) -> str:
    while True:
        area = r.randint(1, 899)
        if area != 666:
            break
    a, g, s = f"{area:03d}", f"{r.randint(1, 99):02d}", f"{r.randint(1, 9999):04d}"
    return r.choice([f"{a}-{g}-{s}", f"{a}-{g}-{s}", f"{a} {g} {s}", f"{a}{g}{s}"])
