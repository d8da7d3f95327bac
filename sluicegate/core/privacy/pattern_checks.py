"""Checks that a pattern's match is really an identifier: checksums and context.

A regex finds shapes; these decide. Card numbers need Luhn and an issuer
length, IBANs mod-97, SSNs the SSA's area rules. Numbers in clinical notes
are mostly vital signs, doses, scores and ventilator settings, so the date
and phone checks read the words around a match ("BP 120/80", "PS 5/5",
"HR 100-112", "HOB 45'") and reject what reads as a measurement.
"""

from __future__ import annotations

import ipaddress
import re

_UNITS = (
    r"(?:\s?(?:ml|cc|mg|mcg|g|gm|kg|l|u|units?|iu|meq|mmol|kcal|cal|mm|cm|m|x|times|lbs?|"
    r"hrs?|min|sec|ft|in|cells|pts?|calls?)\b|\s?%)"
)


def luhn_ok(number: str) -> bool:
    """Luhn checksum of a digit string (card numbers)."""
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 12:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN (spaces allowed)."""
    s = re.sub(r"\s", "", value).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ssn_ok(value: str) -> bool:
    """SSA rules: area not 000/666/9xx, group not 00, serial not 0000."""
    d = re.sub(r"\D", "", value)
    if len(d) != 9:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area in {"000", "666"} or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return d not in {"123456789", "078051120", "219099999"}


def luhn_check(m: re.Match[str], text: str) -> bool:
    digits = re.sub(r"\D", "", m.group())
    n = len(digits)
    if digits[:2] in {"34", "37"}:
        ok_len = n == 15  # American Express
    elif digits[0] == "4":
        ok_len = n in (13, 16, 19)  # Visa
    elif digits[0] in "25" or digits[0] == "6":
        ok_len = n in (16, 19)  # Mastercard, Discover, UnionPay
    elif digits[:2] in {"30", "36", "38", "39"}:
        ok_len = n in (14, 16)  # Diners Club
    else:
        ok_len = False
    return ok_len and luhn_ok(digits)


def iban_check(m: re.Match[str], text: str) -> bool:
    return iban_ok(m.group())


def ssn_check(m: re.Match[str], text: str) -> bool:
    return ssn_ok(m.group("v") if m.groupdict().get("v") else m.group())


def ip_check(m: re.Match[str], text: str) -> bool:
    try:
        addr = ipaddress.ip_address(m.group())
    except ValueError:
        return False
    if addr.version == 4:
        # Version-like strings ("1.2.3.4") are too common to call addresses; a
        # blood gas runs on after a slash ("88/44/7.38.41.9").
        return not str(addr).startswith("0.") and text[m.start() - 1 : m.start()] != "/"
    return True


_NOT_DATE_BEFORE = re.compile(
    r"\b(?:pain|bp|b/p|gcs|score|strength|scale|ratio|rate|ie|i:e|peep|ps|psv|imv|simv|ips|a/c|"
    r"cpap|bipap|ventilat\w*|flowby|flow-by|fick|co/ci|ci|co|svr|"
    r"settings?|x|of|mmhg|grade|motor|power|rass|cam|braden|level|vol|tv|vt|fio2|sbp|dbp)"
    r"\s*[:=]?\s*$",
    re.IGNORECASE,
)


def short_date_check(m: re.Match[str], text: str) -> bool:
    """m/d without a year: reject pain scores, BP, murmurs and ventilator settings."""
    if text[m.start() - 1 : m.start()] in ("+", "-"):
        return False  # "+2/6" murmur, "-1/2": a signed value, not a date
    if m.group() in _FRACTIONS and not (
        _DATE_CONTEXT.search(text, max(0, m.start() - 24), m.start())
        and _CLAUSE_END.match(text, m.end())
    ):
        return False  # "1/2 NS", "3/4 of the tab"; but "seen on 1/3, when"
    first, second = (int(x) for x in m.group().split("/")[:2])
    score = _SCORE_BEFORE.search(text, max(0, m.start() - 12), m.start())
    if score and int(score.group("d")) == second:
        return False  # "strength 3/5 to 5/5", "pain 2/10 to 7/10": one scale
    if second in (5, 10) and first <= 10 and m.group()[0] != "0":  # "04/10" is a date
        # "5/10" pain, "5/5" strength or pressure support: a date only after a
        # date word ("on 5/10"), and not in a ventilator context ("on 10/5, 35%").
        if not _DATE_CONTEXT.search(text, max(0, m.start() - 24), m.start()) and not (
            _EVENT_AFTER.match(text, m.end())
            and not _SCORE_NEAR.search(text, max(0, m.start() - 40), m.start())
        ):
            return False
        if _VENT_NEAR.search(text, max(0, m.start() - 40), m.start()) or _VENT_AFTER.match(
            text, m.end()
        ):
            return False
    before = text[max(0, m.start() - 14) : m.start()]
    word = _NOT_DATE_BEFORE.search(before)
    if word and not (
        word.group().lower().startswith("of") and (second > 12 or m.group()[0] == "0")
    ):
        return False  # "strength of 4/5", but "letter of 11/20", "of 02/26"
    if _VENT_JUST_BEFORE.search(text, max(0, m.start() - 24), m.start()):
        return False
    return not _NOT_DATE_AFTER.match(text, m.end())


# After a date, an event's place or purpose: "arrest 6/5 transferred from", "OR 6/10 for a CABG".
_EVENT_AFTER = re.compile(
    r"\s+(?:at|transferred|admitted|discharged|for\s+(?:a|an|the|his|her|surgery))\b", re.I
)
_SCORE_NEAR = re.compile(
    r"\b(?:strength|motor|power|grip|pain|score|scale|mae|moves?|ext\w*|reflex\w*|murmur|sem"
    r"|gcs|rass|pupils?|perrla?|sats?|ps|peep|bp|hr)\b",
    re.IGNORECASE,
)


def _one_scale(a: str, b: str) -> bool:
    """'3/10' and '7/10', '4/5' and '5/5': two scores on one scale, not two dates."""
    da, db = a.rpartition("/")[2], b.rpartition("/")[2]
    return da == db and da in ("4", "5", "6", "10")


_SCORE_BEFORE = re.compile(r"\b\d{1,2}/(?P<d>4|5|6|10)\s*(?:-|to|or|and|&|thru|through)\s*$")


def context_date_check(m: re.Match[str], text: str) -> bool:
    """A date shape with no year check of its own ("09/12-09/14", "12/04.88"): context only."""
    parts = re.split(r"-", m.group())
    if any(part in _FRACTIONS for part in parts):
        return False  # "rales 1/4-1/2 up"
    if len(parts) == 2 and _one_scale(parts[0], parts[1]):
        return False  # "murmur 1/6-3/6"
    if _NOT_DATE_BEFORE.search(text, max(0, m.start() - 14), m.start()):
        return False
    if _VENT_JUST_BEFORE.search(text, max(0, m.start() - 24), m.start()):
        return False
    return not _NOT_DATE_AFTER.match(text, m.end())


def range_date_check(m: re.Match[str], text: str) -> bool:
    """'3/14 to 3/18': two month/day dates, not two scores or fractions ("4/5 to 5/5")."""
    parts = [m.group("a"), m.group("b")]
    if _NOT_DATE_BEFORE.search(text, max(0, m.start() - 14), m.start()):
        return False
    if _VENT_JUST_BEFORE.search(text, max(0, m.start() - 24), m.start()):
        return False
    if _NOT_DATE_AFTER.match(text, m.end()) or _AMOUNT_AFTER.match(text, m.end()):
        return False
    if any(p.count("/") == 2 for p in parts):
        return True  # a year on either side
    pairs = [tuple(int(x) for x in part.split("/")) for part in parts]
    if pairs[0][1] == pairs[1][1] and pairs[0][1] in (4, 5, 6, 10):
        return False  # one scale: "pain 3/10 to 5/10", "strength 4/5-5/5", "murmur 2/6-3/6"
    if all(part in _FRACTIONS for part in parts):
        return False  # "1/4 to 1/2 tab"
    if pairs[0][0] == pairs[1][0] and pairs[0][1] < pairs[1][1]:
        return True  # one month, days rising: "7/10 to 7/16"
    scoreish = any(
        part in _FRACTIONS or (second in (5, 6, 10) and first <= 10 and part[0] != "0")
        for part, (first, second) in zip(parts, pairs, strict=True)
    )
    return not scoreish or bool(_DATE_CONTEXT.search(text, max(0, m.start() - 24), m.start()))


def month_year4_check(m: re.Match[str], text: str) -> bool:
    """'4/2016', '08-1956', '2023-11': a month and a year, not a range ("10-2000 units")."""
    if _MODEL_BEFORE.search(text, max(0, m.start() - 12), m.start()):
        return False  # "model 2024-11": a device
    if "-" not in m.group():
        return context_date_check(m, text)
    if _AMOUNT_AFTER.match(text, m.end()):
        return False
    if _MEASURE_BEFORE.search(text, max(0, m.start() - 14), m.start()):
        return False
    return context_date_check(m, text)


def dashed_date_check(m: re.Match[str], text: str) -> bool:
    """'on 7-8': a month-day after a date word, not an amount ("on 2-3 L", "for 3-4 days")."""
    return not _NOT_DATE_AFTER.match(text, m.end()) and not _AMOUNT_AFTER.match(text, m.end())


_AMOUNT_AFTER = re.compile(
    r"\s?(?:l|lpm|liters?|litres?|days?|weeks?|wks?|months?|mos?|years?|yrs?|hours?|hrs?|min\w*"
    r"|times|x|occasions?|episodes?|doses?|tabs?|puffs?|units?|u|mg|mcg|g|ml|cc|meq|mmhg|beats?"
    r"|bpm|breaths?|liter|nc|cm|mm|kg|lbs?|pts?|points?|drops?|amps?|bags?|cups?|times)\b",
    re.IGNORECASE,
)


def ordinal_date_check(m: re.Match[str], text: str) -> bool:
    """'on the 18th showed', but without "the" only before punctuation or a linking word
    ("on 2nd bipap trial" counts trials)."""
    if re.search(r"\bthe\s", m.group(), re.IGNORECASE):
        return True
    return bool(_ORDINAL_END.match(text, m.end()))


_ORDINAL_END = re.compile(
    r"\s*(?:[,.;:)\]]|\Z|(?:for|at|and|or|to|with|when|in|of|was|were)\b)", re.IGNORECASE
)


def month_alone_check(m: re.Match[str], text: str) -> bool:
    """'in Sept', 'since March': "may" only as written "May" ("this may be" is a verb)."""
    return m.group("v").lower() != "may" or m.group("v") == "May"


_NOT_DATE_AFTER = re.compile(
    r"\s?(?:mm|cm|ml|mg|peep|ips|ps|cpap|psv|imv|simv|strength|pain|sem|hsm|murmur|systolic"
    r"|diastolic|holosystolic)\b|\s?%|/|\d",
    re.IGNORECASE,
)
# A ventilator mode right before, with only numbers between: "PSV .5%, 8/15".
_VENT_JUST_BEFORE = re.compile(
    r"\b(?:cpap|bipap|peep|psv?|imv|simv|fio2|a/c|prvc|vent)\b[\s\d.,:=%/+-]*$", re.IGNORECASE
)
_VENT_NEAR = re.compile(
    r"\b(?:abg|vent\w*|cpap|bipap|peep|psv?|fio2|trach\w*|wean\w*|sbt|rsbi|ett|intubat\w*"
    r"|extubat\w*|resp)\b",
    re.IGNORECASE,
)
_VENT_AFTER = re.compile(
    r"[\s,]*(?:\d+\s?%|peep|ps\b|psv|fio2|cpap|bipap|today|tonight|now\b)", re.IGNORECASE
)


_CLAUSE_END = re.compile(r"\s*(?:[,.;)]|\Z|(?:when|and|at|for|with)\b)", re.IGNORECASE)
_FRACTIONS = frozenset({"1/2", "1/3", "1/4", "2/3", "3/4", "1/8"})
_DATE_CONTEXT = re.compile(
    r"(?:\b(?:on|since|s/p|from|until|till|by|dated?|done|placed|started|admitted|x\d)"
    r"|\b\d{1,2}/\d{1,2}\s*(?:-|to|or|and|&|thru|through))\s*$",
    re.IGNORECASE,
)


def month_year_check(m: re.Match[str], text: str) -> bool:
    """m/yy ("8/87"): a date unless it reads as a score or a ratio."""
    return short_date_check(m, text) and int(m.group().split("/")[1]) > 31


# "@ 2000", "at 1930": a time whatever the minutes.
_TIME_BEFORE = re.compile(
    r"(?:@|>|~|\bat|\bdue|\baround|\babout|\bapprox\.?|\bapproximately)\s*$", re.IGNORECASE
)


def year_check(m: re.Match[str], text: str) -> bool:
    """A year, not a 24-hour time ("@ 2000", "approx 1945"), a lab value or a volume."""
    after = text[m.end() : m.end() + 12]
    if re.match(_UNITS, after, re.IGNORECASE) or after.startswith("+"):
        return False
    value = m.group()
    if _MODEL_BEFORE.search(text, max(0, m.start() - 12), m.start()):
        return False  # "Series 2000", "model 1990": a device, not a year
    if len(value) > 4:  # a span: "2018-2019", "1998-99"
        return _year_span_check(value, m, text)
    if _LAB_BEFORE.search(text, max(0, m.start() - 16), m.start()):
        return False  # "CK 1940", "BS 1900"
    # 1900-2359 is also a 24-hour clock time: "@ 2000", "from 1900 to 2100".
    clock = int(value[2:]) < 60 and int(value) >= 1900
    # On the hour or half hour ("2000 pt asleep", "since 2000"): a time, unless
    # a year word comes first ("in 2000", "born 1930", "followed since 2000",
    # "(2000)"); other minutes after "since/until" read as a year ("since 2017").
    on_the_hour = value[2:] in ("00", "30")
    year_context = text[m.start() - 1 : m.start()] == "(" or _YEAR_BEFORE.search(
        text, max(0, m.start() - 40), m.start()
    )
    if clock and (
        _TIME_BEFORE.search(text[max(0, m.start() - 14) : m.start()])
        or _TIME_AFTER.match(after)
        or (on_the_hour and not year_context)
    ):
        return False
    before = text[max(0, m.start() - 3) : m.start()]
    return not re.search(r"[-+x*/=:.]\s?$", before)


def _year_span_check(value: str, m: re.Match[str], text: str) -> bool:
    """'2018-2019': rising by at most 30 years, not a range of times ("1900-2100") or amounts."""
    first, second = (int(x) for x in re.findall(r"\d+", value))
    if second < 100:  # "1998-99": after a year word only ("Medtronic 2022-30" is a model)
        if not _YEAR_BEFORE.search(text, max(0, m.start() - 40), m.start()):
            return False
        second += first - first % 100
    if not 0 < second - first <= 30 or _AMOUNT_AFTER.match(text, m.end()):
        return False
    if _LAB_BEFORE.search(text, max(0, m.start() - 16), m.start()):
        return False
    clocks = all(v % 100 in (0, 15, 30, 45) and v >= 1900 for v in (first, second))
    if clocks and not _YEAR_BEFORE.search(text, max(0, m.start() - 40), m.start()):
        return False  # "1900-2100", "from 2000-2030": times unless a year word comes first
    return not re.search(r"[-+x*/=:.]\s?$", text[max(0, m.start() - 3) : m.start()])


_MODEL_BEFORE = re.compile(
    r"\b(?:model|series|version|ver|type|mark|mk|gen|generation|system|catalog|cat|lot|ref)"
    r"\.?\s*(?:no\.?|#)?\s*$",
    re.IGNORECASE,
)
_TIME_AFTER = re.compile(
    r"\s?(?:hrs?|h|hours)\b|\s*(?:-|to|until|till|thru)\s*(?:\d{4}|\d{1,2}:\d{2})\b", re.IGNORECASE
)
_YEAR_BEFORE = re.compile(
    r"\b(?:in|of|year|yr|dated?|circa|c\.|during|early|late|mid|summer|winter|spring|fall|born|b\."
    r"|autumn|jan\w*|feb\w*|mar\w*|apr\w*|may|june?|july?|aug\w*|sep\w*|oct\w*|nov\w*|dec\w*"
    r"|mi|cva|cabg|dx|s/p|hx|pmh|ca)[\s,.'-]*$"
    r"|\b(?:followed|known|seen|treated|managed|diagnosed|had|has|lived|living|retired|married"
    r"|worked|smoked|quit|sober|disabled)\b[\w ]{0,24}\bsince\s*$",
    re.IGNORECASE,
)
_LAB_BEFORE = re.compile(
    r"\b(?:cpks?|cks?|ck-?mb|plts?|platelets?|wbc|hct|hgb|glucose|bs|fs|fsbs|bun|cr|ldh|ast|alt"
    r"|inr|ptt|amylase|lipase|trop\w*|output|uo|intake|i/o|u/o|dumped|drained|ngt|voided)"
    r"\s*(?:was|is|of|=|:)?\s*$",
    re.IGNORECASE,
)


def two_digit_year_check(m: re.Match[str], text: str) -> bool:
    """'in 94': a year, not a unit, a time, a vent setting or a vital sign ("HR in 70")."""
    after = text[m.end() : m.end() + 12]
    if re.match(_UNITS, after, re.IGNORECASE) or _NOT_YEAR_AFTER.match(after):
        return False
    return not _VITAL_BEFORE.search(text, max(0, m.start() - 24), m.start())


_NOT_YEAR_AFTER = re.compile(
    r"\s?(?:am|pm|a\.m|p\.m|hrs?|h|ps|peep|fio2|psv|imv|simv|cpap|bpm|beats|lpm|l|mmhg|av|nsr|st"
    r"|sr|afib|paced|degrees?|deg|days?|d|weeks?|wks?|months?|mos?|years?|yrs?|hours?|minutes?"
    r"|mins?)\b|\s?['%/]",
    re.IGNORECASE,
)
# A vital sign earlier in the same clause: "HR holding in 80", "sats in 90".
_VITAL_BEFORE = re.compile(
    r"\b(?:hr|heart rate|bp|sbp|map|rr|resp rate|sats?|spo2|o2 sat|temp|cvp|pad|pas|ci|co|rate"
    r"|remains?|remained|maintained|kept)\b[^.;:!?]*$",
    re.IGNORECASE,
)


def national_phone_check(m: re.Match[str], text: str) -> bool:
    """National format ("0688 872 49 99", "04.72.33.18.95"): trunk 0, grouped, 9-12 digits."""
    if re.fullmatch(r"\d{3}-\d{2}-\d{4}", m.group()):
        return False  # the layout of an SSN (the SSN pattern judges it)
    digits = len(re.sub(r"\D", "", _EXTENSION.sub("", m.group())))
    if m.group("intl"):  # "0044 20 7946 0958": 00, country code, number
        return 9 <= digits <= 15 and m.group().count(".") != 1
    return 9 <= digits <= 12


#: Words that never sit between a house number and a street suffix: units, verbs, prepositions.
_NOT_IN_STREET = frozenset(
    [
        "in",
        "not",
        "by",
        "to",
        "at",
        "of",
        "on",
        "for",
        "with",
        "and",
        "or",
        "is",
        "was",
        "given",
        "mg",
        "mcg",
        "meq",
        "mmol",
        "ml",
        "cc",
        "hr",
        "hrs",
        "units",
        "u",
        "range",
        "place",
        "iv",
        "po",
        "sq",
        "pr",
        "gtt",
        "bid",
        "tid",
        "qd",
        "prn",
        "amps",
        "amp",
        "tabs",
        "tab",
        "way",
        "per",
        "beat",
        "beats",
        "runs",
        "run",
        "episodes",
        "episode",
        "times",
        "rate",
        "peep",
        "sats",
        "sat",
        "wedge",
        "fio2",
        "hr",
        "bp",
        "rr",
        "tv",
        "ps",
        "cpap",
        "pressure",
        "volume",
        "nsr",
        "wo",
        "from",
        "the",
        "am",
        "pm",
        "cm",
        "mm",
        "day",
        "days",
        "dr",
        "mr",
        "mrs",
        "ms",
    ]
)


_APT_TAIL = re.compile(r",?\s*(?:apt|suite|ste|unit|#)\.?\s*\w+$", re.IGNORECASE)


def street_check(m: re.Match[str], text: str) -> bool:
    """Words between the number and the street type: names, not units, verbs or a sentence end
    (an apartment after the street type, "Apt. 702", is not between)."""
    words = m.group().split()
    core = _APT_TAIL.sub("", m.group()).split()
    inner = (core if len(core) >= 3 else words)[1:-1]
    if any(w.endswith(".") and len(w) > 2 for w in inner):
        return False  # a sentence ends inside: "5 BEAT RUNS VT. DR."
    words = [w.strip(".,'").lower() for w in inner]
    return not any(w in _NOT_IN_STREET or w.isdigit() for w in words)


def phone_check(m: re.Match[str], text: str) -> bool:
    """7-15 digits, not counting an extension; not a decimal or a blood gas."""
    digits = re.sub(r"\D", "", _EXTENSION.sub("", m.group()))
    if re.search(r"\.\d{1,2}$", m.group()) or text[m.end() : m.end() + 1] == "/":
        return False  # a decimal ("102-102.4") or a blood gas ("7.40/55")
    return 7 <= len(digits) <= 15


_EXTENSION = re.compile(r",?\s?(?:x|ext(?:ension)?|#)\.?\s?\d{1,6}$", re.IGNORECASE)
_MEASURE_BEFORE = re.compile(
    r"\b(?:svr|pvr|hr|tv|vt|bp|co|ci|temps?|range|in the|plt|wbc|rate|improved to|of)\s*:?\s*$",
    re.IGNORECASE,
)


def dashed_phone_check(m: re.Match[str], text: str) -> bool:
    """555-0100 or 555.0100, not a range of values ("SVR 954-1183", "HR 100-112", "IS 850-1500")."""
    if m.group().lstrip("(")[0] in "01":
        return False  # no NANP exchange starts with 0 or 1
    low, _, high = re.sub("[\u2013.]", "-", m.group()).strip("()").partition("-")
    if high.isdigit() and low.isdigit() and int(high) % 50 == 0 and int(low) < int(high):
        return False  # a range ending on a round number: "650-1000 ml", "850-1500"
    if re.match(_UNITS, text[m.end() : m.end() + 8], re.IGNORECASE):
        return False
    return not _MEASURE_BEFORE.search(text, max(0, m.start() - 14), m.start())


def grouped_phone_check(m: re.Match[str], text: str) -> bool:
    """Three digit groups, 10-12 digits ("(412 388 90215)"), not a list of round values."""
    groups = re.findall(r"\d+", _EXTENSION.sub("", m.group()))
    if not 10 <= sum(len(g) for g in groups) <= 12 or all(g.endswith("0") for g in groups):
        return False  # "1000 1200 1400" intake, not a number to call
    return not _MEASURE_BEFORE.search(text, max(0, m.start() - 14), m.start())


def zip_after_place_check(m: re.Match[str], text: str) -> bool:
    """A five-digit number ending an address line ("Maplewood 30341."), not a lab value."""
    before = text[max(0, m.start() - 30) : m.start()].split()
    word = before[-1].strip(",").lower() if before else ""
    return word.isalpha() and word not in _NOT_PLACE_WORDS


def _words(text: str) -> list[str]:
    return text.split()


#: U.S. states, territories and military codes; state names and their AP abbreviations.
_STATES = _words(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH"
    " NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI AA AE AP FM"
    " MH PW"
)
_STATE_NAMES = _words(
    "Alabama Alaska Arizona Arkansas California Colorado Connecticut Delaware Florida Georgia"
    " Hawaii Idaho Illinois Indiana Iowa Kansas Kentucky Louisiana Maine Maryland Massachusetts"
    " Michigan Minnesota Mississippi Missouri Montana Nebraska Nevada Ohio Oklahoma Oregon"
    " Pennsylvania Tennessee Texas Utah Vermont Virginia Washington Wisconsin Wyoming"
    " Ala. Ariz. Ark. Calif. Colo. Conn. Del. Fla. Ga. Ill. Ind. Kan. Kans. Ky. La. Md. Mass."
    " Mich. Minn. Miss. Mo. Mont. Neb. Nebr. Nev. Okla. Ore. Pa. Tenn. Tex. Vt. Va. Wash. Wis."
    " Wyo. N.H. N.J. N.M. N.Y. N.C. N.D. R.I. S.C. S.D. W.Va."
)
_STATE_NAMES += ["New Hampshire", "New Jersey", "New Mexico", "New York", "North Carolina"]
_STATE_NAMES += ["North Dakota", "Rhode Island", "South Carolina", "South Dakota", "West Virginia"]
_STATE_BEFORE = re.compile(
    r"\b(?:"
    + "|".join(
        re.escape(w)
        for w in sorted({*_STATES, *_STATE_NAMES, *(n.upper() for n in _STATE_NAMES)}, key=len)[
            ::-1
        ]
    )
    + r"),?\s+$"
)


def zip_state_check(m: re.Match[str], text: str) -> bool:
    """'MA 02115', 'Mass. 02115', 'New York, 10001': five digits right after a state."""
    return _STATE_BEFORE.search(text, max(0, m.start() - 24), m.start()) is not None


def zip_before_place_check(m: re.Match[str], text: str) -> bool:
    """', 33811 Lüneburg': five digits between a comma and a town name, not an amount."""
    after = text[m.end() : m.end() + 30].split()
    word = after[0].strip(",.;").lower() if after else ""
    return word not in _NOT_PLACE_WORDS and not _AMOUNT_AFTER.match(text, m.end())


_NOT_PLACE_WORDS = frozenset(
    [
        "plt",
        "plts",
        "platelets",
        "wbc",
        "count",
        "counts",
        "glucose",
        "bs",
        "fs",
        "total",
        "intake",
        "output",
        "uo",
        "drained",
        "volume",
        "dose",
        "units",
        "unit",
        "mcg",
        "mg",
        "ml",
        "cc",
        "iu",
        "was",
        "is",
        "of",
        "to",
        "at",
        "about",
        "approx",
        "estimated",
        "est",
        "weight",
    ]
)


def year_apostrophe_check(m: re.Match[str], text: str) -> bool:
    """'92 or 92': a year, but "HOB 45'" (degrees), "walked 50'" (feet), "60-70'" are not."""
    if not m.group("w"):
        return True
    return not _NOT_YEAR_APOSTROPHE.search(text, max(0, m.start() - 14), m.start())


_NOT_YEAR_APOSTROPHE = re.compile(
    r"(?:\d\s?-\s?|\b(?:hob|x|ambulated|ambulating|amb|walked|elevated|up|about|approx|hr|rr"
    r"|bp|sats?|at|to|of|~)\s*)$",
    re.IGNORECASE,
)


def hash_id_check(m: re.Match[str], text: str) -> bool:
    """'#63-40-218': a number after "#" is an id from five digits on ("#2", "#18g" are not),
    unless a phone word labels it ("pager #54321")."""
    if _PHONE_WORD_BEFORE.search(text, max(0, m.start() - 12), m.start()):
        return False
    return sum(c.isdigit() for c in m.group("v")) >= 5


_PHONE_WORD_BEFORE = re.compile(
    r"\b(?:pager|beeper|pgr|pg|page|paged|phone|ph|tel|fax|cell|mobile|ext|x|bp|call)\s*$",
    re.IGNORECASE,
)


def lettered_id_check(m: re.Match[str], text: str) -> bool:
    """'S21-40917', 'ACC7730192': letters and at least five digits."""
    return sum(c.isdigit() for c in m.group()) >= 5


def labelled_id_check(m: re.Match[str], text: str) -> bool:
    """An id after a label holds at least three digits ("ID: ABX-48" is infectious disease),
    five if it has a dot ("ID: 98.9" is a temperature)."""
    value = m.group("v")
    return sum(c.isdigit() for c in value) >= (5 if "." in value else 3)


def numbered_id_check(m: re.Match[str], text: str) -> bool:
    """'Health card no. 0048213': five digits or more after a number word, not a phone
    number ("contact number 555 0100"), a model or a lot number."""
    if sum(c.isdigit() for c in m.group("v")) < 5:
        return False
    return not _NOT_ID_BEFORE.search(text, max(0, m.start() - 16), m.start())


_NOT_ID_BEFORE = re.compile(
    r"\b(?:pager|beeper|phone|ph|tel|telephone|fax|cell|mobile|contact|call\w*|line|model|lot"
    r"|catalog|cat|part|version|ver|rev|size|room|rm|bed)\.?\s*$",
    re.IGNORECASE,
)


def age_check(m: re.Match[str], text: str) -> bool:
    """'94 F' is an age and a sex; 'T 99 F', 'temp 99F', '97-99 F', '2.99 M' are not."""
    if not m.group("sex"):
        return True  # "94 yo", "101-year-old"
    if text[m.start() - 1 : m.start()] in (".", ",", "/", ":", "-"):
        return False
    if _TEMP_BEFORE.search(text, max(0, m.start() - 20), m.start()):
        return False
    return not _TEMP_AFTER.match(text, m.end())


_TEMP_BEFORE = re.compile(
    r"(?:\b(?:t|tc|tm|tmax|tmx|temps?|temperature|febrile|afebrile|fever|spiked|oral|rectal"
    r"|axillary|core|max|to|of|at|up|down|between|from)\b[\s:=]*(?:was|is|of|to)?\s*"
    r"|[\d.]\s*(?:-|to)\s*)$",
    re.IGNORECASE,
)
_TEMP_AFTER = re.compile(r"\s*(?:\(|ax|axillary|oral|orally|po|pr|rectal|tympanic|temp)", re.I)
