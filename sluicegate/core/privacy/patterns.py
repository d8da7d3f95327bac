"""Pattern recognizers: identifiers with a recognizable shape, checked where a check exists.

Each pattern is a compiled regex plus an optional validator (Luhn, IBAN
mod-97, SSN area rules, IP ranges, context words); a pattern with a capture
group ``v`` reports only that group (e.g. the number after "MRN:").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sluicegate.core.privacy.findings import Finding, Kind

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_ORD = r"(?:st|nd|rd|th)"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MON_NUM = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:(?:19|20)\d{2})"
_TIME = r"(?:[T ]?\s?\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s?[ap]\.?m\.?)?(?:Z|[+-]\d{2}:?\d{2})?)"
_CLOCK = r"(?:,?\s+(?:at\s+)?\d{1,2}:\d{2}(?::\d{2})?\s?(?:[ap]\.?m\.?)?(?![\w:]))?"
_UNITS = (
    r"(?:\s?(?:ml|cc|mg|mcg|g|gm|kg|l|u|units?|iu|meq|mmol|kcal|cal|mm|cm|m|%|x|times|lbs?|"
    r"hrs?|min|sec|ft|in|cells|pts?|calls?))\b"
)


@dataclass(frozen=True)
class Pattern:
    """One recognizer: name for docs/tests, kind reported, regex, optional check."""

    name: str
    kind: Kind
    regex: re.Pattern[str]
    check: Callable[[re.Match[str], str], bool] | None = None


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


def _luhn_check(m: re.Match[str], text: str) -> bool:
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


def _iban_check(m: re.Match[str], text: str) -> bool:
    return iban_ok(m.group())


def _ssn_check(m: re.Match[str], text: str) -> bool:
    return ssn_ok(m.group("v") if m.groupdict().get("v") else m.group())


def _ip_check(m: re.Match[str], text: str) -> bool:
    try:
        addr = ipaddress.ip_address(m.group())
    except ValueError:
        return False
    if addr.version == 4:
        # Version-like strings ("1.2.3.4") are too common to call addresses.
        return not str(addr).startswith("0.")
    return True


_NOT_DATE_BEFORE = re.compile(
    r"\b(?:pain|bp|b/p|gcs|score|strength|scale|ratio|rate|ie|i:e|peep|ps|psv|imv|simv|ips|a/c|"
    r"cpap|bipap|ventilat\w*|flowby|flow-by|fick|co/ci|ci|co|svr|"
    r"settings?|x|of|mmhg|grade|motor|power|rass|cam|braden|level|vol|tv|vt|fio2|sbp|dbp)"
    r"\s*[:=]?\s*$",
    re.IGNORECASE,
)


def _short_date_check(m: re.Match[str], text: str) -> bool:
    """m/d without a year: reject pain scores, BP and ventilator settings."""
    if m.group() in _FRACTIONS:
        return False
    first, second = (int(x) for x in m.group().split("/")[:2])
    if (
        second in (5, 10)
        and first <= 10
        and not _DATE_CONTEXT.search(text, max(0, m.start() - 24), m.start())
    ):
        return False  # "5/10" pain, "5/5" strength or pressure support, unless "on 5/10"
    before = text[max(0, m.start() - 14) : m.start()]
    if _NOT_DATE_BEFORE.search(before):
        return False
    after = text[m.end() : m.end() + 8]
    return not re.match(
        r"\s?(?:mm|cm|ml|mg|%|peep|ips|ps|cpap|psv|imv|simv|strength|pain)\b|/|\d",
        after,
        re.IGNORECASE,
    )


_FRACTIONS = frozenset({"1/2", "1/3", "1/4", "2/3", "3/4", "1/8"})
_DATE_CONTEXT = re.compile(
    r"(?:\b(?:on|since|s/p|from|until|till|by|dated?|done|placed|started|admitted|x\d)"
    r"|\b\d{1,2}/\d{1,2}\s*(?:-|to|or|and|&|thru|through))\s*$",
    re.IGNORECASE,
)


def _month_year_check(m: re.Match[str], text: str) -> bool:
    """m/yy ("8/87"): a date unless it reads as a score or a ratio."""
    return _short_date_check(m, text) and int(m.group().split("/")[1]) > 31


_TIME_BEFORE = re.compile(
    r"(?:@|>|\bat|\bby|\bdue|\buntil|\btill|\baround|\bfrom|\bto|\bsince|\bbefore|\bafter|-)\s*$",
    re.IGNORECASE,
)


def _year_check(m: re.Match[str], text: str) -> bool:
    after = text[m.end() : m.end() + 8]
    if re.match(_UNITS, after, re.IGNORECASE):
        return False
    value = m.group()
    # 1900-2359 is also a 24-hour clock time: "@ 2000", "from 1900 to 2100".
    clock = int(value[2:]) < 60 and int(value) >= 1900
    if clock and (
        _TIME_BEFORE.search(text[max(0, m.start() - 8) : m.start()])
        or re.match(r"\s?(?:hrs?|h|hours|-|to)\b", after, re.IGNORECASE)
    ):
        return False
    before = text[max(0, m.start() - 3) : m.start()]
    return not re.search(r"[-+x*/=:.]\s?$", before)


def _two_digit_year_check(m: re.Match[str], text: str) -> bool:
    after = text[m.end() : m.end() + 8]
    return not re.match(_UNITS, after, re.IGNORECASE) and not re.match(
        r"\s?(?:am|pm|a\.m|p\.m|hrs?|h)\b", after, re.IGNORECASE
    )


def _national_phone_check(m: re.Match[str], text: str) -> bool:
    """National format ("0688 872 49 99"): trunk 0, space-grouped, 9-12 digits."""
    return 9 <= len(re.sub(r"\D", "", m.group())) <= 12


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
    ]
)


def _street_check(m: re.Match[str], text: str) -> bool:
    inner = m.group().split()[1:-1]
    if any(w.endswith(".") and len(w) > 2 for w in inner):
        return False  # a sentence ends inside: "5 BEAT RUNS VT. DR."
    words = [w.strip(".,'").lower() for w in inner]
    return not any(w in _NOT_IN_STREET or w.isdigit() for w in words)


def _phone_check(m: re.Match[str], text: str) -> bool:
    digits = re.sub(r"\D", "", m.group())
    if re.search(r"\.\d{1,2}$", m.group()) or text[m.end() : m.end() + 1] == "/":
        return False  # a decimal ("102-102.4") or a blood gas ("7.40/55")
    return 7 <= len(digits) <= 15


_MEASURE_BEFORE = re.compile(
    r"\b(?:svr|pvr|hr|tv|vt|bp|co|ci|temps?|range|in the|plt|wbc|rate|improved to|of)\s*:?\s*$",
    re.IGNORECASE,
)


def _dashed_phone_check(m: re.Match[str], text: str) -> bool:
    """555-0100, not a range of values ("SVR 954-1183", "HR 100-112")."""
    if m.group().lstrip("(")[0] in "01":
        return False  # no NANP exchange starts with 0 or 1
    return not _MEASURE_BEFORE.search(text, max(0, m.start() - 14), m.start())


# First characters each pattern can start with: a leading lookahead lets the
# regex engine skip every other position fast (a 2-4x speed-up per pattern).
_DIGIT = r"\d"
_LEADS = {
    "ipv4": _DIGIT,
    "ipv6": r"[0-9a-fA-F:]",
    "ssn": _DIGIT,
    "iban": "[A-Z]",
    "card": _DIGIT,
    "account-labelled": "[arpmscARPMSC]",
    "mrn-labelled": "[mapucivesoldnMAPUCIVESOLDN]",
    "long-number": _DIGIT,
    "phone-labelled": "[ptfbcmhwaPTFBCMHWA#]",
    "phone-nanp": r"[\d(+]",
    "phone-trailing-label": r"[\d(]",
    "phone-dashed": r"[\d(]",
    "phone-national": "0",
    "pager": "[pbexPBEX]",
    "phone-intl": r"\+",
    "date-iso": _DIGIT,
    "date-compact": _DIGIT,
    "date-numeric": _DIGIT,
    "date-month-day": _DIGIT,
    "date-text-mdy": "[jfmasondJFMASOND]",
    "date-text-dmy": _DIGIT,
    "date-month-year": "[jfmasondJFMASOND]",
    "date-ordinal": "[otsufbaOTSUFBA]",
    "date-holiday": "[ctnehmliCTNEHMLI]",
    "year-apostrophe": r"['\d]",
    "date-month-year-numeric": _DIGIT,
    "year": _DIGIT,
    "decade": _DIGIT,
    "year-short": "[ismcdphISMCDPH]",
    "age-over-89": _DIGIT,
    "age-labelled": "[aA]",
    "street-address": _DIGIT,
    "po-box": "[pP]",
    "street-foreign": r"[\dA-ZÀ-Þu]",
    "apartment": "[AS]",
    "street-numbered": _DIGIT,
    "street-hungarian": "[A-ZÀ-Þ]",
    "military-box": "[PCU]",
    "zip-in-address": "[A-Z]",
    "zip-labelled": "[zpZP]",
}
# Substrings (lower case) of which a text must hold one for the pattern to run at all.
NEEDS: dict[str, tuple[str, ...]] = {
    "email": ("@",),
    "url": ("http", "www."),
    "ipv6": ("::", ":"),
    "phone-intl": ("+",),
    "ssn-labelled": ("ssn", "social"),
    "account-labelled": (
        "acct",
        "account",
        "routing",
        "aba",
        "policy",
        "member",
        "subscriber",
        "claim",
    ),
    "date-holiday": (
        "christmas",
        "thanksgiving",
        "new year",
        "easter",
        "halloween",
        "memorial day",
        "labor day",
        "independence day",
    ),
    "age-labelled": ("age",),
    "po-box": ("box",),
    "apartment": ("apt", "apartment", "suite", "ste"),
    "street-hungarian": ("u.", "utca", "út", "tér", "körút"),
    "military-box": ("box",),
    "zip-labelled": ("zip", "postal", "postcode"),
    "phone-trailing-label": ("office", "fax", "mobile", "desk", "cell", "home", "work"),
}


def _p(
    name: str,
    kind: Kind,
    regex: str,
    check: Callable[[re.Match[str], str], bool] | None = None,
    flags: int = re.IGNORECASE,
) -> Pattern:
    lead = _LEADS.get(name)
    if lead is not None:
        regex = f"(?={lead})(?:{regex})"
    return Pattern(name, kind, re.compile(regex, flags), check)


_B = r"(?<![\w/.-])"  # left boundary that also refuses to start inside "1.2" or "a/b"
# Dates may follow a dash or colon directly ("TOXICITY-9/2/92", "HX:8/30"), not a digit.
_DATE_B = r"(?<![\d/.])(?<!\d-)"
_E = r"(?![\w/-]|\.\d)"

PATTERNS: tuple[Pattern, ...] = (
    _p("email", Kind.EMAIL, r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    _p("url", Kind.URL, r"\b(?:https?://|www\.)[^\s<>\"')\]]+[^\s<>\"').,;:\]]"),
    _p(
        "ipv4",
        Kind.IP,
        r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.]\d)",
        _ip_check,
    ),
    _p("ipv6", Kind.IP, r"(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", _ip_check),
    _p("ssn", Kind.SSN, _B + r"\d{3}([- ])\d{2}\1\d{4}" + _E, _ssn_check),
    _p(
        "ssn-labelled",
        Kind.SSN,
        r"\b(?:ssn|social security(?: number| no\.?)?)\s*[:#]?\s*(?P<v>\d{9})\b",
        _ssn_check,
    ),
    _p(
        "iban",
        Kind.ACCOUNT,
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
        _iban_check,
        0,
    ),
    _p("card", Kind.ACCOUNT, _B + r"(?:\d[ -]?){12,18}\d" + _E, _luhn_check),
    _p(
        "account-labelled",
        Kind.ACCOUNT,
        r"\b(?:acct|account|routing|aba|policy|member|subscriber|claim)\s*(?:no\.?|number|#|id)?\s*[:#]?\s*(?P<v>[A-Z0-9][A-Z0-9-]{4,}\d)",
    ),
    _p(
        "mrn-labelled",
        Kind.ID,
        r"\b(?:mrn|mr#|mr no\.?|med(?:ical)? ?rec(?:ord)?(?: ?(?:no\.?|number|#))?"
        r"|acc(?:ession)?(?: ?(?:no\.?|number|#)|#)"
        r"|patient ?id|pt ?id|unit ?no\.?|case ?(?:no\.?|#)|id ?(?:no\.?|#|:)|visit ?(?:no\.?|#|id)"
        r"|encounter ?(?:no\.?|#|id)|specimen ?(?:no\.?|#|id)|order ?(?:no\.?|#)"
        r"|license ?(?:no\.?|#)"
        r"|npi|dea|passport ?(?:no\.?|#)?)\s*[:#]?\s*(?P<v>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,})",
    ),
    _p("long-number", Kind.ID, _B + r"\d{7,}" + _E),
    _p(
        "phone-labelled",
        Kind.PHONE,
        r"\b(?:phone|ph|tel|telephone|fax|pager|beeper|cell|mobile|home|work|desk|office|contact"
        r"|registered|call(?:ed)?(?:\s+(?:me|him|her|us|them))?(?:\s+(?:on|at))?|at|#)"
        r"\s*[:#.]?\s*(?:no\.?|number|#)?\s*[:#]?\s*(?P<v>\+?\(?\d[\d() .-]{5,}\d)",
        _phone_check,
    ),
    _p(
        "phone-trailing-label",
        Kind.PHONE,
        r"(?<![\w.+])(?P<v>\(?\d[\d() .-]{5,}\d)\)?[ \t]*-?[ \t]*"
        r"(?:office|fax|mobile|desk|cell|home|work)\b",
        _phone_check,
    ),
    _p(
        "phone-nanp",
        Kind.PHONE,
        r"(?<![\w/.])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]?\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w/-])",
    ),
    _p(
        "phone-dashed",
        Kind.PHONE,
        r"(?<![\w/.-])(?:\d{3}|\(?\d{6}\)?)-\d{4}(?![\w/-]|\.\d)",
        _dashed_phone_check,
    ),
    _p(
        "pager",
        Kind.PHONE,
        r"\b(?:pager|beeper|pgr|pg|page|paged|beeped|bp#|ext|extension|x)\s*(?:no\.?|number)?\s*[:#]?\s*#?\s*(?P<v>\d{4,6})\b",
    ),
    _p(
        "phone-national",
        Kind.PHONE,
        r"(?<![\w.+/-])0\d{1,4}(?: \d{2,4}){2,4}(?![\w/]|-\d)",
        _national_phone_check,
    ),
    _p(
        "phone-intl",
        Kind.PHONE,
        r"(?<!\w)\+\d{1,3}(?:[\s.-]?\(?\d{1,5}\)?){2,5}(?!\w)",
        _phone_check,
    ),
    _p(
        "date-iso",
        Kind.DATE,
        _B + _YEAR + r"[-/.]" + _MON_NUM + r"[-/.]" + _DAY + _TIME + r"?" + _E,
    ),
    _p("date-compact", Kind.DATE, r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"),
    _p(
        "date-numeric",
        Kind.DATE,
        _DATE_B + r"\d{1,2}([-/.])\d{1,2}\1(?:\d{4}|\d{2})" + _TIME + r"?" + _E + r"(?!\s?%)",
    ),
    _p(
        "date-month-day",
        Kind.DATE,
        _DATE_B + _MON_NUM + r"/" + _DAY + r"(?![\w/]|\.\d|-\d)",
        _short_date_check,
    ),
    _p(
        "date-text-mdy",
        Kind.DATE,
        r"\b"
        + _MONTH
        + r"\.?\s+"
        + _DAY
        + _ORD
        + r"?(?:,?\s+(?:of\s+)?(?:"
        + _YEAR
        + r"|'\d{2}))?\b"
        + _CLOCK,
    ),
    _p(
        "date-text-dmy",
        Kind.DATE,
        r"\b"
        + _DAY
        + _ORD
        + r"?(?:\s+of)?[\s-]+"
        + _MONTH
        + r"(?![a-z])\.?(?:[,\s-]+(?:"
        + _YEAR
        + r"|'?\d{2})\b)?",
    ),
    _p("date-month-year", Kind.DATE, r"\b" + _MONTH + r"\.?,?\s+(?:of\s+)?" + _YEAR + r"\b"),
    _p(
        "date-ordinal",
        Kind.DATE,
        r"\b(?:on|the|since|until|till|from|by|before|after)\s+(?:the\s+)?(?P<v>"
        + _DAY
        + _ORD
        + r")\b(?!\s+(?!of\b)[a-z])",
    ),
    _p(
        "date-holiday",
        Kind.DATE,
        r"\b(?:christmas|thanksgiving|new year'?s|easter|halloween|memorial day|labor day"
        r"|independence day)\b",
    ),
    _p("year-apostrophe", Kind.DATE, r"(?<![\w'])'(?P<v>\d{2})\b(?!')|\b(?P<w>\d{2})'(?!s\b|\w)"),
    _p(
        "date-month-year-numeric",
        Kind.DATE,
        r"(?<![\w/.-])(?:0?[1-9]|1[0-2])/(?:[4-9]\d|0\d|1\d)(?![\w/]|\.\d)",
        _month_year_check,
    ),
    _p("decade", Kind.DATE, r"\b(?:19|20)\d0'?s\b"),
    _p("year", Kind.DATE, r"(?<![\w/.,-])" + _YEAR + r"(?![\w/-]|\.\d|,\d)", _year_check),
    _p(
        "year-short",
        Kind.DATE,
        r"\b(?:in|since|mi|cabg|dx|dx'd|diagnosed|s/p|status post|ptca|surgery|hx|circa|c\.)"
        r"\s+'?(?P<v>[4-9]\d|0\d|1\d)\b(?!'?s\b|%|/|:|\.\d|\s*-)",
        _two_digit_year_check,
    ),
    _p(
        "age-over-89",
        Kind.AGE,
        r"\b(?P<v>(?:9\d|1[0-4]\d))(?:\s*|-)(?:y/?o|yo|yrs?|years?|year-old|y\.o\.)\b",
    ),
    _p("age-labelled", Kind.AGE, r"\b(?:age|aged)\s*:?\s*(?P<v>(?:9\d|1[0-4]\d))\b"),
    _p(
        "street-address",
        Kind.LOCATION,
        r"(?<![./:-])\b\d{1,6}\s+(?:[A-Z0-9][A-Za-z0-9'.-]*\s+){1,4}(?i:street|st|avenue|ave|road|rd|boulevard|blvd|drive|dr|lane|ln"
        r"|court|ct|way|place|pl|terrace|ter|circle|cir|parkway|pkwy|highway|hwy|square|sq)\b\.?"
        r"(?i:,?\s*(?:apt|suite|ste|unit|#)\.?\s*\w+)?",
        _street_check,
        0,
    ),
    _p(
        "street-foreign",
        Kind.LOCATION,
        r"(?:\b\d{1,6}\s+)?(?:"
        r"\b(?:Rua|Rue|Via|Viale|Calle|Carrer|Avenida|Avda\.|Piazza|Plaza|Praça|Largo|Ulica|ul\.)"
        r"(?:\s+[^\W\d_][\w'.-]*){1,4},?\s+\d{1,5}[a-zA-Z]?\b"
        r"|\b[A-ZÀ-Þ][^\W\d_]*(?:straße|strasse|str\.|gasse|weg|platz|allee|damm|katu|tie|kuja"
        r"|polku|vej|vænget|gade|gatan|vägen|väg|straat|laan|utca|út|ulica|cesta|iela|gatve|tee)"
        r"\s+\d{1,5}[a-zA-Z]?\b)",
        None,
        0,
    ),
    _p(
        "street-numbered",
        Kind.LOCATION,
        r"(?<![./:-])\b\d{1,6}[ \t]+(?:[A-ZÀ-Þ][a-zß-ÿ][^\W\d_]*\.?[ \t]+){1,3}\d{1,5}\b"
        r"(?![.,/:]?\d|[ \t]*(?:%|mg|mcg|meq|mmol|units?|u|cc|ml|l|g|kg|mm|cm|hrs?|mins?|x)\b)",
        _street_check,
        0,
    ),
    _p(
        "street-hungarian",
        Kind.LOCATION,
        r"\b[A-ZÀ-Þ][^\W\d_]+[ \t]+(?:u\.|utca|út|tér|körút)[ \t]+\d{1,4}\.?",
        None,
        0,
    ),
    _p(
        "military-box",
        Kind.LOCATION,
        r"\b(?:PSC|CMR|Unit)[ \t]+\d{3,5},?[ \t]+Box[ \t]+\d{3,5}\b",
        None,
        0,
    ),
    _p(
        "apartment",
        Kind.LOCATION,
        r"\b(?:Apt|Apartment|Suite|Ste)\.?\s*#?\s*\d{1,5}[A-Za-z]?\b",
        None,
        0,
    ),
    _p("po-box", Kind.LOCATION, r"\bp\.?\s?o\.?\s?box\s+\d+\b"),
    _p(
        "zip-in-address",
        Kind.LOCATION,
        r"\b(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY"
        r"|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY),?\s+(?P<v>\d{5}(?:-\d{4})?)\b",
        None,
        0,
    ),
    _p(
        "zip-labelled",
        Kind.LOCATION,
        r"\b(?:zip|zip code|postal code|postcode)\s*:?\s*(?P<v>\d{5}(?:-\d{4})?)\b",
    ),
)


def find_patterns(text: str, patterns: Iterable[Pattern] = PATTERNS) -> list[Finding]:
    """Run every pattern over ``text``; findings may overlap (the detector merges)."""
    out: list[Finding] = []
    low: str | None = None
    for pat in patterns:
        needs = NEEDS.get(pat.name)
        if needs is not None:
            low = text.lower() if low is None else low
            if not any(n in low for n in needs):
                continue
        for m in pat.regex.finditer(text):
            if pat.check is not None and not pat.check(m, text):
                continue
            group = next((g for g in ("v", "w") if g in pat.regex.groupindex and m.group(g)), None)
            if group is not None:
                out.append(Finding(m.start(group), m.end(group), pat.kind, "pattern"))
            else:
                out.append(Finding(m.start(), m.end(), pat.kind, "pattern"))
    return out
