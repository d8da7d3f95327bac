"""Pattern recognizers: identifiers with a recognizable shape, checked where a check exists.

Each pattern is a compiled regex plus an optional validator from
``pattern_checks`` (Luhn, IBAN mod-97, SSN area rules, IP ranges, context
words); a pattern with a capture group ``v`` reports only that group (e.g. the
number after "MRN:"), and one with groups ``a`` and ``b`` reports both (the two ends
of a range, without the "to" between). ``find_patterns`` runs them in a few passes through the
families of ``pattern_scan``, with exactly the result of one ``finditer`` per
pattern (``find_patterns_each``, the reference the tests compare it with).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ahocorasick

from sluicegate.core.privacy.findings import Finding, Kind
from sluicegate.core.privacy.pattern_checks import (
    age_check,
    context_date_check,
    dashed_date_check,
    dashed_phone_check,
    grouped_phone_check,
    hash_id_check,
    iban_check,
    iban_ok,
    ip_check,
    labelled_id_check,
    lettered_id_check,
    luhn_check,
    luhn_ok,
    month_alone_check,
    month_year4_check,
    month_year_check,
    national_phone_check,
    numbered_id_check,
    ordinal_date_check,
    phone_check,
    range_date_check,
    short_date_check,
    ssn_check,
    ssn_ok,
    street_check,
    two_digit_year_check,
    year_apostrophe_check,
    year_check,
    zip_after_place_check,
    zip_before_place_check,
    zip_state_check,
)
from sluicegate.core.privacy.pattern_scan import (
    Family,
    first_class,
    lower_aligned,
    prefix_lead,
    prefixes,
    starts_with_char,
)

__all__ = ["PATTERNS", "Pattern", "find_patterns", "find_patterns_each", "iban_ok", "luhn_ok"]
__all__ += ["ssn_ok"]

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_ORD = r"(?:st|nd|rd|th)"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MON_NUM = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:(?:19|20)\d{2})"
# What an ordinal counts when it is not a day: "the 5th floor", "the 2nd dose".
_COUNTED = (
    r"(?:floor|time|times|day|dose|doses|attempt|try|round|cycle|grade|degree|percentile|rib|ics"
    r"|intercostal|toe|finger|digit|cranial|nerve|ventricle|week|month|year|hour|hr|minute|place"
    r"|level|line|page|unit|bag|liter|set|run|stick|lumbar|cervical|thoracic|sacral|vertebra"
    r"|generation|gen|trimester|postoperative|post-op|pod|hospital|admission|episode|shift|one"
    r"|lead|lap|layer|step|pass|session|visit|child|pregnancy|baby|st|ave|avenue|street|rd|road)s?\b"
)
# Words that follow a date in a sentence ("on 9-14 for clipping", "on 2nd at noon").
_AFTER_DATE = (
    r"(?:for|at|and|or|to|with|when|after|before|until|in|of|was|were|the|he|she|pt|patient"
    r"|showed|revealed|then)\b"
)
# A telephone extension: "x52247", "ext. 12", ", extension 4410".
_EXT = r"(?:,?\s?(?:x|ext(?:ension)?|#)\.?\s?\d{1,6})?"
# Between the digit groups of a phone number: "-", ".", " ", an en dash, " - ".
_PSEP = r"(?:[-\u2013.]\s?|\s(?:[-\u2013]\s?)?)"
_YY = r"(?:[4-9]\d|0\d|1\d)"  # a two-digit year a note would mention: 1940-2019
_TIME = r"(?:[T ]?\s?\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s?[ap]\.?m\.?)?(?:Z|[+-]\d{2}:?\d{2})?)"
_CLOCK = r"(?:,?\s+(?:at\s+)?\d{1,2}:\d{2}(?::\d{2})?\s?(?:[ap]\.?m\.?)?(?![\w:]))?"
# A second day closing a range: "March 14-18", "Mar 3 to 9", "14th - 18th".
_TO = r"(?=\s*[-\u2013tu])\s*(?:-|\u2013|to|through|thru|until|till)\s*"
_YEAR_OR_YY = r"(?:" + _YEAR + r"|\d{2})"
# "3/14" or "3/14/21": one end of a numeric date range
_SLASH_DATE = _MON_NUM + r"/" + _DAY + r"(?:/" + _YEAR_OR_YY + r")?"


@dataclass(frozen=True)
class Pattern:
    """One recognizer: name for docs/tests, kind reported, regex, optional check."""

    name: str
    kind: Kind
    regex: re.Pattern[str]
    check: Callable[[re.Match[str], str], bool] | None = None


# First characters of the patterns whose first characters cannot be derived
# (a class too wide to list): a leading look-ahead lets the regex engine skip
# every other position fast. Every other pattern gets one derived in ``_p``.
_LEADS = {
    "street-foreign": r"[\dA-ZÀ-Þu]",
    "street-hungarian": "[A-ZÀ-Þ]",
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
    lead: str | None = None
    if not starts_with_char(regex, flags):  # else the engine already skips to it
        # every first character known: derive the look-ahead; else the written one
        lead = first_class(regex, flags) or _LEADS.get(name)
    if lead is not None:
        regex = f"(?={lead})(?:{regex})"
    return Pattern(name, kind, re.compile(regex, flags), check)


#: Street words written before the name, and street suffixes ending it, in several languages.
_STREET_WORDS: tuple[str, ...] = (
    "Rua",
    "Rue",
    "Via",
    "Viale",
    "Calle",
    "Carrer",
    "Avenida",
    "Avda.",
    "Piazza",
)
_STREET_WORDS += ("Plaza", "Praça", "Largo", "Ulica", "ul.")
_STREET_SUFFIXES: tuple[str, ...] = (
    "straße",
    "strasse",
    "str.",
    "gasse",
    "weg",
    "platz",
    "allee",
    "damm",
    "katu",
)
_STREET_SUFFIXES += ("tie", "kuja", "polku", "vej", "vænget", "gade", "gatan", "vägen", "väg")
_STREET_SUFFIXES += ("straat", "laan", "utca", "út", "ulica", "cesta", "iela", "gatve", "tee")


def _words(text: str) -> list[str]:
    return text.split()


def _alternation(words: Iterable[str]) -> str:
    return "(?:" + "|".join(re.escape(w) for w in words) + ")"


def _trie(words: Iterable[str]) -> str:
    """An alternation of many words as a trie, so the engine compares each character once
    (longest first: "meadows" before "meadow")."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for c in word:
            node = node.setdefault(c, {})
        node[""] = {}
    return _trie_node(root)


def _trie_node(node: dict[str, Any]) -> str:
    alts = [re.escape(c) + _trie_node(child) for c, child in sorted(node.items()) if c]
    if not alts:
        return ""
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return f"(?:{body})?" if "" in node else body


#: More U.S. street types (USPS suffixes), less those a clinical note uses after a number and a
#: capitalised word ("6 Minute Walk", "3 Vessel Bypass", "4 Chamber View", "1 Plus Trace",
#: "14 Day Course", "2 Recent Falls", "Carpal Tunnel", "Blood Stream", "Large Green").
_STREET_TYPES = _words(
    "Alley Arcade Bluff Bluffs Brook Brooks Burg Burgs Camp Canyon Cape Causeway Cove Coves"
    " Creek Crescent Crossing Crossroad Dale Dam Estate Estates Expressway Ferry Fields Flats"
    " Ford Fords Forest Forge Forges Freeway Garden Gardens Gateway Glen Glens Grove Groves"
    " Harbor Harbors Haven Heights Hills Inlet Island Islands Isle Key Keys Knoll Knolls Lake"
    " Lakes Landing Lodge Manor Manors Meadow Meadows Mews Mill Mills Motorway Mountain"
    " Mountains Orchard Overpass Park Parks Pike Pine Pines Plaza Prairie Ranch Ridge Ridges"
    " River Shoal Shoals Shore Shores Skyway Springs Spur Spurs Stravenue Summit Throughway"
    " Track Trafficway Trail Trailer Turnpike Underpass Valley Valleys Viaduct Village"
    " Villages Ville Vista"
)


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
        ip_check,
    ),
    _p("ipv6", Kind.IP, r"(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", ip_check),
    _p("ssn", Kind.SSN, _B + r"\d{3}(?P<sep>[- .])\d{2}(?P=sep)\d{4}" + _E, ssn_check),
    _p(
        "ssn-labelled",
        Kind.SSN,
        r"\b(?:ssn|social security(?: number| no\.?)?)\s*[:#]?\s*(?P<v>\d{9})\b",
        ssn_check,
    ),
    _p(
        "iban",
        Kind.ACCOUNT,
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
        iban_check,
        0,
    ),
    _p("card", Kind.ACCOUNT, _B + r"(?:\d[ -]?){12,18}\d" + _E, luhn_check),
    _p(
        "account-labelled",
        Kind.ACCOUNT,
        r"\b(?:acct|account|routing|aba|policy|member|subscriber|claim)\s*(?:no\.?|number|#|id)?"
        r"\s*[:#]?\s*(?:-\s*)?(?P<v>[a-z0-9](?:[.-]?[a-z0-9]){4,})",
        labelled_id_check,
    ),
    _p(
        "mrn-labelled",
        Kind.ID,
        r"\b(?:mrn|mr ?#|mr\.? ?no\.?|med(?:ical)?\.? ?rec(?:ord)?\.?(?: ?(?:no\.?|number|#))?"
        r"|acc(?:ession)?(?: ?(?:no\.?|number|#)|#)"
        r"|(?:patient|pt\.?) ?id|unit ?no\.?|case ?(?:no\.?|#)|id ?(?:no\.?|#|:)"
        r"|visit ?(?:no\.?|#|id)"
        r"|encounter ?(?:no\.?|#|id)|specimen ?(?:no\.?|#|id)|order ?(?:no\.?|#)"
        r"|(?:driver'?s? )?licen[cs]e(?: ?(?:no\.?|number|#))?"
        r"|npi|dea|passport ?(?:no\.?|#)?|csn|fin|har|enc(?:ounter)?(?: ?(?:no\.?|#|id))?"
        r"|hosp(?:ital)? ?(?:no\.?|#)|chart ?(?:no\.?|#)?)(?:\s+(?:is|was))?\s*[:#]?\s*(?:-\s*)?"
        r"(?P<v>(?=[a-z0-9.-]*\d)[a-z0-9](?:[.-]?[a-z0-9]){2,}(?: \d{3,8}\b)?)",
        labelled_id_check,
    ),
    _p("long-number", Kind.ID, _B + r"\d{7,}" + _E),
    _p(
        "phone-labelled",
        Kind.PHONE,
        r"\b(?:phone|ph|tel|telephone|fax|pager|beeper|cell|mobile|home|work|desk|office|contact"
        r"|registered|number|call(?:ed)?(?:\s+(?:me|him|her|us|them))?(?:\s+(?:on|at))?|at"
        r"|call\s?back|line|switchboard|[tpfmhcw](?=\s?:))"
        r"\s*[:#.]?\s*(?:no\.?|number|#)?(?:\s+(?:is|was))?\s*[:#]?\s*"
        r"(?P<v>\+?\(?\d[\d() .-]{5,}\d)",
        phone_check,
    ),
    # "Rm#555-1234": a "#" right after a word. Written "#(?<=\w#)" (= "\b#") so
    # the regex starts with a literal the engine can search for.
    _p(
        "phone-hash",
        Kind.PHONE,
        r"#(?<=\w#)\s*[:#.]?\s*(?:no\.?|number|#)?\s*[:#]?\s*(?P<v>\+?\(?\d[\d() .-]{5,}\d)",
        phone_check,
    ),
    _p(
        "id-hash",
        Kind.ID,
        r"#(?<![\w#]#)\s?(?::\s?|-\s)?(?P<v>[a-z]{0,2}\d{2,}(?:[ .-]\d{2,}){0,3})\b",
        hash_id_check,
    ),
    # "Health card no. 0048213", "Document ID - 684401": any label ending in a number word.
    _p(
        "id-numbered",
        Kind.ID,
        r"\b(?:no[.:#]|nr\b\.?|num\b\.?|number\b|id\b)\s*[:#]?\s*(?:-\s*)?"
        r"(?P<v>(?=[a-z0-9.-]*\d)[a-z0-9](?:[.-]?[a-z0-9]){3,}(?: \d{3,8}\b){0,2})",
        numbered_id_check,
    ),
    _p(
        "id-lettered",
        Kind.ID,
        r"\b(?:[a-z]{1,3}\d{6,12}|\d{6,12}[a-z]|[a-z]{1,4}\d{0,2}-(?:\d{2,}-)*\d{5,})\b",
        lettered_id_check,
    ),
    _p("phone-digits-ext", Kind.PHONE, _B + r"\d{7,12}\s?(?:x|ext)\.?\s?\d{1,6}\b"),
    _p("id-dashed", Kind.ID, _B + r"\d{2,4}-\d{6,10}" + _E),
    _p(
        "phone-trailing-label",
        Kind.PHONE,
        r"(?<![\w.+])(?P<v>\(?\d[\d() .-]{5,}\d)\)?[ \t]*-?[ \t]*"
        r"(?:office|fax|mobile|desk|cell|home|work)\b",
        phone_check,
    ),
    _p(
        "phone-nanp",
        Kind.PHONE,
        r"(?<![\w/.])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}(?:" + _PSEP + r"|/(?=\d{3}-\d{4})))"
        r"\d{3}" + _PSEP + r"?\d{4}" + _EXT + r"(?![\w/-])",
    ),
    _p(
        "phone-dashed",
        Kind.PHONE,
        r"(?<![\w/.-])(?:\d{3}[-\u2013.]|\(?\d{6}\)?[-\u2013])\d{4}" + _EXT + r"(?![\w/-]|\.\d)",
        dashed_phone_check,
    ),
    _p(
        "pager",
        Kind.PHONE,
        r"\b(?:pager|beeper|pgr|pg|page|paged|beeped|bp#|ext|extension|x)\s*(?:no\.?|number)?"
        r"\s*[:#]?\s*#?\s*(?P<v>\d{4,6}|\d-\d{4})\b(?!-)",
    ),
    _p(
        "phone-national",
        Kind.PHONE,
        # "0044 20 7946 0958", "00 33 1 42 68 53 00": the international prefix written 00
        r"(?<![\w.+/-])(?:(?<!\d[ .-])(?P<intl>00)\s?[1-9]\d{0,2}[\s.-]\(?\d{1,5}\)?"
        r"(?:[\s.-]\d{1,5}){1,6}"
        r"|(?:0\d{1,4}(?P<sep>[ .-])|\(0\d{1,4}\)(?P<sp>[ .-]?))\d{2,8}"
        r"(?:(?:(?P=sep)|(?P=sp))\d{2,4}){0,3})" + _EXT + r"(?![\w/]|[-.]\d)",
        national_phone_check,
    ),
    _p(
        "phone-grouped",
        Kind.PHONE,
        r"(?<![\w.+/-])(?<!\d[ .-])[1-9]\d{1,3}(?P<sep>[ .-])\d{2,4}(?P=sep)\d{3,5}"
        + _EXT
        + r"(?![\w/]|[-.]\d|(?P=sep)\d)",
        grouped_phone_check,
    ),
    _p(
        "phone-intl",
        Kind.PHONE,
        r"(?<!\w)\+\d{1,3}(?:[\s.-]?\(?\d{1,5}\)?){2,7}" + _EXT + r"(?!\w)",
        phone_check,
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
        _DATE_B
        + r"\d{1,2}(?P<sep>[-/.])\d{1,2}(?P=sep)(?:\d{4}|\d{2})"
        + _TIME
        + r"?"
        + _E
        + r"(?!\s?%)",
    ),
    _p(
        "date-month-day",
        Kind.DATE,
        _DATE_B + _MON_NUM + r"/" + _DAY + r"(?![\w/]|\.\d|-\d)",
        short_date_check,
    ),
    _p(
        "date-pair",
        Kind.DATE,
        _DATE_B + _MON_NUM + r"/" + _DAY + r"[/-]" + _MON_NUM + r"/" + _DAY + r"(?![\w/]|\.\d|-\d)",
        context_date_check,
    ),
    _p(
        "date-mixed",
        Kind.DATE,
        _DATE_B + _MON_NUM + r"/" + _DAY + r"\.(?:\d{4}|\d{2})" + _E + r"(?!\s?%)",
        context_date_check,
    ),
    _p(
        "date-month-alone",
        Kind.DATE,
        r"\b(?:in|since|during|until|till|through|thru|early|late|mid-?|last|next|this|of|by|before"
        r"|after)\s+(?P<v>" + _MONTH + r")\b\.?(?!\s*\d)",
        month_alone_check,
    ),
    _p(
        "date-text-mdy",
        Kind.DATE,
        r"\b"
        + _MONTH
        + r"\.?,?\s+(?:the\s+)?"
        + _DAY
        + _ORD
        + r"?(?:"
        + _TO
        + r"(?:"
        + _MONTH
        + r"\.?\s+)?"
        + _DAY
        + _ORD
        + r"?(?![\d/:]|\.\d))?(?:,?\s+(?:of\s+)?(?:"
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
        + r"?(?:"
        + _TO
        + _DAY
        + _ORD
        + r"?)?(?:\s+of)?[\s-]+"
        + _MONTH
        + r"(?![a-z])\.?(?:[,\s-]+(?:"
        + _YEAR
        + r"|'?\d{2})\b)?",
    ),
    _p(
        "date-compact-text",
        Kind.DATE,
        r"\b" + _DAY + _MONTH + r"(?:\d{4}|\d{2})\b",
    ),
    _p(
        "date-month-year4",
        Kind.DATE,
        r"(?<![\w/.-])(?:" + _MON_NUM + r"/" + _YEAR + r"(?![\w/]|\.\d)"
        # "08-1956", "2023-11": a month and a four-digit year joined by a dash
        r"|(?:" + _MON_NUM + r"-" + _YEAR + r"|" + _YEAR + r"-(?:0[1-9]|1[0-2]))(?![\w/-]|\.\d))",
        month_year4_check,
    ),
    _p("date-mon-dash", Kind.DATE, r"\b" + _MONTH + r"-\d{1,2}(?![\w/-]|\.\d)"),
    _p(
        "date-month-year",
        Kind.DATE,
        r"\b" + _MONTH + r"\.?(?:,?\s+(?:of\s+)?|-)(?:" + _YEAR + r"\b|['\u2019]\d{2}\b(?!'))",
    ),
    # "7/Sep/1953", "Jun./7/1976", "Mar.-20-1979", "1926-Feb-21", "2026 JUN 20".
    _p(
        "date-text-sep-d",
        Kind.DATE,
        _DATE_B
        + r"(?:"
        + _DAY
        + r"(?P<s1>[/.-])(?=[a-z])"
        + _MONTH
        + r"\.?(?P=s1)"
        + _YEAR_OR_YY
        + r"|"
        + _YEAR
        + r"(?P<s2>[/.\- ])(?=[a-z])"
        + _MONTH
        + r"\.?(?P=s2)"
        + _DAY
        + r")(?![\w/]|\.\d)",
    ),
    _p(
        "date-text-sep-m",
        Kind.DATE,
        r"\b" + _MONTH + r"\.?(?P<s>[/-])" + _DAY + r"(?P=s)" + _YEAR_OR_YY + r"(?![\w/]|\.\d)",
    ),
    # "3/14 to 3/18", "7/12/1961-7/19/1961", "3/14 through 3/18/2021": two dates (a, b).
    _p(
        "date-numeric-range",
        Kind.DATE,
        _DATE_B + r"(?P<a>" + _SLASH_DATE + r")" + _TO + r"(?P<b>" + _SLASH_DATE + r")" + _E,
        range_date_check,
    ),
    _p(
        "date-ordinal",
        Kind.DATE,
        r"\b(?:on|the|since|until|till|from|by|before|after)\s+(?:the\s+)?(?P<v>"
        + _DAY
        + _ORD
        + r")\b(?!\s+"
        + _COUNTED
        + r")",
        ordinal_date_check,
    ),
    _p(
        "date-dashed-md",
        Kind.DATE,
        r"\b(?:on|since|dated?|from|until|till|s/p|admitted|placed|started|done|inserted"
        r"|discharged)\s+(?P<v>"
        + _MON_NUM
        + r"-"
        + _DAY
        + r")(?=\s*(?:[,.;)\]]|\Z|"
        + _AFTER_DATE
        + r"))",
        dashed_date_check,
    ),
    # "[**3-4**]", "[**Hospital1 18**]": text de-identified by the "[** **]" convention is PHI.
    _p("bracketed-date", Kind.DATE, r"\[\*\*(?P<v>[\d/.-]{1,12})\*\*\]"),
    _p("bracketed-phi", Kind.ID, r"\[\*\*(?P<v>[^\]\n]*?[^\d/.\]\n-][^\]\n]*?)\*\*\]"),
    _p(
        "date-holiday",
        Kind.DATE,
        r"\b(?:christmas|thanksgiving|new year'?s|easter|halloween|memorial day|labor day"
        r"|independence day)\b",
    ),
    _p(
        "year-apostrophe",
        Kind.DATE,
        r"(?<![\w'])'(?P<v>\d{2})\b(?!')|\b(?P<w>\d{2})'(?!s\b|\w)",
        year_apostrophe_check,
    ),
    _p(
        "date-month-year-numeric",
        Kind.DATE,
        r"(?<![\w/.-])(?:0?[1-9]|1[0-2])/(?:[4-9]\d|0\d|1\d)(?![\w/]|\.\d)",
        month_year_check,
    ),
    _p("decade", Kind.DATE, r"\b(?:19|20)\d0'?s\b"),
    _p(
        "year",
        Kind.DATE,
        # "2019", and a span of years: "2018-2019", "1998-99"
        r"(?<![\w/.,-])"
        + _YEAR
        + r"(?:\s?[-\u2013]\s?(?:"
        + _YEAR
        + r"|\d{2}))?(?![\w/-]|\.\d|,\d)",
        year_check,
    ),
    _p(
        "year-short",
        Kind.DATE,
        r"\b(?:in|since|mi|cabg|dx|dx'd|diagnosed|s/p|status post|ptca|surgery|hx|circa|c\.)"
        r"\s+'?(?P<v>"
        + _YY
        + r"(?:(?:\s*[,&]\s*|\s+and\s+)'?"
        + _YY
        + r")*)\b(?!'?s\b|%|/|:|\.\d|\s*-)",
        two_digit_year_check,
    ),
    _p(
        "age-over-89",
        Kind.AGE,
        r"\b(?P<v>(?:9\d|1[0-4]\d))(?:(?:\s*|-)(?:(?:y/?o|yo[mf]?|yrs?|years?|year-old)\b"
        r"|y\.\s?o\b\.?|y[mf]?(?![\w/'.-]))"
        # "94 F", "(101M)": an age and a sex, not a temperature ("T 99 F")
        r"|(?P<sex>\s?(?-i:[MF]))(?![\w/'.%-]))",
        age_check,
    ),
    _p(
        "age-stated",
        Kind.AGE,
        r"\b(?:pt|patient|he|she)(?:\s+(?:[a-z]\.){1,3}|\s+[a-z]{2,3}\.?)?\s+(?:is|was|turned)"
        r"\s+(?P<v>9\d|1[0-4]\d)\b"
        r"(?!\.\d|\s*(?:%|/|mg|kg|lbs?|degrees?|f\b|c\b|on\b|in\b))",
    ),
    _p("age-labelled", Kind.AGE, r"\b(?:age|aged)\s*:?\s*(?P<v>(?:9\d|1[0-4]\d))\b"),
    _p(
        "street-address",
        Kind.LOCATION,
        r"(?<![./:-])\b\d{1,6}\s+(?:[A-Z0-9][A-Za-z0-9'.-]*\s+){1,4}(?i:street|st|avenue|ave|road|rd|boulevard|blvd|drive|dr|lane|ln"
        r"|court|ct|way|place|pl|terrace|ter|circle|cir|parkway|pkwy|highway|hwy|square|sq|"
        + _trie(w.lower() for w in _STREET_TYPES)
        + r")\b\.?"
        r"(?i:,?\s*(?:apt|suite|ste|unit|#)\.?\s*\w+)?",
        street_check,
        0,
    ),
    _p(
        "street-foreign",
        Kind.LOCATION,
        r"(?:\b\d{1,6}\s+)?(?:"
        r"\b" + _alternation(_STREET_WORDS) + r"(?:\s+[^\W\d_][\w'.-]*){1,4},?\s+\d{1,5}[a-zA-Z]?\b"
        r"|\b[A-ZÀ-Þ][^\W\d_]*" + _alternation(_STREET_SUFFIXES) + r"\s+\d{1,5}[a-zA-Z]?\b)",
        None,
        0,
    ),
    _p(
        "street-numbered",
        Kind.LOCATION,
        r"(?<![./:-])\b\d{1,6}[ \t]+(?:[A-ZÀ-Þ][a-zß-ÿ][^\W\d_]*\.?[ \t]+){1,3}\d{1,5}\b"
        r"(?![.,/:]?\d|[ \t]*(?:%|mg|mcg|meq|mmol|units?|u|cc|ml|l|g|kg|mm|cm|hrs?|mins?|x)\b)",
        street_check,
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
        # "MA 02115", "Mass. 02115", "New York, 10001": the state is checked before the ZIP
        r"(?<=\s)\d{5}(?:-\d{4})?\b",
        zip_state_check,
        0,
    ),
    _p("zip-plus4", Kind.LOCATION, _B + r"\d{5}-\d{4}" + _E),
    _p(
        "zip-after-place",
        Kind.LOCATION,
        r"(?<=[^\W\d_][ \t])\d{5}(?:-\d{4})?(?=[ \t]*(?:[.,;)\r\n]|\Z)"
        r"|[ \t]+(?:and|or|tel|phone|ph|fax|usa|u\.s\.a?)\b)",
        zip_after_place_check,
    ),
    # "Weg 691, 33811 Lüneburg": the postcode written before the town, after a comma.
    _p(
        "zip-before-place",
        Kind.LOCATION,
        r"(?<=,[ \t])\d{5}(?=[ \t]+[A-ZÀ-Þ](?:[a-zß-ÿ]{2,}|[A-ZÀ-Þ]{2,}))",
        zip_before_place_check,
        0,
    ),
    _p(
        "zip-labelled",
        Kind.LOCATION,
        r"\b(?:zip|zip code|postal code|postcode|post code|postal)(?:\s+(?:is|was))?\s*[:#]?\s*"
        # U.S., and the shapes of other countries' codes: "3520", "53-320", "394 13", "K1A 0B1"
        r"(?P<v>\d{5}(?:-\d{3,4})?|\d{2,4}(?:[ -]\d{2,3})?|[a-z]\d[a-z] ?\d[a-z]\d"
        r"|[a-z]{1,2}\d[a-z\d]? ?\d[a-z]{2})\b",
    ),
)


#: Patterns whose match can only begin where a digit run starts, or at "(", "+"
#: or "'" right before one (each refuses a digit before its start).
DIGIT_LED = frozenset(
    {
        "ipv4",
        "ssn",
        "card",
        "long-number",
        "phone-nanp",
        "phone-dashed",
        "phone-national",
        "phone-grouped",
        "phone-intl",
        "phone-trailing-label",
        "date-iso",
        "date-compact",
        "date-numeric",
        "date-month-day",
        "date-pair",
        "date-mixed",
        "date-text-dmy",
        "year-apostrophe",
        "date-month-year-numeric",
        "decade",
        "year",
        "age-over-89",
        "date-compact-text",
        "date-month-year4",
        "date-text-sep-d",
        "date-numeric-range",
        "id-dashed",
        "phone-digits-ext",
        "zip-plus4",
        "zip-after-place",
        "zip-before-place",
        "zip-in-address",
        "street-address",
        "street-numbered",
    }
)
#: Case-insensitive patterns that begin, after "\b", with a label word.
KEYWORD_LED = frozenset(
    {
        "ssn-labelled",
        "account-labelled",
        "mrn-labelled",
        "id-numbered",
        "phone-labelled",
        "pager",
        "date-text-mdy",
        "date-month-year",
        "date-mon-dash",
        "date-text-sep-m",
        "date-month-alone",
        "date-ordinal",
        "date-dashed-md",
        "date-holiday",
        "age-stated",
        "year-short",
        "age-labelled",
        "po-box",
        "zip-labelled",
    }
)


_ASCII_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what "\\s" matches in ASCII text


def _street_automaton(spaced: bool) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for word in _STREET_WORDS:
        automaton.add_word(word, False)
    for suffix in _STREET_SUFFIXES:
        for end in _ASCII_SPACE if spaced else ("",):
            automaton.add_word(suffix + end, not spaced)
    automaton.make_automaton()
    return automaton


_STREET_AC, _STREET_AC_SPACED = _street_automaton(False), _street_automaton(True)


def _street_foreign_gate(text: str) -> bool:
    """A street word, or a street suffix followed by white space (what every match holds)."""
    if text.isascii():  # suffixes are searched with their space: "patient" is no hit
        return next(_STREET_AC_SPACED.iter(text), None) is not None
    for end, needs_space in _STREET_AC.iter(text):
        if not needs_space or text[end + 1 : end + 2].isspace():
            return True
    return False


def _search_gate(regex: str, flags: int = 0) -> Callable[[str], bool]:
    rx = re.compile(regex, flags)
    return lambda text: rx.search(text) is not None


_HUNGARIAN_GATE = re.compile(r"[ \t](?:u\.|utca|út|tér|körút)[ \t]")

#: Necessary conditions, each far cheaper than its pattern (a substring, or a
#: literal first so the engine skips ahead): no text fails one and matches the
#: pattern. Only the fast path uses them, so the tests comparing it with
#: ``find_patterns_each`` check them too.
GATES: dict[str, Callable[[str], bool]] = {
    # most "@" in notes are "@ 2000", not addresses; the "@" first lets the engine skip ahead
    "email": _search_gate(r"@(?<=[\w.+-]@)[\w-]"),
    "ipv6": _search_gate(r":[0-9a-f]{0,4}:", re.IGNORECASE),
    "street-hungarian": lambda text: (
        any(w in text for w in ("u.", "utca", "út", "tér"))
        and _HUNGARIAN_GATE.search(text) is not None
    ),
    "street-foreign": _street_foreign_gate,
    "apartment": lambda text: any(w in text for w in ("Apt", "Apartment", "Suite", "Ste")),
    "military-box": lambda text: "Box" in text,
}
#: Necessary conditions the digit family checks at its anchors, for free: each
#: requires a digit run that every match of its pattern begins.
DIGIT_GATES: dict[str, re.Pattern[str]] = {
    "iban": re.compile(r"(?<=[A-Z]{2})\d\d"),  # "DE89..."
    "id-lettered": re.compile(r"\d{5}"),  # "ACC7730192", "S21-40917"
}


def _lowered(rx: re.Pattern[str]) -> re.Pattern[str]:
    """The case-sensitive twin of a case-insensitive regex, for lower-cased text."""
    source = re.sub(
        r"\\.|\(\?P[<=]\w*|[A-Z]", lambda m: m[0] if len(m[0]) > 1 else m[0].lower(), rx.pattern
    )
    return re.compile(source, rx.flags & ~re.IGNORECASE)


def _families() -> tuple[Family, Family]:
    index = {p.name: i for i, p in enumerate(PATTERNS)}
    gates = [(-1 - index[n], rx) for n, rx in DIGIT_GATES.items()]
    digits = Family(
        [(index[n], PATTERNS[index[n]].regex) for n in sorted(DIGIT_LED)] + gates,
        r"(?=[\d(+'])(?<!\d)",
        re.IGNORECASE,
    )
    keyed = [(index[n], _lowered(PATTERNS[index[n]].regex)) for n in sorted(KEYWORD_LED)]
    # Four characters of label ("on\\s\\d", "mrn:") let few word starts through.
    starts = set().union(*(prefixes(rx.pattern, rx.flags, 4) for _, rx in keyed))
    return digits, Family(keyed, r"\W" + prefix_lead(starts), 0)


_DIGIT_FAMILY, _KEYWORD_FAMILY = _families()


def find_patterns(text: str) -> list[Finding]:
    """Every pattern over ``text`` (findings may overlap: the detector merges).

    Same result, in the same order, as :func:`find_patterns_each`, in a few
    passes (see ``pattern_scan``).
    """
    low = lower_aligned(text)
    if low is None:
        return find_patterns_each(text)
    starts: dict[int, list[int]] = {}
    _DIGIT_FAMILY.hits(text, from_start=False, out=starts)
    _KEYWORD_FAMILY.hits(low, from_start=True, out=starts)
    out: list[Finding] = []
    for i, pat in enumerate(PATTERNS):
        if pat.name not in DIGIT_LED and pat.name not in KEYWORD_LED:
            gate = GATES.get(pat.name)
            if pat.name in DIGIT_GATES:
                if -1 - i in starts:
                    _run(pat, text, low, out)
            elif gate is None or gate(text):
                _run(pat, text, low, out)
            continue
        mark = len(out)
        for start in starts.get(i, ()):
            m = pat.regex.match(text, start)
            if m is None:  # cannot happen (tested); never lose a finding if it did
                del out[mark:]
                _run(pat, text, low, out)
                break
            _emit(pat, m, text, out)
    return out


def find_patterns_each(text: str, patterns: Iterable[Pattern] = PATTERNS) -> list[Finding]:
    """Each pattern's own ``finditer`` over ``text``: the reference for ``find_patterns``."""
    out: list[Finding] = []
    low = text.lower()
    for pat in patterns:
        _run(pat, text, low, out)
    return out


def _run(pat: Pattern, text: str, low: str, out: list[Finding]) -> None:
    needs = NEEDS.get(pat.name)
    if needs is not None and not any(n in low for n in needs):
        return
    for m in pat.regex.finditer(text):
        _emit(pat, m, text, out)


def _emit(pat: Pattern, m: re.Match[str], text: str, out: list[Finding]) -> None:
    if pat.check is not None and not pat.check(m, text):
        return
    if "a" in pat.regex.groupindex:  # a range: its two ends, not the word between
        out.append(Finding(m.start("a"), m.end("a"), pat.kind, "pattern"))
        out.append(Finding(m.start("b"), m.end("b"), pat.kind, "pattern"))
        return
    group = next((g for g in ("v", "w") if g in pat.regex.groupindex and m.group(g)), None)
    if group is not None:
        out.append(Finding(m.start(group), m.end(group), pat.kind, "pattern"))
    else:
        out.append(Finding(m.start(), m.end(), pat.kind, "pattern"))
