"""Places and institutions in narrative: gazetteer places, hospitals, wards, streets.

Cities, counties, states and countries come from GeoNames (``gazetteer.py``);
a word that is also ordinary English or a name only counts after a place verb
or a preposition. Institutions are found by their shape: a proper name before
"Hospital"/"Medical Center", a saint's or sacred name ("St. Agnes", "Holy
Cross"), a hospital acronym after a preposition ("to GBMC") and a named ward
with its number ("to Kestrelmoor 4").
"""

from __future__ import annotations

import re
from itertools import compress, count, islice
from operator import add

from sluicegate.core.privacy.findings import Finding, Kind
from sluicegate.core.privacy.gazetteer import place_names, place_prefixes
from sluicegate.core.privacy.lexicon import NOT_AFTER_TITLE, Lexicon
from sluicegate.core.privacy.tokens import (
    TOKEN,
    TOKEN_ENDING,
    LedRule,
    WordLedScan,
    first_runs,
    lead,
    leftmost,
    trie,
)

_WORD = re.Match.group
_HOSPITAL_SUFFIX = re.compile(
    r"(?=[hmcrnivs])\b(?:hospital|hosp|medical center|med ctr|medical centre|clinic|"
    r"rehab(?:ilitation)?|nursing home|health center|healthcare|infirmary|hospice|memorial|"
    r"regional|vamc|va medical center|cancer center|square|cross|heart)\b",
)
# The (up to three) words just before a hospital suffix, read backwards from it.
_HOSPITAL = re.compile(
    r"(?P<v>(?:[A-Za-z][\w'.-]*[ \t]+){0,2}[A-Za-z][\w'-]*)[ \t]+"
    r"(?P<n>(?:general|memorial|regional|square|cross|heart|county|university)[ \t]+)?$",
    re.IGNORECASE,
)
# What ``_HOSPITAL`` can span, read on the reversed text from the suffix back: the newline
# its "$" may stand before, blanks, then at most four runs of its word characters (three
# words and "general" ...). A match starts no earlier than this reaches, so the search can
# start there instead of trying (and backtracking from) every position of its window.
_HOSPITAL_REACH = re.compile(r"\n?[ \t]*(?:[\w'.-]+(?:[ \t]+[\w'.-]+){0,3})?")


def hospital_words_before(text: str, end: int) -> re.Match[str] | None:
    """``_HOSPITAL`` within the 60 characters before ``end``, searched only from
    where a match can begin (``_HOSPITAL_REACH``): the same match as searching
    the whole window, without trying and backtracking from every position."""
    window = text[max(0, end - 60) : end]
    reach = _HOSPITAL_REACH.match(window[::-1])  # always matches (all optional)
    return _HOSPITAL.search(text, end - (reach.end() if reach else len(window)), end)


_PLACE_VERBS = [
    "lives",
    "living",
    "lived",
    "resides",
    "residing",
    "resident",
    "native",
    "home",
    "born",
    "vacationing",
    "vacation",
    "trip",
    "travel",
    "traveled",
    "travelled",
    "traveling",
    "travelling",
    "moved",
    "transferred",
    "transfered",
    "transfer",
    "tx",
    "txd",
    "admitted",
    "adm",
    "sent",
    "came",
    "coming",
    "discharged",
    "taken",
    "brought",
    "arrived",
    "went",
    "presented",
    "presenting",
    "return",
    "returned",
    "returning",
    "accepted",
    "go",
    "going",
    "flown",
    "flew",
    "medflighted",
    "report from",
    "from the",
    "at the",
    "grew up",
    "i am",
    "i'm",
    "visiting",
    "based",
    "located",
    "originally",
    "staying",
    "city",
    "town",
    "address is",
    "address:",
]
_PLACE_BEFORE = re.compile(
    lead(_PLACE_VERBS)
    + r"\b"
    + trie(_PLACE_VERBS)
    + r"(?:\s+(?:nearby|here|there|back|home|over|up|down))?\s+(?:(?P<prep>in|to|from|at|of)\b)?\s*"
    r"(?:the\s+)?",
)
_PLACE_TAIL = re.compile(r"(?:[ \t]+(?!(?:ER|EW|ED|ICU|MICU|CCU)\b)[A-Z][A-Za-z'-]*[A-Za-z]){1,2}")
#: Words that open a town's name ("Port Shannonland", "North Ashleyville", "San Teresa los
#: Altos"): after a place verb they and the capitalised words after them are one place,
#: though "port" alone is an IV port and "north" a direction.
_PLACE_PREFIXES = frozenset(
    "port fort mount mt lake north south east west new upper lower san santa sao saint".split()  # noqa: SIM905
)
_PREFIXED_TAIL = re.compile(
    r"(?:[ \t]+(?:(?:los|las|de|del|la|le|an[ \t]+der|am|sur|do|da|dos)[ \t]+){0,2}"
    r"(?!(?:ER|EW|ED|ICU|MICU|CCU)\b)[A-Z][A-Za-z'-]*[A-Za-z]){1,3}"
)
_PREFIXED_TAIL_NOCASE = re.compile(r"[ \t]+([A-Za-z][A-Za-z'-]*[A-Za-z])")
_MULTIWORD_STATE = re.compile(r"(?=[ndsrw])\b(?:new|north|south|west|rhode|district of)\s+[a-z]+\b")
_PLACE_WORDS = frozenset(
    [
        "holy",
        "sacred",
        "st",
        "st.",
        "saint",
        "mount",
        "mt",
        "mt.",
        "university",
        "general",
        "union",
        "children's",
        "childrens",
        "women's",
        "community",
        "memorial",
        "county",
        "regional",
        "veterans",
        "mercy",
        "baptist",
        "methodist",
        "presbyterian",
        "lutheran",
        "adventist",
    ]
)
_NOT_A_PLACE = frozenset(
    [
        "the",
        "a",
        "an",
        "this",
        "that",
        "his",
        "her",
        "our",
        "their",
        "home",
        "here",
        "there",
        "floor",
        "unit",
        "icu",
        "ccu",
        "micu",
        "sicu",
        "csru",
        "ed",
        "er",
        "or",
        "ew",
        "cath",
        "lab",
        "rehab",
        "hospital",
        "hosp",
        "nursing",
        "osh",
        "outside",
        "another",
        "other",
        "same",
        "to",
        "from",
        "at",
        "in",
        "of",
        "and",
        "for",
        "with",
        "by",
        "on",
        "pt",
        "patient",
        "he",
        "she",
        "they",
        "we",
        "it",
        "bed",
        "room",
        "ct",
        "mri",
        "ir",
        "xray",
        "x-ray",
        "us",
        "cxr",
        "pacu",
        "pre",
        "post",
        "op",
        "icu's",
        "floor's",
        "nh",
        "snf",
        "ltac",
        "ltc",
        "acute",
        "chronic",
        "him",
        "them",
        "into",
        "further",
        "cardiac",
        "pulmonary",
        "inpatient",
        "outpatient",
        "screened",
        "screening",
        "eval",
        "evaluation",
        "possible",
        "poss",
        "transferred",
        "transfered",
        "transfer",
        "discharged",
        "admitted",
        "sent",
        "went",
        "taken",
    ]
)

# Prepositions before a place in an all-caps note: "in/from/near" ("LIVES IN MOBILE") vouch
# for an ordinary word, "to/at" only for a name ("AT BALTIMORE", not "ABLE TO CONVERSE").
_PREP_END = re.compile(r"\b(?:(?P<strong>in|from|near)|to|at)[ \t]+(?:the[ \t]+)?$", re.I)
# "St. Agnes", "Saint Mary's", "Holy Cross", "Mount Sinai", "sacred heart".
_SAINT_PLACE = re.compile(
    r"(?=[shm])\b(?P<p>st\.|st|saint|holy|sacred|mount|mt\.)[ \t]+(?P<w>[^\W\d_][\w']*)"
    r"(?P<t>(?:[ \t]+(?:heart|cross|family|name))?(?:[ \t]+(?:memorial|hospital|hosp|medical center"
    r"|rehab|regional|nursing home|hospice)\b)?)",
)
# A hospital acronym after a preposition: "referred to GH", "at GBMC", "from UMMC".
_ACRONYM_TAIL = r"[ \t]*(?<![a-z])(?:the[ \t]+)?(?P<a>[a-z]{1,4}(?:h|mc|hc)|mc|hc)\b(?!\.\w)"
_ACRONYM_PLACE = re.compile(
    r"(?=[tafbopi@>-])(?:\b(?:to|at|from|into|by|of|per)|@|->?)" + _ACRONYM_TAIL
)
# Its two branches apart: the first led by a word (in ``RULES``), the second by a sign.
_ACRONYM_AFTER_WORD = re.compile(r"\b(?:to|at|from|into|by|of|per)" + _ACRONYM_TAIL)
# The sign branch itself as two regexes, each led by one literal character: the engine
# skips ahead to such a character fast, but tries a set of two at every position.
_ACRONYM_AFTER_AT = re.compile(r"@" + _ACRONYM_TAIL)
_ACRONYM_AFTER_ARROW = re.compile(r"->?" + _ACRONYM_TAIL)


def acronyms_after_signs(low_text: str) -> list[re.Match[str]]:
    """The matches of ``(?:@|->?)`` + ``_ACRONYM_TAIL`` in ``low_text``, in order."""
    arrows = list(_ACRONYM_AFTER_ARROW.finditer(low_text))
    if "@" not in low_text:
        return arrows
    return leftmost(_ACRONYM_AFTER_AT.finditer(low_text), arrows)


# The town after a street line: "31 Seneca Place, Marshland", "Farnell Street, LOOMBAH".
_STREET_SUFFIXES = frozenset(
    [
        "street",
        "st",
        "avenue",
        "ave",
        "road",
        "rd",
        "place",
        "pl",
        "lane",
        "ln",
        "drive",
        "dr",
        "close",
        "court",
        "ct",
        "boulevard",
        "blvd",
        "way",
        "terrace",
        "gate",
        "crescent",
        "square",
        "sq",
        "highway",
        "hwy",
    ]
)
# Street words written with a capital (literal first letters: the engine skips ahead fast).
_STREET_WORD = re.compile(
    r"(?:S(?:treet|quare)|Avenue|Road|Lane|Drive|Boulevard|Terrace|C(?:rescent|lose|ourt)"
    r"|P(?:lace|arkway)|Highway)\b"
)
_PROSE_STREETS = frozenset(["Close", "Court", "Place", "Square", "Drive"])
_HOUSE_AND_STREET = re.compile(
    r"\d+[a-zA-Z]?[ \t]+(?P<name>[^\W\d_][\w'.-]*)(?:[ \t]+[^\W\d_][\w'.-]*){0,3}[ \t]+$"
)
_TOWN_WORDS = re.compile(r"[^\W\d_][\w'-]*(?:[ \t][^\W\d_][\w'-]*){0,2}")
# A place named by the word before: "Marrowfield area", "Howard County", "North Campus", and a
# hospital by its emergency department: "from brenthollow ew", "Mercy ER".
_PLACE_NOUN_AFTER = re.compile(
    r"[ \t](?:(?P<area>area|region|neighbou?rhood)|(?P<county>county|township"
    r"|district|campus)|(?P<er>ew|er|ed|emergency room|emergency department))\b"
)
_AREA_PREP = re.compile(r"\b(?:in|from|near|around|of|the)[ \t]+$")
#: Intensive-care and step-down unit names end like these ("pmicu", "tsicu", "vicu").
_UNIT_ENDINGS = ("icu", "ccu", "csru", "pacu", "cvvh", "hd")
_POSTAL_AFTER = re.compile(r"[ \t]*,?[ \t]+(?:[A-Z]{2}[ \t]+)?\d{4,6}\b(?![./:-]?\d)")
# "U Maryland", "Univ. of Iowa": a university named after a place is an institution.
_UNIVERSITY = re.compile(r"(?=u)\b(?:u|univ\.?|university)(?:[ \t]+of)?[ \t]+(?=[a-z])")
# A named ward or floor with its number after a preposition: "transfer to Kestrelmoor 4".
_WARD = re.compile(
    r"(?=[tfoapi])\b(?:to|from|on|at|per|in|or|and)[ \t]+(?:the[ \t]+)?"
    r"(?P<w>[^\W\d_]+)[ \t]?(?P<n>\d{1,2}(?:[a-d]\b)?(?:[ \t]+(?:north|south|east|west)\b)?)"
    r"\b(?![./%:,]\d|[ \t]*%"
    r"|[ \t]*(?:mg|mcg|meq|mmol|units?|u|cc|ml|l|g|kg|mm|cm|hrs?|mins?|days?|x)\b)",
)
# Facility head nouns that need a proper name before them ("Lee Family Practice",
# "Hough Pavilion", "Fresno General", "Burke & Drgas Internal Medicine").
_FACILITY_HEADS = [
    "practice",
    "associates",
    "group",
    "pavilion",
    "manor",
    "general",
    "unit",
    "partners",
    "internal medicine",
    "health system",
    "centre",
    "center",
]
_FACILITY_HEAD = re.compile(lead(_FACILITY_HEADS) + r"\b" + trie(_FACILITY_HEADS) + r"\b")
#: Words naming a service or kind of facility, between its proper name and its head noun.
_SERVICE_WORDS = frozenset(
    str.split(
        """family internal medicine medical cardiology cardiac pulmonary pulmonology renal kidney
    oncology cancer orthopedic orthopedics orthopaedic pediatric pediatrics paediatric neurology
    dermatology surgical surgery surgeons gastroenterology digestive urology women's children's
    childrens womens community health rehabilitation rehab general memorial regional primary
    care behavioral mental eye dental heart vascular sports physical therapy endocrinology
    diabetes rheumatology psychiatry psychiatric nephrology hematology radiology imaging urgent
    senior geriatric pain sleep spine wound infusion dialysis allergy asthma lung skilled nursing
    specialty specialists specialist clinic hospital center centre ent ob gyn obgyn womens
    medicine practice physicians doctors wellness hearing vision"""
    )
)
#: Head nouns that vouch for a proper name before them even without a service word.
_STRONG_HEADS = frozenset(["hospital", "medical center", "medical centre", "associates", "clinic"])
_SERVICE_ONLY = _SERVICE_WORDS - _PLACE_WORDS
# A unit of the hospital after a word or two: "Step Down Unit", "Intensive Care Unit".
_UNIT_AFTER = re.compile(r"(?:[ \t]+[A-Z][a-z]+){0,2}[ \t]+(?:Unit|Floor|Ward|ICU)\b")
#: Small words inside a facility's proper name ("Burke & Drgas", "da Costa Paulista").
_NAME_JOINERS = frozenset(
    [
        "&",
        "and",
        "de",
        "da",
        "do",
        "dos",
        "das",
        "del",
        "della",
        "la",
        "le",
        "los",
        "las",
        "van",
        "von",
        "der",
        "den",
        "di",
        "du",
        "y",
        "e",
    ]
)
#: Name particles that may open a facility's name.
_PARTICLES = _NAME_JOINERS - {"&", "and", "y", "e"}
#: Words that open a place's name ("East Nancyburgh", "Port Lawrence", "New Markshire").
_PLACE_OPENERS = frozenset(
    [
        "new",
        "east",
        "west",
        "north",
        "south",
        "port",
        "fort",
        "lake",
        "mount",
        "mt",
        "san",
        "santa",
        "saint",
        "st",
        "el",
        "upper",
        "lower",
    ]
)
# A street line from its house number: "737 Jordan Gardens", "5900 Mckenzie Wells Apt. 511"
# (USPS street suffixes, general knowledge); run on the folded text.
_STREET_TYPES = str.split(
    """street st avenue ave av road rd place pl lane ln drive dr close court ct
boulevard blvd way terrace gate crescent square sq highway hwy parkway pkwy circle cir
trail trl path loop row walk alley plaza plz gardens garden gdns shores shore wells well port
ports station stn views view island islands flat flats common commons neck land keys key
branch branches mountain mountains points point valleys valley hills hill heights ridge ridges
park parks run pass passage crossing xing grove groves green greens harbor harbour haven
junction jct knoll knolls lake lakes landing meadow meadows mews mill mills orchard oval pike
pines plains prairie ranch rapids rest river rivers route spring springs spur square squares
summit terrace trace track turnpike union unions vista village villages ville wall ways burg
burgs bypass camp canyon cape causeway center centre cliff cliffs club corner corners course
courts cove coves creek crest curve dale dam divide estate estates expressway extension falls
ferry field fields forest forge forges fork forks fort freeway glen glens ford fords hollow
inlet isle lock locks lodge manor manors motorway overpass radial ramp shoal shoals skyway
stream streets throughway tunnel underpass viaduct lights light brook brooks bridge bluff
bluffs bottom bend beach dl rds rdg"""
)
_STREET_TAIL = (
    r"[ \t]+(?P<words>(?:[^\W\d_][\w'.-]*[ \t]+){1,3})"
    r"(?P<type>" + trie(sorted(set(_STREET_TYPES))) + r")\b\.?"
    r"(?P<unit>,?[ \t]*(?:apt|apartment|suite|ste|unit|flat|studio|fl|floor|room|rm|#)\.?"
    r"[ \t]*#?\d+[a-z]?\b)?"
)
_STREET_LINE = re.compile(r"(?P<no>\d(?<![\w./:-]\d)\d{0,5}[a-z]?)" + _STREET_TAIL)
# The same over the folded text with every digit written "0" (``_ZEROS``): led by a literal,
# the engine skips to each candidate in C at several times the speed of a digit class.
_STREET_LINE_ZEROS = re.compile(r"(?P<no>0(?<![\w./:-]0)0{0,5}[a-z]?)" + _STREET_TAIL)
_ZEROS = str.maketrans("123456789", "000000000")
#: ``_ZEROS`` for ASCII text as bytes: a table lookup per byte, several times faster.
_ZEROS_ASCII = bytes.maketrans(b"123456789", b"000000000")
# A house number before a street, "Studio 5 Smith Shores", "H.No. 634, Oza Circle".
_UNIT_BEFORE = re.compile(r"(?:(?:apt|suite|flat|studio|unit)\.?|h\.?[ \t]?no\.?)[ \t]*$")
# One comma-separated part after a street line: a town, a state, a country, a postal code.
_ADDRESS_PART = re.compile(
    r"(?:,[ \t]*|[ \t]+|[ \t]*\n[ \t]*)"
    r"(?P<part>[^\W_](?:[\w'&-]|\.(?=\w))*(?:[ \t][^\W_](?:[\w'&-]|\.(?=\w))*){0,4})"
)
_POSTAL = re.compile(r"(?=[A-Za-z]{0,2}\d)[A-Za-z\d]{2,8}(?:-[A-Za-z\d]{2,4})?$")
#: Street types too ambiguous without case: "ST segment", "Dr", "AV block", "CT", "PL".
_SHORT_STREET_TYPES = frozenset(
    ["st", "dr", "av", "ct", "pl", "ln", "cir", "sq", "dl", "run", "pass"]
)
# A dose after a town's name makes it a drug ("Norco 5/325"); a device or a payer label
# around a saint's or sacred name makes it a brand ("a St. Jude valve", "Insurance: Blue Cross").
_DOSE_AFTER = re.compile(
    r"[ \t]+\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?|[ \t]*(?:mg|mcg|ml|units?|tabs?|caps?)\b)", re.I
)
_BRAND_AFTER = re.compile(
    r"[ \t]+(?:valves?|device|pacemaker|icd|leads?|stent|prosthesis|implant|catheter|pump)\b",
    re.I,
)
_PAYER_BEFORE = re.compile(r"(?:insurance|insurer|payer|payor|coverage)[ \t]*:?[ \t]*$", re.I)
# A street named before its number, after "lives at" / "address is": "Miloulaan 542",
# "24, rue de Dupont", "ulica Handlowa 26/10", "Morro de Araújo, 34", "Rue de Brunel".
_NAMED_STREET = re.compile(
    r"(?:(?P<no>\d{1,5}[a-z]?),?[ \t]+)?(?P<words>[^\W\d_][\w'.-]*(?:[ \t]+[^\W\d_][\w'.-]*){0,3}?)"
    r"(?:,?[ \t]*(?P<no2>\d{1,5}(?:[/-]\d{1,4})?[a-z]?)\b)?(?=[ \t]*(?:[,.;\n]|$))"
)
#: Words that open a street's name in many languages (general knowledge).
_STREET_OPENERS = frozenset(
    str.split(
        """rue boulevard bd avenue av allée allee chemin impasse quai calle avenida av. carrera
        via viale vicolo contrada borgo piazza piazzale corso largo strada rotonda incrocio
        ulica ul ul. aleja al. plac rua travessa estrada alameda praça praca morro largo
        loteamento rodovia"""
    )
)
#: Words that end an address line: a label or a new sentence's opener.
_NOT_ADDRESS = frozenset(
    str.split(
        """tel tel. telephone fax phone ph cell mobile email e-mail dob mrn pcp dr dr. md re dear
    attn date and he she pt patient who was is has her his their labs total past on for with
    at to"""
    )
)
#: After "lives ... in": "lives with her son Theodore in Amybury", "lives independently in".
_LIVES_IN = re.compile(r"[^.;:\n]{0,60}?\bin[ \t]+(?:the[ \t]+)?")

#: Clinical abbreviations ending like hospital acronyms (hemorrhages, hypertrophies, hormones).
_NOT_AN_INSTITUTION = frozenset(
    [
        "osh",
        "oh",
        "ich",
        "sah",
        "ivh",
        "lvh",
        "rvh",
        "bph",
        "pph",
        "sdh",
        "edh",
        "iph",
        "hh",
        "nph",
        "dh",
        "ph",
        "mh",
        "bh",
        "ah",
        "uh",
        "eh",
        "th",
        "wh",
        "sh",
        "ch",
        "pah",
        "vh",
        "lh",
        "fsh",
        "tsh",
        "acth",
        "adh",
        "pth",
        "gh-rh",
        "hcth",
        "rh",
        "ugh",
        "ach",
        "doh",
        "mmhc",
        "mhc",
    ]
)


#: The place regexes led by a word, with those words (``tokens.WordLedScan``): scanned once,
#: together with the name context rules, by the name recognizer.
RULES: list[LedRule] = [
    ("place_before", _PLACE_BEFORE, first_runs(_PLACE_VERBS), 0),
    ("saint", _SAINT_PLACE, ["st", "saint", "holy", "sacred", "mount", "mt"], 0),
    ("university", _UNIVERSITY, ["u", "univ", "university"], 0),
    (
        "hospital",
        _HOSPITAL_SUFFIX,
        first_runs(
            "hospital hosp medical med clinic rehab rehabilitation nursing health healthcare"  # noqa: SIM905
            " infirmary hospice memorial regional vamc va cancer square cross heart".split()
        ),
        0,
    ),
    ("facility", _FACILITY_HEAD, first_runs(_FACILITY_HEADS), 0),
    ("state", _MULTIWORD_STATE, ["new", "north", "south", "west", "rhode", "district"], 0),
    ("ward", _WARD, ["to", "from", "on", "at", "per", "in", "or", "and"], 0),
    ("acronym", _ACRONYM_AFTER_WORD, ["to", "at", "from", "into", "by", "of", "per"], 0),
    (
        "noun_after",
        _PLACE_NOUN_AFTER,
        "area region neighborhood neighbourhood county township district campus ew er ed"  # noqa: SIM905
        " emergency".split(),
        1,
    ),
]
#: What must follow a frequent lead word for its rule to match from it (the ward's name and
#: number, an acronym ending like a hospital's): the scan checks it, so "able to walk",
#: "and", "on" cost no Python call. Each is implied by the rule's regex after the word.
_WARD_GATE = r"[ \t]+(?:the[ \t]+)?[^\W\d_]+[ \t]?\d"
_ACRONYM_GATE = r"[ \t]+(?:the[ \t]+)?[a-z]{0,4}(?:h|mc|hc)\b"
GATES = {
    **{("ward", w): _WARD_GATE for w in ["to", "from", "on", "at", "per", "in", "or", "and"]},
    **{("acronym", w): _ACRONYM_GATE for w in ["to", "at", "from", "into", "by", "of", "per"]},
    ("place_before", "at"): " the",  # "at the", "from the", "i am", "i'm" among the verbs
    ("place_before", "from"): " the",
    ("place_before", "i"): " am|'m",
    ("university", "u"): r"[ \t]+[a-z]",
    ("hospital", "med"): " ctr",
}
_SCAN = WordLedScan(RULES, GATES)


class PlaceRecognizer:
    """Finds places (Kind.LOCATION) given the tokens the name recognizer already read."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._lex = lexicon
        self._common = lexicon.common
        self._stop = lexicon.stop
        self._given = lexicon.given
        self._surnames = lexicon.surnames
        self._states = lexicon.states
        self._dictionary = lexicon.dictionary
        self._gazetteer = place_names()
        self._gazetteer_prefixes = place_prefixes()
        #: Where a gazetteer match can start (see ``_gazetteer_places``): a two-word place or
        #: prefix, or a one-word place that ``_place_words_ok`` does not always refuse alone.
        self._two_words = frozenset(
            w for w in self._gazetteer | self._gazetteer_prefixes if w.count(" ") == 1
        )
        self._single = frozenset(
            w for w in self._gazetteer if " " not in w and not self._refused(w)
        )
        self._single_nocase = frozenset(w for w in self._single if not self._refused_nocase(w))

    def find(
        self,
        text: str,
        low_text: str,
        tokens: list[re.Match[str]],
        nocase: bool,
        led: dict[str, list[re.Match[str]]] | None = None,
        lows: list[str] | None = None,
    ) -> list[Finding]:
        """Places in ``text``; ``low_text`` is ``tokens.folded(text)``, where the case-blind
        regexes of this module run (without IGNORECASE, about twice as fast).

        ``led`` holds the matches of ``RULES`` in ``low_text`` when the caller scanned them
        already; otherwise they are scanned here. ``lows`` are the ``tokens`` in lower case
        when the caller has them.
        """
        if led is None:
            led = _SCAN.run(low_text)
        out: list[Finding] = []
        context: set[int] = set()
        moving: set[int] = set()  # after a verb and a preposition: "went to", "lives in"
        for m in led["place_before"]:
            context.add(m.end())
            verb = m.group()
            if m.group("prep") or verb.rstrip().endswith(("city", "town")):
                moving.add(m.end())  # "home city Station Nord" as strong as "went to"
                if m.group("prep") == "at":
                    self._address_at(text, low_text, m.end(), nocase, out)
            elif verb.startswith("address"):
                self._address_at(text, low_text, m.end(), nocase, out)
            elif verb.startswith(("live", "resid")):
                later = _LIVES_IN.match(low_text, m.end())
                if later is not None:  # "lives with her son Theodore in Amybury"
                    context.add(later.end())
                    moving.add(later.end())
        if lows is None:
            lows = list(map(str.lower, map(_WORD, tokens)))
        out.extend(self._gazetteer_places(text, tokens, lows, nocase, context))
        for saint in led["saint"]:
            found = self._saint_place(text, saint, nocase)
            if found is not None:
                out.append(found)
        acronyms = leftmost(led["acronym"], acronyms_after_signs(low_text))
        self._institutions(text, nocase, out, acronyms, led["ward"])
        for m in led["university"]:
            place = TOKEN.match(text, m.end())
            if place is not None and place.group().lower() in self._gazetteer:
                out.append(Finding(m.start(), place.end(), Kind.LOCATION, "dictionary"))
        self._hospitals_and_context(text, nocase, context, moving, out, led["hospital"])
        for m in led["facility"]:
            found = self._facility_name(text, m.start(), m.end(), nocase)
            if found is not None:
                out.append(found)
        self._street_lines(text, low_text, nocase, out)
        self._towns_after_streets(text, low_text, out)
        if not nocase:
            self._street_names(text, out)
        self._places_before_nouns(text, low_text, nocase, out, led["noun_after"])
        for m in led["state"]:
            if " ".join(m.group().split()) in self._states:
                out.append(Finding(m.start(), m.end(), Kind.LOCATION, "dictionary"))
        return out

    def _places_before_nouns(
        self,
        text: str,
        low_text: str,
        nocase: bool,
        out: list[Finding],
        nouns: list[re.Match[str]],
    ) -> None:
        """ "Marrowfield area", "North Campus", "brenthollow ew": the word before names a place.

        ``nouns`` are the matches of ``_PLACE_NOUN_AFTER`` in ``low_text``."""
        for m in nouns:
            end = m.start()
            while end > 0 and text[end - 1] in " \t":
                end -= 1
            word = TOKEN_ENDING.search(text, max(0, end - 30), end)
            if word is None:
                continue
            w = word.group()
            low = w.lower().removesuffix("'s")
            if low in _NOT_A_PLACE or low in self._stop or len(low) < 3:
                continue
            titled = not nocase and w[0].isupper() and not w.isupper()
            if m.group("area") and not _AREA_PREP.search(
                low_text, max(0, word.start() - 12), word.start()
            ):
                continue  # "in the Towson area", not "reddened area over the sacrum"
            if m.group("area") or m.group("county"):
                ok = (titled and not self._lex.typo(low)) or self._unknown_place_word(low)
            else:  # an emergency department: a hospital's name, never an ordinary word
                ok = self._unknown_place_word(low) or (
                    titled and low not in self._common and self._lex.known_name(low)
                )
            if ok:
                out.append(Finding(word.start(), word.end(), Kind.LOCATION, "dictionary"))

    def _street_names(self, text: str, out: list[Finding]) -> None:
        """ "on Tarsicio Isle Street", "at Countess Close": capitalised words, then a street."""
        for m in _STREET_WORD.finditer(text):
            end = m.start() - 1
            if end < 1 or text[end] not in " \t":
                continue
            start = -1
            for _ in range(3):  # up to three capitalised words before the street word
                word = TOKEN_ENDING.search(text, max(0, end - 30), end)
                if word is None or not word.group()[0].isupper() or word.group().isupper():
                    break
                if word.group().lower() in self._stop or word.group().lower() in _NOT_A_PLACE:
                    break
                start = word.start()
                end = start - 1
                if end < 1 or text[end] not in " \t":
                    break
            if start < 0:
                continue
            words = text[start : m.start()].split()
            if len(words) == 1 and words[0].lower() in self._common and m.group() in _PROSE_STREETS:
                continue  # "Main Street" is a street; "Very Close", "Same Place" are prose
            out.append(Finding(start, m.end(), Kind.LOCATION, "dictionary"))

    def _towns_after_streets(self, text: str, low_text: str, out: list[Finding]) -> None:
        """The capitalised words after "<Name> Street," are the town."""
        comma = low_text.find(",")  # a regex over every letter costs more than this loop
        while comma >= 0:
            at, comma = comma, low_text.find(",", comma + 1)
            suffix_start = low_text.rfind(" ", max(0, at - 12), at) + 1
            if not suffix_start or low_text[suffix_start:at].rstrip(".") not in _STREET_SUFFIXES:
                continue
            street = _HOUSE_AND_STREET.search(text, max(0, suffix_start - 50), suffix_start)
            if street is None or not street.group("name")[0].isupper():
                continue  # "9 Elm Street, Springfield": a house number and a capitalised name
            town_start = at + 1
            while town_start < len(text) and text[town_start] in " \t":
                town_start += 1
            town = _TOWN_WORDS.match(text, town_start)
            if town is None:
                continue
            words = town.group().split()
            keep = 0
            for w in words:
                if not w[0].isupper() or w.lower() in self._stop:
                    break
                keep += 1
            if keep:
                end = town_start + len(" ".join(words[:keep]))
                out.append(Finding(town_start, end, Kind.LOCATION, "dictionary"))

    def _institutions(
        self,
        text: str,
        nocase: bool,
        out: list[Finding],
        acronyms: list[re.Match[str]],
        wards: list[re.Match[str]],
    ) -> None:
        """Hospital acronyms after a preposition ("to GH") and numbered wards ("Kestrelmoor 4").

        ``acronyms`` and ``wards`` are the matches of ``_ACRONYM_PLACE`` and ``_WARD`` in the
        folded text."""
        for m in acronyms:
            acronym = text[m.start("a") : m.end("a")]
            low = acronym.lower()
            if low in _NOT_AN_INSTITUTION or low in self._stop:
                continue
            if (nocase or not acronym.isupper()) and (
                self._lex.ordinary(low) or low in self._given or low in self._surnames
            ):
                continue
            out.append(Finding(m.start("a"), m.end("a"), Kind.LOCATION, "dictionary"))
        for m in wards:
            low = m.group("w")
            if not (nocase or text[m.start("w")].isupper()):
                continue  # a lower-case word in mixed text is read after a place verb instead
            wing = not m.group("n").isdigit()  # "Hall 7B", "Price 14 North": a ward's shape
            if wing and low not in _NOT_A_PLACE and len(low) > 1 and m.start("w") < m.end("w") - 1:
                if nocase and not (self._lex.known_name(low) or self._unknown_place_word(low)):
                    continue
                if m.end("w") == m.start("n") and low.endswith("x"):
                    continue
                out.append(Finding(m.start("w"), m.end("n"), Kind.LOCATION, "dictionary"))
                continue
            if len(low) < 4 or low in self._stop or low in _NOT_A_PLACE:
                continue
            if not (
                self._unknown_place_word(low)
                or (self._lex.known_name(low) and not self._lex.ordinary(low))
            ):
                continue  # "to recieve 1", "on PSVof 15"; "on Garnier 10": named after someone
            if m.end("w") == m.start("n") and low.endswith("x"):
                continue  # "ORIENTEDX3", "mvtx4": times three, not a ward
            out.append(Finding(m.start("w"), m.end("n"), Kind.LOCATION, "dictionary"))

    def _hospitals_and_context(
        self,
        text: str,
        nocase: bool,
        context: set[int],
        moving: set[int],
        out: list[Finding],
        suffixes: list[re.Match[str]],
    ) -> None:
        """Names before a hospital word, and places after a place verb ("lives in X").

        ``suffixes`` are the matches of ``_HOSPITAL_SUFFIX`` in the folded text."""
        for suffix in suffixes:
            m = hospital_words_before(text, suffix.start())
            if m is None or _PAYER_BEFORE.search(text, max(0, m.start() - 16), m.start()):
                continue
            found = self._hospital_name(text, m, nocase)
            if found is not None:  # the name with its hospital word: "Tillamook Regional"
                out.append(Finding(found.start, suffix.end(), found.kind, found.source))
            else:  # "Wejherowo Pulmonary Clinic": a service between name and hospital word
                found = self._facility_name(text, suffix.start(), suffix.end(), nocase)
                if found is not None:
                    out.append(found)
        for pos in sorted(context):
            m = TOKEN.match(text, pos)
            if m is not None:
                place = self._place_after_context(text, m, nocase, pos in moving)
                if place is not None:
                    out.append(place)

    def _gazetteer_places(
        self,
        text: str,
        tokens: list[re.Match[str]],
        lows: list[str],
        nocase: bool,
        context: set[int],
    ) -> list[Finding]:
        """Cities, counties, states and countries from the gazetteer, one or more words."""
        out: list[Finding] = []
        names, prefixes = self._gazetteer, self._gazetteer_prefixes
        n = len(tokens)
        # A match can start only at a one-word place that ``_place_words_ok`` may take, or at
        # a word that a two-word place or prefix continues: both found in C, all in order.
        pairs = map(add, lows, map(" ".__add__, islice(lows, 1, None)))
        starts = set(compress(count(), map(self._two_words.__contains__, pairs)))
        single = self._single_nocase if nocase else self._single
        starts.update(compress(count(), map(single.__contains__, lows)))
        resume = 0  # after a place, the next one starts past its last word
        for i in sorted(starts):
            if i < resume:
                continue
            m = tokens[i]
            phrase = lows[i]
            best = -1
            j = i
            while True:
                if phrase in names:
                    best = j
                if phrase not in prefixes or j + 1 >= n:
                    break
                if text[tokens[j].end() : tokens[j + 1].start()] not in {" ", "-", ". "}:
                    break
                j += 1
                phrase += " " + lows[j]
            if best >= 0 and _DOSE_AFTER.match(text, tokens[best].end()):
                resume = best + 1  # "Norco 5/325", "Lasix 40 mg": a drug named like a town
                continue
            if best >= 0 and self._place_words_ok(
                tokens[i : best + 1],
                nocase,
                m.start() in context,
                self._preposition(text, m.start()),
            ):
                end = tokens[best].end()
                code = _POSTAL_AFTER.match(text, end)  # "Turku 20100", "Aalborg NO 9100"
                out.append(
                    Finding(m.start(), code.end() if code else end, Kind.LOCATION, "dictionary")
                )
                resume = best + 1
        return out

    @staticmethod
    def _preposition(text: str, pos: int) -> int:
        """2 after "in/from/near", 1 after "to/at", 0 otherwise."""
        m = _PREP_END.search(text, max(0, pos - 8), pos)
        if m is None:
            return 0
        return 2 if m.group("strong") else 1

    def _refused(self, low: str) -> bool:
        """Does ``_place_words_ok`` refuse this word alone, written in any case?"""
        return len(low) < 4 or low in self._stop or low in _NOT_A_PLACE or low in NOT_AFTER_TITLE

    def _refused_nocase(self, low: str) -> bool:
        """... or alone in a note without case, as an ordinary word ("Reading", "Mobile")."""
        return low in self._common and low in self._dictionary

    def _place_words_ok(
        self, words: list[re.Match[str]], nocase: bool, context: bool, prep: int
    ) -> bool:
        """Is this gazetteer hit written like a place, not like an ordinary word?"""
        lows = [w.group().lower() for w in words]
        if not nocase and not all(w.group()[0].isupper() for w in words):
            return False
        if len(words) > 1:
            return context or not all(w in self._common for w in lows)
        word, low = words[0].group(), lows[0]
        if len(low) < 4 or low in self._stop or low in _NOT_A_PLACE or low in NOT_AFTER_TITLE:
            return False
        if not nocase and word.isupper() and len(low) <= 4:
            return False  # an abbreviation
        if low in self._common and low in self._dictionary:
            return context and not nocase  # "Reading", "Mobile": ordinary words too
        if nocase and (
            (self._lex.ordinary(low) and not self._lex.known_name(low)) or self._lex.wordy(low)
        ):
            return context or prep == 2  # "LIVES IN MOBILE", not "ABLE TO CONVERSE"
        if nocase and (self._lex.ordinary(low) or low in self._given or low in self._surnames):
            if prep == 1 and not context and self._lex.dictionary_word(low):
                return False  # "ABLE TO CONVERSE": after "to" a word is a verb first
            return context or prep > 0  # "lives in BALTIMORE", not "a baltimore oriole"
        return True

    def _saint_place(self, text: str, m: re.Match[str], nocase: bool) -> Finding | None:
        """ "St. Agnes", "Holy Cross", "Mount Sinai": a saint's or sacred name is an institution."""
        if _BRAND_AFTER.match(text, m.end()) or _PAYER_BEFORE.search(
            text, max(0, m.start() - 16), m.start()
        ):
            return None  # "a St. Jude valve", "Insurance: Blue Cross": brands, not places
        first = text[m.start("w") : m.end("w")]
        low = m.group("w").removesuffix("'s")
        lead = m.group("p").rstrip(".")
        if low in self._stop or low in _NOT_A_PLACE or len(low) < 2:
            return None
        if lead in {"holy", "sacred"}:
            ok = first[0].isupper() or nocase or low in {"cross", "heart", "family", "name"}
        elif nocase or first.islower():
            ok = low in self._given or self._lex.rare(low, low.removesuffix("s") in self._stop)
            ok = ok and (lead != "st" or "." in m.group("p") or low in self._given)
        else:  # "St. Agnes", not "NSR to ST. No ectopy"
            ok = first[0].isupper() and not (first.isupper() and len(low) <= 3)
            ok = ok and (low in self._given or low not in self._common)
        if not ok:
            return None
        return Finding(
            m.start(), m.end("t") if m.group("t") else m.end("w"), Kind.LOCATION, "dictionary"
        )

    def _unknown_place_word(self, low: str) -> bool:
        """Could a word no gazetteer lists be a place ("Kestrelmoor"), not a typo or a term?"""
        if low in self._gazetteer and not self._lex.ordinary(low):
            return True
        return (
            self._lex.rare(low, low in self._stop or low.removesuffix("s") in self._stop)
            and low not in self._lex.frequent
            and not low.endswith(_UNIT_ENDINGS)
        )

    def _place_after_context(
        self, text: str, m: re.Match[str], nocase: bool, moving: bool
    ) -> Finding | None:
        word = m.group()
        low = word.lower().removesuffix("'s")
        if low in _PLACE_PREFIXES:
            return self._prefixed_place(text, m, nocase)
        if low in _NOT_A_PLACE or low in self._stop or len(low) < 2:
            return None
        if (word.isupper() or nocase) and len(low) <= 4:
            return None  # "TRANSFER TO PCU", "GO HOME ASAP": acronyms are read by _ACRONYM_PLACE
        titled = not nocase and word[0].isupper() and not word.isupper()
        if moving and titled:
            # "went to Harbor", "moved here from Netherlands": verb, preposition, capital;
            # not a service or unit: "transferred to the Surgical ICU", "to the Step Down Unit".
            if low in _SERVICE_ONLY or _UNIT_AFTER.match(text, m.end()):
                return None
        elif not self._unknown_place_word(low):
            return None  # a word the gazetteer does not know must be no English at all
        if not (word[0].isupper() or nocase):
            # A lower-case word in mixed text: only one no dictionary knows ("kestrelmoor 4").
            if len(low) < 5 or low in self._given:
                return None
            return Finding(m.start(), m.end(), Kind.LOCATION, "dictionary")
        end = m.end()
        # Take following capitalised words of a multi-word place ("Daytona Beach").
        nxt = _PLACE_TAIL.match(text, end)
        if nxt and not nocase:
            end = nxt.end()
        return Finding(m.start(), end, Kind.LOCATION, "dictionary")

    def _prefixed_place(self, text: str, m: re.Match[str], nocase: bool) -> Finding | None:
        """ "lives in Port Shannonland", "IN NORTH ASHLEYVILLE": a town prefix after a place
        verb and the name after it; in capitals the name must be no English word."""
        word = m.group()
        if nocase:
            nxt = _PREFIXED_TAIL_NOCASE.match(text, m.end())
            if nxt is None:
                return None
            low = nxt.group(1).lower()
            if low in self._stop or low in self._states or not self._unknown_place_word(low):
                return None
            return Finding(m.start(), nxt.end(), Kind.LOCATION, "dictionary")
        if not word[0].isupper() or word.isupper():
            return None
        tail = _PREFIXED_TAIL.match(text, m.end())
        if tail is None:
            return None
        if all(w.lower() in self._common for w in tail.group().split()):
            return None  # "in North Carolina" is the gazetteer's; "in East Wing" no town
        return Finding(m.start(), tail.end(), Kind.LOCATION, "dictionary")

    def _hospital_name(self, text: str, m: re.Match[str], nocase: bool) -> Finding | None:
        s, e = m.start("v"), m.end("v")
        words = m.group("v").split()
        # Keep the proper-name words just before the suffix ("to the Ashcombe" -> "Ashcombe").
        cut = max(
            (j + 1 for j, w in enumerate(words) if w.lower().rstrip(".,") in _NOT_A_PLACE),
            default=0,
        )
        for w in words[:cut]:
            s = text.index(w, s) + len(w)
        words = words[cut:]
        while (
            words
            and words[0].lower() in self._common
            and words[0].lower() not in self._gazetteer
            and words[0].lower() not in _PLACE_WORDS
            and (nocase or words[0].islower())
        ):
            s = text.index(words[0], s) + len(words[0])
            words.pop(0)
        if words:
            s = text.index(words[0], s)
        named = m.group("n")
        if named:  # "Memorial Hospital": the name-like word is part of the name
            e = m.start("n") + len(named.rstrip())
            if not words:
                s = m.start("n")
        if not (words or named):
            return None
        if words and all(w.lower() in _SERVICE_ONLY for w in words):
            return None  # "Cardiology Clinic", "Pulmonary Rehab": a service, no name
        if all(self._proper_place_word(w, nocase) for w in words):
            return Finding(s, e, Kind.LOCATION, "dictionary")
        return None

    def _proper_place_word(self, word: str, nocase: bool) -> bool:
        """Could this word be part of a place's name ("Ashcombe", "Holy"), not prose?"""
        low = word.lower().rstrip(".,")
        if low in _PLACE_WORDS or low in self._gazetteer:
            return True  # "Baltimore Rehab", "Tillamook Regional"
        if len(low) < 2 or low in self._stop or ("'" in low and not low.endswith("'s")):
            return False
        if nocase:  # no capital to go by: not an ordinary word ("a/p-improving heart")
            return all(
                p in self._gazetteer
                or (len(p) > 2 and (not self._lex.ordinary(p) or self._lex.known_name(p)))
                for p in low.removesuffix("'s").split("-")
            )
        return word[0].isupper()

    def _facility_name(self, text: str, start: int, end: int, nocase: bool) -> Finding | None:
        """ "Lee Family Practice", "Hough Pavilion", "Burke & Drgas Internal Medicine": a proper
        name, then service words, then the head noun at ``start:end``."""
        if not (nocase or text[start].isupper()):
            return None  # "general appearance", "on the unit"
        pos, first, names = start, -1, 0
        # A hospital word, a service ("Family Practice") or "&" vouches for a name before it.
        strong = text[start:end].lower() in _STRONG_HEADS
        for _ in range(8):
            k = pos
            while k > 0 and text[k - 1] in " \t":
                k -= 1
            if k == pos or k == 0:
                break
            if text[k - 1] == "&":
                pos, strong = k - 1, True
                continue
            word = TOKEN_ENDING.search(text, max(0, k - 40), k)
            if word is None:
                break
            w = word.group()
            low = w.lower()
            if low in _SERVICE_WORDS and names == 0:
                if not (nocase or w[0].isupper()):
                    break
                strong = True
            elif low in _NAME_JOINERS:
                if names == 0:
                    break
                if low in _PARTICLES:
                    first = word.start()  # "da Costa Paulista", "DE GRATIE-BRUMLEVE"
            elif self._facility_word_ok(w, low, nocase, strong) or (
                nocase and strong and self._vouched_name_word(low.removesuffix("'s"))
            ):
                names += 1
                first = word.start()
            elif low in _PLACE_OPENERS and names and (nocase or w[0].isupper()):
                first = word.start()
            else:
                break
            pos = word.start()
        if names == 0:
            return None
        return Finding(first, end, Kind.LOCATION, "dictionary")

    def _facility_word_ok(self, word: str, low: str, nocase: bool, strong: bool = True) -> bool:
        """Could this word be (part of) the proper name of a facility or a street?"""
        low = low.removesuffix("'s")
        if len(low) < 2 or low in self._stop or low in _NOT_A_PLACE or low in NOT_AFTER_TITLE:
            return False
        if nocase:
            return self._unknown_place_word(low) or (
                self._lex.known_name(low) and not self._lex.ordinary(low)
            )
        if not word[0].isupper() or (word.isupper() and len(low) <= 3):
            return False
        if low not in self._common:
            return True
        # A common word names a facility only before a strong head ("Lee Family Practice"),
        # not before "Unit" or "Group" alone ("Step Down Unit", "Support Group").
        return strong and (self._lex.known_name(low) or low in self._gazetteer)

    def _street_lines(self, text: str, low_text: str, nocase: bool, out: list[Finding]) -> None:
        """ "737 Jordan Gardens, Harrismouth W05 4GA": a house number, a named street, the rest."""
        if low_text.isascii():
            zeros = low_text.encode("ascii").translate(_ZEROS_ASCII).decode("ascii")
        else:
            zeros = low_text.translate(_ZEROS)
        for m in _STREET_LINE_ZEROS.finditer(zeros):
            words = text[m.start("words") : m.end("words")].split()
            if not nocase and not text[m.start("type")].isupper():
                continue
            if nocase and m.group("type") in _SHORT_STREET_TYPES:
                continue  # "1 ST DEGREE AV BLOCK", "90 to st": segments, blocks, doctors
            if not all(
                self._facility_word_ok(w, w.lower(), nocase)
                or (nocase and self._street_name_word(w.lower()))
                or (w.lower() in _PLACE_OPENERS and (nocase or w[0].isupper()))
                for w in words
            ):
                continue
            start = m.start()
            unit = _UNIT_BEFORE.search(low_text, max(0, start - 12), start)
            if unit is not None:
                start = unit.start()
            end = self._address_tail(text, m.end(), nocase)
            out.append(Finding(start, end, Kind.LOCATION, "dictionary"))

    def _street_name_word(self, low: str) -> bool:
        """In a note without case: a name the street is named after ("allen views")."""
        return (
            len(low) > 2
            and self._lex.known_name(low)
            and low not in self._common
            and low not in self._stop
            and low not in _NOT_A_PLACE
        )

    def _vouched_name_word(self, low: str) -> bool:
        """In a note without case, before a strong head: any name ("LEE MEDICAL GROUP")."""
        return (
            len(low) > 2
            and (self._lex.known_name(low) or low in self._gazetteer)
            and low not in self._stop
            and low not in _NOT_A_PLACE
            and low not in NOT_AFTER_TITLE
        )

    def _address_at(
        self, text: str, low_text: str, pos: int, nocase: bool, out: list[Finding]
    ) -> None:
        """The street after "lives at" or "address is" when no house number leads it."""
        if _STREET_LINE.match(low_text, pos):
            return  # "lives at 737 Jordan Gardens": read by ``_street_lines``
        m = _NAMED_STREET.match(low_text, pos)
        if m is None:
            return
        words = text[m.start("words") : m.end("words")].split()
        opener = words[0].lower() in _STREET_OPENERS
        if not (opener or m.group("no") or m.group("no2")):
            return
        for w in words:
            low = w.lower()
            if low in _PARTICLES or (opener and low == words[0].lower()):
                continue
            if low in self._stop or low in _NOT_A_PLACE or low in _NOT_ADDRESS:
                return
            if nocase:
                if not (
                    self._facility_word_ok(w, low, nocase)
                    or self._vouched_name_word(low)
                    or (opener and not self._lex.ordinary(low))
                ):
                    return
            elif not w[0].isupper():
                return
        end = self._address_tail(text, m.end(), nocase)
        out.append(Finding(m.start(), end, Kind.LOCATION, "dictionary"))

    def _address_tail(self, text: str, pos: int, nocase: bool) -> int:
        """Where the town, state, country and postal code after a street line end."""
        end = pos
        for part_no in range(5):
            m = _ADDRESS_PART.match(text, end)
            if m is None or (part_no and "\n" in text[end : m.start("part")]):
                break
            words = m.group("part").split()
            taken = 0
            for i, w in enumerate(words):
                low = w.lower()
                if low in _NOT_ADDRESS:
                    break
                if _POSTAL.match(w) and any(c.isdigit() for c in w):
                    taken = i + 1
                elif (low in ("of", "the") or low in _PARTICLES) and 0 < i < len(words) - 1:
                    continue
                elif nocase:
                    if not (
                        low in self._gazetteer
                        or low in self._gazetteer_prefixes
                        or (len(low) == 2 and part_no)
                        or (part_no == 0 and self._facility_word_ok(w, low, nocase))
                    ):
                        break
                    taken = i + 1
                elif w[0].isupper() and low not in self._stop:
                    taken = i + 1
                else:
                    break
            if not taken:
                break
            last = words[taken - 1]
            end = text.index(last, m.start("part")) + len(last)
            if taken < len(words):
                break
        return end
