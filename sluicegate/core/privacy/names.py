"""Names and places in narrative without any structured hint.

A dictionary + context recognizer: given names and surnames from the public
domain U.S. Census lists (shipped by the ``names`` package), filtered by how
common the word is in ordinary English (``wordfreq``) and by a hand-written
clinical stoplist, then accepted or rejected by context: titles ("Dr.",
"Mrs"), roles ("RN", "MD"), relations ("wife", "son"), verbs of contact
("seen by", "spoke with"), labels ("Name:") and capitalisation.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

from sluicegate.core.privacy.findings import Finding, Kind
from sluicegate.core.privacy.gazetteer import place_names, place_prefixes

_DATA = resources.files("sluicegate.core.privacy") / "data"
_COMMON_TOP_N = 25000
_COMMON_ZIPF = 4.0  # about once per 100,000 words
_PURE_SURNAME_RANK = 5000
_PURE_SURNAME_ZIPF = 3.5


def _lead(words: list[str]) -> str:
    """A look-ahead on the possible first letters, so the engine skips other positions fast."""
    first = sorted({w[0].lower() for w in words} | {w[0].upper() for w in words})
    return "(?=[" + re.escape("".join(first)) + "])"


def _trie(words: list[str]) -> str:
    """A regex alternation of ``words`` as a prefix tree: one branch per first letter.

    Python's engine tries alternatives one by one; sharing prefixes makes a
    long word list cost about one comparison per position instead of one per word.
    """
    tree: dict[str, Any] = {}
    for word in words:
        node = tree
        for ch in word.lower():
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + render(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        optional = "" in node
        body = alts[0] if len(alts) == 1 and not optional else "(?:" + "|".join(alts) + ")"
        if optional:
            body = ("(?:" + "|".join(alts) + ")") + "?"
        return body

    return "(?:" + render(tree) + ")"


# Letters are any Unicode letters ("Jožef", "Ryhänen"); an apostrophe or hyphen may join them.
_L = r"[^\W\d_]"
_TOKEN = re.compile(rf"{_L}(?:[^\W\d_'\-]|['\-](?={_L}))*")
_CAP_TOKEN = re.compile(rf"(?<![^\W\d_'\-])[A-ZÀ-ÖØ-ÞĀ-ž](?:[^\W\d_'\-]|['\-](?={_L}))*")
_TOKEN_ENDING = re.compile(rf"(?<![^\W\d_'\-]){_L}(?:[^\W\d_'\-]|['\-](?={_L}))*$")
# Context that makes the next token a name whatever the dictionaries say.
_TITLE_BEFORE = re.compile(
    r"(?=[dmpDMP])\b(?:dr|drs|dr's|mr|mrs|ms|miss|mx|prof|doctor)"
    r"(?:\.\s*|\s+)(?:[A-Z]\.\s*)?",
    re.IGNORECASE,
)
# Relations: the next token is a name if it is a given name or capitalised.
_RELATION_WORDS = [
    "wife",
    "husband",
    "son",
    "daughter",
    "sister",
    "brother",
    "mother",
    "mom",
    "father",
    "dad",
    "friend",
    "niece",
    "neice",
    "nephew",
    "aunt",
    "uncle",
    "cousin",
    "grandson",
    "granddaughter",
    "grandmother",
    "grandfather",
    "grandaughter",
    "fiance",
    "fiancee",
    "boyfriend",
    "girlfriend",
    "partner",
    "spouse",
    "neighbor",
    "neighbour",
    "sister-in-law",
    "brother-in-law",
    "son-in-law",
    "daughter-in-law",
    "mother-in-law",
    "father-in-law",
    "hcp",
    "proxy",
    "guardian",
    "caregiver",
    "roommate",
    "pastor",
    "priest",
    "chaplain",
    "rabbi",
    "name",
    "named",
    "physician",
    "provider",
    "radiologist",
    "surgeon",
    "cc",
    "seen by",
    "spoke with",
    "spoke to",
    "talked with",
    "talked to",
    "requested by",
    "dictated by",
    "signed by",
    "ordered by",
    "referred by",
    "read by",
    "reviewed by",
    "transcribed by",
    "patient name",
    "pt name",
]
_RELATION_BEFORE = re.compile(
    _lead(_RELATION_WORDS)
    + r"\b"
    + _trie(_RELATION_WORDS)
    + r"(?:'s|s)?\s*[:,\-?]?\s*(?:is\s+|was\s+)?",
    re.IGNORECASE,
)
# Weaker context: the next token must also be a capitalised known name.
_CONTACT_BEFORE = re.compile(
    r"\b"
    + _trie(
        [
            "paged",
            "notified",
            "informed",
            "called",
            "per",
            "with",
            "and",
            "by",
            "sw",
            "cm",
            "pcp",
            "np",
            "rn",
            "pa",
            "md",
            "attending",
            "resident",
            "fellow",
            "intern",
            "nurse",
            "nsg",
            "covering",
        ]
    )
    + r"\s*[:,\-]?\s*",
    re.IGNORECASE,
)
_ROLE_AFTER = re.compile(
    r"(?=[rmpclnRMPCLN])\b(?:rn|md|pa-c|cnm|crna|phd|pharmd|lpn|cna|msw|lcsw|licsw|rrt|crt|np-c|"
    r"m\.d\.|r\.n\.|snm|np)(?![A-Za-z])(?!\s*(?:to|is|was|at)\b)",
    re.IGNORECASE,
)
_ROLES = frozenset(
    [
        "rn",
        "md",
        "np",
        "pa",
        "pa-c",
        "cnm",
        "crna",
        "phd",
        "pharmd",
        "lpn",
        "cna",
        "msw",
        "lcsw",
        "licsw",
        "rrt",
        "crt",
        "rt",
        "do",
        "dds",
    ]
)
_NOT_AFTER_TITLE = frozenset(
    [
        "aware",
        "notified",
        "called",
        "paged",
        "here",
        "in",
        "at",
        "to",
        "and",
        "or",
        "the",
        "team",
        "office",
        "made",
        "was",
        "is",
        "has",
        "ordered",
        "said",
        "wants",
        "will",
        "ok",
        "ok'd",
        "requested",
        "note",
        "notes",
        "of",
        "on",
        "for",
        "with",
        "by",
        "s",
        "order",
        "orders",
        "son",
        "sons",
        "daughter",
        "daughters",
        "wife",
        "husband",
        "sister",
        "brother",
        "mother",
        "father",
        "family",
        "friend",
        "friends",
    ]
)
_HOSPITAL_SUFFIX = re.compile(
    r"(?=[hmcrnivsHMCRNIVS])\b(?:hospital|hosp|medical center|med ctr|medical centre|clinic|"
    r"rehab(?:ilitation)?|nursing home|health center|healthcare|infirmary|hospice|memorial|"
    r"regional|vamc|va medical center|cancer center|square|cross|heart)\b",
    re.IGNORECASE,
)
# The (up to three) words just before a hospital suffix, read backwards from it.
_HOSPITAL = re.compile(
    r"(?P<v>(?:[A-Za-z][\w'.-]*[ \t]+){0,2}[A-Za-z][\w'-]*)[ \t]+"
    r"(?P<n>(?:general|memorial|regional|square|cross|heart|county|university)[ \t]+)?$",
    re.IGNORECASE,
)
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
]
_PLACE_BEFORE = re.compile(
    _lead(_PLACE_VERBS)
    + r"\b"
    + _trie(_PLACE_VERBS)
    + r"(?:\s+(?:nearby|here|there|back|home|over|up|down))?\s+(?:(?:in|to|from|at|of)\b)?\s*"
    r"(?:the\s+)?",
    re.IGNORECASE,
)
_PLACE_TAIL = re.compile(r"(?:[ \t]+(?!(?:ER|EW|ED|ICU|MICU|CCU)\b)[A-Z][A-Za-z'-]*[A-Za-z]){1,2}")
_MULTIWORD_STATE = re.compile(
    r"(?=[ndsrwNDSRW])\b(?:new|north|south|west|rhode|district of)\s+[a-z]+\b", re.IGNORECASE
)
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_PLACE_WORDS = frozenset(
    ["holy", "sacred", "st", "st.", "saint", "mount", "mt", "mt.", "university", "general", "union"]
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


@lru_cache(maxsize=1)
def _census(filename: str) -> frozenset[str]:
    pkg = resources.files("names") / filename
    with pkg.open("r", encoding="ascii") as fh:
        return frozenset(line.split(None, 1)[0].lower() for line in fh if line.strip())


@lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    """Census 1990 given names (male and female)."""
    return _census("dist.male.first") | _census("dist.female.first")


@lru_cache(maxsize=1)
def surnames() -> frozenset[str]:
    """Census 1990 surnames (88,799)."""
    return _census("dist.all.last")


@lru_cache(maxsize=1)
def _dictionary_words() -> frozenset[str]:
    """Words with a lower-case entry in Webster's Second (ordinary words, not proper names)."""
    from english_words import get_english_words_set

    words = get_english_words_set(["web2"], lower=False, alpha=True)
    return frozenset(w for w in words if w.islower())


@lru_cache(maxsize=1)
def _ranked_surnames() -> dict[str, int]:
    pkg = resources.files("names") / "dist.all.last"
    with pkg.open("r", encoding="ascii") as fh:
        return {line.split()[0].lower(): i for i, line in enumerate(fh) if line.strip()}


@lru_cache(maxsize=1)
def pure_names() -> frozenset[str]:
    """Given names, and the 5,000 commonest surnames, that are no ordinary word ("david")."""
    dictionary = _dictionary_words()
    ranked = _ranked_surnames()
    top = {w for w, i in ranked.items() if i < _PURE_SURNAME_RANK}
    import wordfreq

    return frozenset(
        w
        for w in given_names() | top
        if w not in dictionary
        and not (w.endswith("s") and w[:-1] in dictionary)  # "settles", "hughes" stay out
        and len(w) > 2
        and (w in given_names() or wordfreq.zipf_frequency(w, "en") < _PURE_SURNAME_ZIPF)
    )


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Frequent English words that are ordinary words, not only names ("will", "white")."""
    import wordfreq

    pure = pure_names()
    return frozenset(
        w
        for w in wordfreq.top_n_list("en", _COMMON_TOP_N)
        if w.isalpha() and w not in pure and wordfreq.zipf_frequency(w, "en") >= _COMMON_ZIPF
    )


def is_common_word(word: str) -> bool:
    """True if ``word`` is a frequent ordinary English word (case-insensitive)."""
    return word.lower() in common_words()


@lru_cache(maxsize=1)
def clinical_stopwords() -> frozenset[str]:
    """Hand-written clinical terms that collide with names (eponyms, drugs, units)."""
    return _word_file("clinical_stopwords.txt")


@lru_cache(maxsize=1)
def places() -> frozenset[str]:
    """U.S. state names (underscores for spaces)."""
    return frozenset(w.replace("_", " ") for w in _word_file("places.txt"))


def _word_file(name: str) -> frozenset[str]:
    text = (_DATA / name).read_text(encoding="utf-8")
    words: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("#"):
            words.update(line.lower().split())
    return frozenset(words)


def warm() -> None:
    """Load every list now (first use otherwise pays ~1 s)."""
    place_names()
    place_prefixes()
    common_words()
    clinical_stopwords()
    places()


class NameRecognizer:
    """Finds person names and places in narrative from dictionaries plus context."""

    def __init__(self) -> None:
        self._given = given_names()
        self._surnames = surnames()
        self._common = common_words()
        self._stop = clinical_stopwords()
        self._places = places()
        self._pure = pure_names()
        self._dictionary = _dictionary_words()
        self._gazetteer = place_names()
        self._gazetteer_prefixes = place_prefixes()
        self._gazetteer_words = frozenset(w for n in self._gazetteer for w in n.split())
        # Common words that are no name at all: rejected before any context is consulted.
        self._plain = (self._common - self._given - self._surnames) - self._places

    def find(self, text: str) -> list[Finding]:
        """Names (Kind.NAME) and places (Kind.LOCATION), possibly overlapping."""
        nocase = _no_case_signal(text)
        ctx = _Context(text)
        plain = self._plain
        states: list[Finding] = []
        accepted: list[bool] = []
        if nocase:
            all_tokens = list(_TOKEN.finditer(text))
            # Only words of some place name go to the gazetteer (one lower() each).
            first = self._gazetteer_words
            place_tokens = []
            # An ordinary word is never a name, whatever its context: drop those first
            # (initials stay: "VICTOR E. HALVORSEN").
            tokens = []
            for m in all_tokens:
                low = m.group().lower()
                if low in first:
                    place_tokens.append(m)
                if len(low) == 1 or low not in plain:
                    tokens.append(m)
            # Without a capital to go by, only a known name, a non-English or joined word, or a
            # word in a name context can be one by itself (others may still grow a name below).
            given, sur, places = self._given, self._surnames, self._places
            starts, ends, lower_note = ctx.starts, ctx.ends, ctx.lower_note
            for m in tokens:
                word = m.group()
                low = word.lower()
                if (
                    low in given
                    or low in sur
                    or low in places
                    or m.start() in starts
                    or m.end() in ends
                    or (lower_note and not word.isascii())
                    or "-" in low
                    or "'" in low
                ):
                    accepted.append(self._is_name(text, m, nocase, ctx, states))
                else:
                    accepted.append(False)
        else:
            place_tokens = tokens = _mixed_case_candidates(text, ctx)
            for m in tokens:
                word = m.group()
                if word.islower() and word in plain:
                    accepted.append(False)  # an ordinary word: no context makes it a name
                elif (
                    len(word) <= 4
                    and word.isupper()
                    and m.start() not in ctx.title
                    and m.start() not in ctx.relation
                    and m.end() not in ctx.role
                ):
                    accepted.append(False)  # an abbreviation in mixed-case text ("BP", "CXR")
                else:
                    accepted.append(self._is_name(text, m, nocase, ctx, states))
        # Grow confirmed names over adjacent name-like tokens and initials, both ways.
        if any(accepted):
            last = len(tokens) - 1
            for _ in range(2):
                for i, ok in enumerate(accepted):
                    if ok or not ((i > 0 and accepted[i - 1]) or (i < last and accepted[i + 1])):
                        continue
                    if self._adjacent_to_name(text, tokens, accepted, i, nocase, ctx.lower_note):
                        accepted[i] = True
        out = [
            Finding(m.start(), m.end(), Kind.NAME, "dictionary")
            for m, ok in zip(tokens, accepted, strict=True)
            if ok
        ]
        out.extend(states)
        out.extend(self._find_places(text, place_tokens, nocase))
        return out

    def _known_name(self, low: str) -> bool:
        return low in self._given or low in self._surnames

    def _is_name(
        self, text: str, m: re.Match[str], nocase: bool, ctx: _Context, states: list[Finding]
    ) -> bool:
        word = m.group()
        low = word.lower()
        common = low in self._common
        if common and word.islower() and low not in self._given and low not in self._surnames:
            return False  # the bulk of ordinary prose: nothing below could accept it
        if low.endswith("'s"):
            low = low[:-2]
        if len(low) < 2:
            return False
        start = m.start()
        known = low in self._given or low in self._surnames
        if not known and ("'" in low or "-" in low):
            # "O'Brien" (census: OBRIEN), "Smith-Jones"; not "I'm", "con't".
            flat = low.replace("'", "")
            known = (low[:2] in {"o'", "d'"} and flat in self._surnames) or (
                "-" in low and all(p in self._surnames or p in self._given for p in low.split("-"))
            )
        if low in self._places:
            if word[0].isupper() or nocase:  # a state, reported as a place
                states.append(Finding(start, m.end(), Kind.LOCATION, "dictionary"))
            return False
        capital = word[0].isupper() and (not nocase or (ctx.lower_note and not word.isupper()))
        stop = low in self._stop
        # "mr cohen" but not "MR and TR": the word must not be ordinary English.
        if (
            start in ctx.weak_title
            and not stop
            and low not in _NOT_AFTER_TITLE
            and ((known and not common) or self._rare(low, stop))
        ):
            return True
        if start in ctx.title:
            if low in _NOT_AFTER_TITLE or (common and not known and not capital):
                return False
            return known or capital or (not common and not self._ordinary(low))
        if m.end() in ctx.role and low not in _NOT_AFTER_TITLE and not stop:
            return (
                not common or (known and (capital or (nocase and not self._ordinary(low))))
            ) and (len(low) > 2 or known)
        if (
            low in self._given
            and not stop
            and low not in _NOT_AFTER_TITLE
            and _VISIT_AFTER.match(text, m.end()) is not None
        ):
            return True  # "social: bill called", "Bob visited this evening"
        if not known and "-" in low:
            head, _, tail = low.partition("-")
            if head in _KIN_SET and (tail in self._given or self._rare(tail, tail in self._stop)):
                return True  # "DAUGHTER-TAMSIN"
        if m.end() in ctx.relation_after and low not in _NOT_AFTER_TITLE and not stop:
            # "Nadia Vestergaard his niece", "Tomas Wirtanen (son)", "Okonkwo (resident)".
            if known and (capital or not common):
                return True
            if capital or nocase:
                return self._rare(low, stop)
        if start in ctx.relation:
            if low in self._given or (capital and (not common or known)):
                return not stop and low not in _NOT_AFTER_TITLE
            if self._rare(low, stop):
                return True  # "husband Milovan": an unknown word right after a relation
        if start in ctx.role_before and (low in self._given or self._rare(low, stop)):
            return not stop and low not in _NOT_AFTER_TITLE  # "NP Carol", "NP Djuric"
        if (
            start in ctx.initial
            and not common
            and (known if nocase else (capital and self._rare(low, stop)))
        ):
            return True  # "W. Marotta", "D. Phyl"
        if (
            capital
            and known
            and not common
            and not stop
            and not word.isupper()
            and _CONTACT_END.search(text, max(0, start - 24), start) is not None
        ):
            return True
        if stop or common:
            return False
        if not known:
            # A capitalised word spelled outside English ("Ryhänen") is a proper noun.
            return capital and not word.isascii() and word[0].isupper() and not word.isupper()
        if nocase:
            if ctx.lower_note and word[0].isupper() and not word.isupper():
                # A capital in a lower-case note is a strong signal ("Irene Castellano, RN").
                return not _sentence_start(text, start) or low in self._pure
            return low in self._pure  # no capital to go by: only unmistakable names
        if not word[0].isupper() or (word.isupper() and len(low) <= 4):
            return False  # lower case, or an abbreviation in mixed-case text
        return not _sentence_start(text, start) or low in self._pure

    def _adjacent_to_name(
        self,
        text: str,
        tokens: list[re.Match[str]],
        accepted: list[bool],
        i: int,
        nocase: bool,
        lower_note: bool = False,
    ) -> bool:
        m = tokens[i]
        word = m.group()
        low = word.lower().removesuffix("'s")
        gap = text[tokens[i - 1].end() : m.start()] if i > 0 else ""
        left = i > 0 and accepted[i - 1] and gap in {" ", ", ", ","}
        if i > 0 and accepted[i - 1] and gap.lower() in {" and ", " & ", "& ", ", and "}:
            # A list of names: "Dr. Lindqvist and Okafor", "DRS AMARI AND BRENNICK".
            stop = low in self._stop or low in _NOT_AFTER_TITLE
            if nocase:
                return not stop and (
                    (self._known_name(low) and not self._ordinary(low)) or self._rare(low, stop)
                )
            return (
                word[0].isupper()
                and not word.isupper()
                and not stop
                and (self._known_name(low) or not self._ordinary(low))
            )
        right = (
            i + 1 < len(tokens)
            and accepted[i + 1]
            and bool(re.fullmatch(r" |\. ?|\.", text[m.end() : tokens[i + 1].start()]))
        )
        if not (left or right):
            return False
        if len(word) == 1:
            # An initial: "J. Smith", "Smith, J."
            return (right and text[m.end() : m.end() + 1] == ".") or (
                left and word.isupper() and text[tokens[i - 1].end() : m.start()] in {", ", " "}
            )
        if low in self._stop or low in _NOT_AFTER_TITLE or low in _ROLES:
            return False
        if word.isupper() and len(low) <= 3 and not nocase:
            return False
        if low in self._common:
            capital = word[0].isupper() and (not nocase or (lower_note and not word.isupper()))
            return capital and self._known_name(low)
        if nocase:
            return self._known_name(low) or (left and len(low) > 3)
        return word[0].isupper()

    def _find_places(self, text: str, tokens: list[re.Match[str]], nocase: bool) -> list[Finding]:
        out: list[Finding] = []
        context = {m.end() for m in _PLACE_BEFORE.finditer(text)}
        out.extend(self._gazetteer_places(text, tokens, nocase, context))
        for saint in _SAINT_PLACE.finditer(text):
            found = self._saint_place(text, saint, nocase)
            if found is not None:
                out.append(found)
        self._institutions(text, nocase, out)
        for m in _UNIVERSITY.finditer(text):
            place = _TOKEN.match(text, m.end())
            if place is not None and place.group().lower() in self._gazetteer:
                out.append(Finding(m.start(), place.end(), Kind.LOCATION, "dictionary"))
        self._hospitals_and_context(text, nocase, context, out)
        for m in _MULTIWORD_STATE.finditer(text):
            if " ".join(m.group().lower().split()) in self._places:
                out.append(Finding(m.start(), m.end(), Kind.LOCATION, "dictionary"))
        return out

    def _institutions(self, text: str, nocase: bool, out: list[Finding]) -> None:
        """Hospital acronyms after a preposition ("to GH") and numbered wards ("Kestrelmoor 4")."""
        for m in _ACRONYM_PLACE.finditer(text):
            acronym = m.group("a")
            low = acronym.lower()
            if low in _NOT_AN_INSTITUTION or low in self._stop:
                continue
            if (nocase or not acronym.isupper()) and (
                self._ordinary(low) or low in self._given or low in self._surnames
            ):
                continue
            out.append(Finding(m.start("a"), m.end("a"), Kind.LOCATION, "dictionary"))
        for m in _WARD.finditer(text):
            low = m.group("w").lower()
            if not (nocase or m.group("w")[0].isupper()):
                continue  # a lower-case word in mixed text is read after a place verb instead
            if len(low) < 4 or low in self._stop or low in _NOT_A_PLACE or self._ordinary(low):
                continue
            out.append(Finding(m.start("w"), m.end("n"), Kind.LOCATION, "dictionary"))

    def _hospitals_and_context(
        self, text: str, nocase: bool, context: set[int], out: list[Finding]
    ) -> None:
        """Names before a hospital word, and places after a place verb ("lives in X")."""
        for suffix in _HOSPITAL_SUFFIX.finditer(text):
            window_start = max(0, suffix.start() - 60)
            m = _HOSPITAL.search(text, window_start, suffix.start())
            if m is None:
                continue
            found = self._hospital_name(text, m, nocase)
            if found is not None:  # the name with its hospital word: "Tillamook Regional"
                out.append(Finding(found.start, suffix.end(), found.kind, found.source))
        for pos in sorted(context):
            m = _TOKEN.match(text, pos)
            if m is not None:
                place = self._place_after_context(text, m, nocase)
                if place is not None:
                    out.append(place)

    def _gazetteer_places(
        self, text: str, tokens: list[re.Match[str]], nocase: bool, context: set[int]
    ) -> list[Finding]:
        """Cities, counties, states and countries from the gazetteer, one or more words."""
        out: list[Finding] = []
        names, prefixes = self._gazetteer, self._gazetteer_prefixes
        n = len(tokens)
        i = 0
        while i < n:
            m = tokens[i]
            phrase = m.group().lower()
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
                phrase += " " + tokens[j].group().lower()
            if best >= 0 and self._place_words_ok(
                tokens[i : best + 1],
                nocase,
                m.start() in context,
                _PREP_END.search(text, max(0, m.start() - 8), m.start()) is not None,
            ):
                end = tokens[best].end()
                code = _POSTAL_AFTER.match(text, end)  # "Turku 20100", "Aalborg NO 9100"
                out.append(
                    Finding(m.start(), code.end() if code else end, Kind.LOCATION, "dictionary")
                )
                i = best + 1
            else:
                i += 1
        return out

    def _place_words_ok(
        self, words: list[re.Match[str]], nocase: bool, context: bool, prep: bool
    ) -> bool:
        """Is this gazetteer hit written like a place, not like an ordinary word?"""
        lows = [w.group().lower() for w in words]
        if not nocase and not all(w.group()[0].isupper() for w in words):
            return False
        if len(words) > 1:
            return context or not all(w in self._common for w in lows)
        word, low = words[0].group(), lows[0]
        if len(low) < 4 or low in self._stop or low in _NOT_A_PLACE or low in _NOT_AFTER_TITLE:
            return False
        if not nocase and word.isupper() and len(low) <= 4:
            return False  # an abbreviation
        if low in self._common and low in self._dictionary:
            return context and not nocase  # "Reading", "Mobile": ordinary words too
        if nocase and (self._ordinary(low) or low in self._given or low in self._surnames):
            return context or prep  # "lives in BALTIMORE", not "a baltimore oriole"
        return True

    def _saint_place(self, text: str, m: re.Match[str], nocase: bool) -> Finding | None:
        """ "St. Agnes", "Holy Cross", "Mount Sinai": a saint's or sacred name is an institution."""
        first = m.group("w")
        low = first.lower().removesuffix("'s")
        lead = m.group("p").lower().rstrip(".")
        if low in self._stop or low in _NOT_A_PLACE or len(low) < 2:
            return None
        if lead in {"holy", "sacred"}:
            ok = first[0].isupper() or nocase or low in {"cross", "heart", "family", "name"}
        elif nocase or first.islower():
            ok = low in self._given or not self._ordinary(low)
            ok = ok and (lead != "st" or "." in m.group("p") or low in self._given)
        else:  # "St. Agnes", not "NSR to ST. No ectopy"
            ok = first[0].isupper() and not (first.isupper() and len(low) <= 3)
            ok = ok and (low in self._given or low not in self._common)
        if not ok:
            return None
        return Finding(
            m.start(), m.end("t") if m.group("t") else m.end("w"), Kind.LOCATION, "dictionary"
        )

    def _place_after_context(self, text: str, m: re.Match[str], nocase: bool) -> Finding | None:
        word = m.group()
        low = word.lower().removesuffix("'s")
        if low in _NOT_A_PLACE or low in self._stop or len(low) < 2:
            return None
        if not (word[0].isupper() or nocase):
            # A lower-case word in mixed text: only one no dictionary knows ("kestrelmoor 4").
            if len(low) < 3 or self._ordinary(low) or low in self._given:
                return None
            return Finding(m.start(), m.end(), Kind.LOCATION, "dictionary")
        if low in self._common and (nocase or word.isupper()):
            return None
        if nocase and self._ordinary(low):
            return None
        end = m.end()
        # Take following capitalised words of a multi-word place ("Daytona Beach").
        nxt = _PLACE_TAIL.match(text, end)
        if nxt and not nocase:
            end = nxt.end()
        return Finding(m.start(), end, Kind.LOCATION, "dictionary")

    def _hospital_name(self, text: str, m: re.Match[str], nocase: bool) -> Finding | None:
        s, e = m.start("v"), m.end("v")
        words = m.group("v").split()
        # Keep the proper-name words just before the suffix ("to the Calvert" -> "Calvert").
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
        if all(self._proper_place_word(w, nocase) for w in words):
            return Finding(s, e, Kind.LOCATION, "dictionary")
        return None

    def _proper_place_word(self, word: str, nocase: bool) -> bool:
        """Could this word be part of a place's name ("Calvert", "Holy"), not prose?"""
        low = word.lower().rstrip(".,")
        if low in _PLACE_WORDS or (low in self._gazetteer and low not in self._common):
            return True
        if len(low) < 2 or low in self._stop or ("'" in low and not low.endswith("'s")):
            return False
        if nocase:  # no capital to go by: not an ordinary word
            return not self._ordinary(low)
        return word[0].isupper()

    def _rare(self, low: str, stop: bool) -> bool:
        """Not a word of ordinary English or clinical shorthand: likely a proper noun."""
        return (
            len(low) > 3
            and "'" not in low
            and not stop
            and low not in _NOT_AFTER_TITLE
            and not self._ordinary(low)
        )

    def _ordinary(self, low: str) -> bool:
        """A frequent or dictionary word, or a regular inflection of one ("awaiting")."""
        if low in self._common or low in self._dictionary:
            return True
        d = self._dictionary
        for suffix, repl in (
            ("ing", ""),
            ("ing", "e"),
            ("ed", ""),
            ("ed", "e"),
            ("es", ""),
            ("s", ""),
        ):
            if low.endswith(suffix) and low[: -len(suffix)] + repl in d:
                return True
        return False


def _mixed_case_candidates(text: str, ctx: _Context) -> list[re.Match[str]]:
    """In mixed-case text only capitalised tokens, or tokens in a name context, can be names."""
    found = {m.start(): m for m in _CAP_TOKEN.finditer(text)}
    for pos in ctx.title | ctx.weak_title | ctx.relation | ctx.role_before:
        if pos not in found:
            m = _TOKEN.match(text, pos)
            if m is not None:
                found[pos] = m
    for pos in ctx.role | ctx.relation_after:
        m = _TOKEN_ENDING.search(text, max(0, pos - 40), pos)
        if m is not None and m.start() not in found:
            found[m.start()] = m
    return [found[k] for k in sorted(found)]


_PREP_END = re.compile(r"\b(?:in|from|of|near|to|at)[ \t]+(?:the[ \t]+)?$", re.IGNORECASE)
# "St. Agnes", "Saint Mary's", "Holy Cross", "Mount Sinai", "sacred heart".
_SAINT_PLACE = re.compile(
    r"(?=[shmSHM])\b(?P<p>st\.|st|saint|holy|sacred|mount|mt\.)[ \t]+(?P<w>[^\W\d_][\w']*)"
    r"(?P<t>(?:[ \t]+(?:heart|cross|family|name))?(?:[ \t]+(?:memorial|hospital|hosp|medical center"
    r"|rehab|regional|nursing home|hospice)\b)?)",
    re.IGNORECASE,
)
# A hospital acronym after a preposition: "referred to GH", "at GBMC", "from UMMC".
_ACRONYM_PLACE = re.compile(
    r"(?=[tafbopi@>TAFBOPI])(?:\b(?:to|at|from|into|by|of|per)|@|->?)[ \t]*(?<![a-z])(?:the[ \t]+)?"
    r"(?P<a>[A-Z]{0,4}(?:H|MC|HC))\b",
    re.IGNORECASE,
)
_POSTAL_AFTER = re.compile(r"[ \t]*,?[ \t]+(?:[A-Z]{2}[ \t]+)?\d{4,6}\b(?![./:-]?\d)")
# "U Maryland", "Univ. of Iowa": a university named after a place is an institution.
_UNIVERSITY = re.compile(r"(?=[uU])\b(?:u|univ\.?|university)(?:[ \t]+of)?[ \t]+(?=[A-Z])", re.I)
# A named ward or floor with its number after a preposition: "transfer to Kestrelmoor 4".
_WARD = re.compile(
    r"(?=[tfoapiTFOAPI])\b(?:to|from|on|at|per|in|or|and)[ \t]+(?:the[ \t]+)?"
    r"(?P<w>[^\W\d_]+)[ \t]?(?P<n>\d{1,2})\b(?![./%:,]\d|[ \t]*%"
    r"|[ \t]*(?:mg|mcg|meq|mmol|units?|u|cc|ml|l|g|kg|mm|cm|hrs?|mins?|days?|x)\b)",
    re.IGNORECASE,
)
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
_KIN = [w for w in _RELATION_WORDS if " " not in w and w not in {"name", "named", "cc"}]
_KIN += ["resident", "intern", "fellow", "attending", "np", "rn", "md", "pa", "dtr", "sw"]
# A relation or role written after the name: "(son)", ", his niece", " her daughter".
_RELATION_AFTER = re.compile(
    r"(?=[(hHtTpP])(?:\([ \t]*(?:pt'?s[ \t]+)?"
    + _trie(_KIN)
    + r"s?[ \t]*\)|\b(?:his|her|their|pt'?s|patient'?s)[ \t]+"
    + _trie(_KIN)
    + r"\b)",
    re.IGNORECASE,
)
_KIN_SET = frozenset(_KIN)
# A visit or call right after a first name makes it a person: "bill called", "Bob visited".
_VISIT_AFTER = re.compile(
    r"[ \t]+(?:called|visited|phoned|telephoned|came in|was in to visit|in to visit|was updated)\b",
    re.IGNORECASE,
)
# A role written before the name ("NP Carol", "RRT Jones").
_ROLE_BEFORE = re.compile(
    r"(?=[nprmcslNPRMCSL])\b(?:np|pa|rn|md|rrt|crt|msw|sw|lpn|cna)\.?\s+", re.IGNORECASE
)
# An initial before a surname ("W. Marotta"), not after another letter ("U.S. ").
_INITIAL_BEFORE = re.compile(r"(?=[A-Z]\.)(?<![\w.'/-])[A-Z]\.\s?(?=[A-Za-z])")
_CONTACT_END = re.compile(_CONTACT_BEFORE.pattern + "$", re.IGNORECASE)
_PLACE_END = re.compile(_PLACE_BEFORE.pattern + "$", re.IGNORECASE)


class _Context:
    """Where title and relation words end, or a role starts: one scan of the text each."""

    def __init__(self, text: str) -> None:
        # "MS" / "mr" without a period is mental status or mitral regurgitation, not a title.
        upper, lower = _case_counts(text)
        self.lower_note = upper < 0.02 * (upper + lower)
        self.title: set[int] = set()
        self.weak_title: set[int] = set()
        for m in _TITLE_BEFORE.finditer(text):
            word = m.group().split(".")[0].strip().lower()
            weak = "." not in m.group() and word in {"ms", "mr"}
            (self.weak_title if weak else self.title).add(m.end())
        self.relation = {m.end() for m in _RELATION_BEFORE.finditer(text)}
        self.role_before = {m.end() for m in _ROLE_BEFORE.finditer(text)}
        self.initial = {m.end() for m in _INITIAL_BEFORE.finditer(text)}
        self.relation_after = {_name_end(text, m.start()) for m in _RELATION_AFTER.finditer(text)}
        self.role = {_name_end(text, m.start()) for m in _ROLE_AFTER.finditer(text)}
        #: Token starts and ends where some name context applies.
        self.starts = self.title | self.weak_title | self.relation | self.role_before | self.initial
        self.ends = self.role | self.relation_after


def _name_end(text: str, pos: int) -> int:
    """Where a name before ``pos`` would end: back over spaces and one comma."""
    while pos > 0 and text[pos - 1] in " \t":
        pos -= 1
    if pos > 0 and text[pos - 1] == ",":
        pos -= 1
    while pos > 0 and text[pos - 1] in " \t":
        pos -= 1
    return pos


_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_ASCII_LOWER = bytes(range(ord("a"), ord("z") + 1))
_NOT_UPPER = bytes(b for b in range(256) if b not in _ASCII_UPPER)
_NOT_LOWER = bytes(b for b in range(256) if b not in _ASCII_LOWER)


def _case_counts(text: str) -> tuple[int, int]:
    """Upper- and lower-case ASCII letters in the first 1,500 characters (C speed)."""
    sample = text[:1500].encode("ascii", "ignore")
    return len(sample.translate(None, _NOT_UPPER)), len(sample.translate(None, _NOT_LOWER))


def _no_case_signal(text: str) -> bool:
    """All-caps or all-lower-case notes carry no capitalisation signal."""
    upper, lower = _case_counts(text)
    if not upper + lower:
        return True
    share = upper / (upper + lower)
    return share > 0.7 or share < 0.02


def _sentence_start(text: str, pos: int) -> bool:
    before = text[max(0, pos - 4) : pos].rstrip(" \t")
    if not before:
        return True
    if before[-1] == "." and len(before) >= 2 and before[-2].isupper():
        # "J. Smith": an initial, not the end of a sentence.
        return len(before) >= 3 and before[-3].isalpha()
    return before[-1] in ".!?:;\n-*#>"
