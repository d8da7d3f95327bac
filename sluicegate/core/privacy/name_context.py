"""Where the context says a name comes next or just ended: titles, relations, roles.

One scan of the note per context regex ("Dr.", "wife", "seen by", ", RN",
"(son)") gives sets of token starts and ends; the name recognizer then looks a
token's position up instead of reading around every word.
"""

from __future__ import annotations

import re

from sluicegate.core.privacy.tokens import (
    TOKEN,
    TOKEN_ENDING,
    LedRule,
    WordLedScan,
    capitalised_in,
    case_counts,
    first_runs,
    lead,
    leftmost,
    trie,
)

# Context that makes the next token a name whatever the dictionaries say.
#: Surname particles: "Dr. de Bruyn", "van den Berg", "da Cruz", "Al Amin".
PARTICLES = frozenset(
    "de van von der den da di du la le del della dos das ten ter al el bin ibn".split()  # noqa: SIM905
)
TITLES = frozenset(["dr", "drs", "dr's", "mr", "mrs", "ms", "miss", "mx", "prof", "doctor"])
_TITLE_BEFORE = re.compile(
    r"(?=[dmp])(?<![\d+/])\b(?:dr|drs|dr's|mr|mrs|ms|miss|mx|prof|doctor)"
    r"(?:\.\s*|\s+)(?:[a-z]\.\s*)?"
    r"(?:(?:de|van|von|der|den|da|di|du|la|le|del|della|dos|das|ten|ter)\s+){0,3}",
)
# Relations: the next token is a name if it is a given name or capitalised.
RELATION_WORDS = [
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
    "regards",
    "thanks",
    "sincerely",
    "signed",
]
_RELATION_BEFORE = re.compile(
    lead(RELATION_WORDS)
    + r"\b"
    + trie(RELATION_WORDS)
    + r"(?:'s|s)?\b\s*[:,\-?(]?\s*(?:is\s+|was\s+)?",
)
#: Labels and verbs after which a person's name comes ("RE:", "ID band checked:",
#: "routed to"): the next capitalised word is a name if it is no frequent word.
_COLON_LABELS = ["patient", "re", "checked", "caller", "contact", "rn", "radiologist"]
_COLON_LABELS += ["attending", "nurse", "physician", "provider", "by", "author", "pcp"]
_LABEL_WORDS = [*_COLON_LABELS, "routed", "called", "call"]
_LABEL_WORDS += ["discussed", "reviewed", "consult", "consulted", "taken", "message"]
_LABEL_BEFORE = re.compile(
    r"\b(?:(?:" + "|".join(_COLON_LABELS) + r")[ \t]*:|(?:routed|called|call)[ \t]+to"
    r"|(?:discussed|reviewed|consult|consulted)[ \t]+with"
    r"|taken[ \t]+by|message[ \t]+from)[ \t]*"
    r"(?:dr\.?[ \t]+)?"
)
#: Initials after "Pt" where a name would stand, then a verb: "Pt D.R. is 44", "PT MAS IS 85"
#: (undotted only before a number; the recognizer checks they are capitals).
_PT_INITIALS_AFTER = (
    r"[ \t]+(?:((?:[a-z]\.[ \t]?){2,3})(?=[ \t]+(?:is|was|has)\b)"
    r"|([a-z]{2,3})(?=[ \t]+(?:is|was)[ \t]+(?:an?[ \t]+)?\d))"
)
_PT_INITIALS = re.compile(r"\b(?:pt|patient)" + _PT_INITIALS_AFTER)
#: A sign-off: "-- Alan", "-- Kasia RN", "— Merel W., RN" (the name is checked by
#: ``SIGNOFF_END`` too).
_SIGNOFF_BEFORE = re.compile(r"(?<![^\s])(?:--|\u2014)[ \t]*(?=[^\W\d_])")
_SIGNOFF_ROLES = "(?:rn|md|np|pa-c|rrt|lpn|do|mbbs|pa)"
#: What ends a sign-off name: the end of the line, or an initial and a role.
SIGNOFF_END = re.compile(
    r"(?:,?[ \t]*(?!" + _SIGNOFF_ROLES + r"\b)[^\W\d_]+(?:['\-][^\W\d_]+)*\.?){0,3}"
    r"(?:,?[ \t]*(?P<role>" + _SIGNOFF_ROLES + r")\b\.?)?[ \t]*(?:\n|$|--|/|\u2014)",
    re.IGNORECASE,
)
# Weaker context: the next token must also be a capitalised known name.
_CONTACT_BEFORE = re.compile(
    r"\b"
    + trie(
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
_ROLE_AFTER = re.compile(  # led by the space or comma after the name: only those are tried
    r"[ \t,](?:rn|md|pa-c|cnm|crna|phd|pharmd|lpn|cna|msw|lcsw|licsw|rrt|crt|np-c|"
    r"m\.d\.|r\.n\.|snm|np)(?![A-Za-z])(?!\s*(?:to|is|was|at)\b)",
)
ROLES = frozenset(
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
KIN = [w for w in RELATION_WORDS if " " not in w and w not in {"name", "named", "cc"}]
KIN += ["resident", "intern", "fellow", "attending", "np", "rn", "md", "pa", "dtr", "sw"]
# A relation or role written after the name: "(son)", ", his niece", " her daughter".
# Its two branches are scanned apart: the bracket by itself, the pronoun with ``RULES``.
_RELATION_IN_BRACKETS = re.compile(r"\([ \t]*(?:pt'?s[ \t]+)?" + trie(KIN) + r"s?[ \t]*\)")
_RELATION_AFTER_WORD = re.compile(r"\b(?:his|her|their|pt'?s|patient'?s)[ \t]+" + trie(KIN) + r"\b")
KIN_SET = frozenset(KIN)
# A visit or call right after a first name makes it a person: "bill called", "Bob visited".
VISIT_AFTER = re.compile(
    r"[ \t]+(?:called|visited|phoned|telephoned|came in|was in to visit|in to visit|was updated)\b",
    re.IGNORECASE,
)
_ACTION_WORDS = [
    "aware",
    "notified",
    "paged",
    "informed",
    "updated",
    "called",
    "visited",
    "phoned",
    "telephoned",
]
#: Verbs of speech or state after a name: "Bianka says", "Eloah remains intubated".
_SPEECH_WORDS = [
    "says",
    "said",
    "states",
    "stated",
    "reports",
    "reported",
    "remains",
    "denies",
    "agrees",
    "asked",
    "seen",  # "Wilhelmina was seen by PT": the person examined, as the subject
]
#: A verb of speech before the person spoken of ("the daughter says Ottilie has been ...",
#: "SAID BRONWEN WAS"), a request to see a patient ("please see Ottoline") or a summary's
#: title ("Discharge summary for Wenzeslaus"): the recogniser takes only a known name there
#: ("PLEASE SEE FLOWSHEET", "states Tylenol helps" stay out).
_SPEECH_BEFORE_WORDS = ["says", "said", "states", "stated", "reports", "reported", "asked"]
_SPEECH_BEFORE = re.compile(
    r"\b(?:" + trie(_SPEECH_BEFORE_WORDS) + r"[ \t]+(?:that[ \t]+)?"
    r"|please[ \t]+see[ \t]+|summary[ \t]+for[ \t]+)"
)
# Someone told, paged or visiting right after a name: "DZIEKONSKI AWARE", "Tamsin updated".
_PHONE_LABELS = ["cell", "home", "work", "mobile", "phone", "ph", "tel", "pager", "beeper"]
# Someone told, paged or visiting right after a name ("DZIEKONSKI AWARE", "Tamsin updated"),
# or a phone label ("Ana Reyes cell# ...", "Ana Reyes (home) 555-...").
# A role written before the name ("NP Carol", "RRT Jones").
_ROLE_BEFORE = re.compile(r"(?=[nprmcsl])\b(?:np|pa|rn|md|rrt|crt|msw|sw|lpn|cna)\.?\s+")
# An initial before a surname ("W. Dziekonski"), not after another letter ("U.S. ").
# "Mark Hall, DO": the osteopath's degree, in capitals after a comma (not "do" the verb).
_DO_AFTER = re.compile(r",[ \t]*DO\b(?![ \t]+[a-z])")
# Led by the period (the engine skips to it fast); only where it ends is used.
_INITIAL_BEFORE = re.compile(r"\.(?<=[A-Z]\.)(?<![\w.'/<>=-][A-Z]\.)\s?(?=[A-Za-z])")
_THINGS = [
    "valve",
    "tear",
    "catheter",
    "cath",
    "tube",
    "syndrome",
    "disease",
    "sign",
    "criteria",
    "scale",
    "score",
    "test",
    "maneuver",
    "manoeuvre",
    "procedure",
    "repair",
    "drain",
    "stocking",
    "stockings",
    "boot",
    "boots",
    "bag",
    "mask",
    "pump",
    "collar",
    "brace",
    "dressing",
    "oint",
    "ointment",
    "cream",
    "technique",
    "stitch",
    "suture",
    "sutures",
    "fracture",
    "reflex",
    "ulcer",
    "position",
    "team",
]
# One scan for the words that follow a name-like word: "the DUVALL FAMILY" (a surname before
# it), "Passy Muir valve", "Mallory Weiss tear", "transplant team" (no person's name before).
_WORD_AFTER = re.compile(  # led by the space before the word: only spaces are tried
    r"[ \t](?:(?:is|was)[ \t]+(?:made[ \t]+)?)?(?:(?P<action>"
    + trie(_ACTION_WORDS)
    + r")\b|(?P<speech>"
    + trie(_SPEECH_WORDS)
    + r")\b|\(?(?P<phone>"
    + trie(_PHONE_LABELS)
    + r")\b\)?[ \t]*(?:#|no\.|number|phone|:|\(?\d)|(?P<family>famil(?:y|ies))\b|(?P<thing>"
    + trie(_THINGS)
    + r")\b)"
)
CONTACT_END = re.compile(_CONTACT_BEFORE.pattern + "$", re.IGNORECASE)

#: The context regexes run on the folded text, with the words that lead their matches
#: (``tokens.WordLedScan``); the name recognizer scans them together with the place rules.
RULES: list[LedRule] = [
    ("title", _TITLE_BEFORE, first_runs(TITLES), 0),
    ("relation", _RELATION_BEFORE, first_runs(RELATION_WORDS, plural=True), 0),
    ("label", _LABEL_BEFORE, _LABEL_WORDS, 0),
    ("pt_initials", _PT_INITIALS, ["pt", "patient"], 0),
    ("speech_before", _SPEECH_BEFORE, [*_SPEECH_BEFORE_WORDS, "please", "summary"], 0),
    (
        "role_before",
        _ROLE_BEFORE,
        ["np", "pa", "rn", "md", "rrt", "crt", "msw", "sw", "lpn", "cna"],
        0,
    ),
    (
        "word_after",
        _WORD_AFTER,
        [
            "is",
            "was",
            "family",
            "families",
            *_ACTION_WORDS,
            *_SPEECH_WORDS,
            *_PHONE_LABELS,
            *_THINGS,
        ],
        1,
    ),
    ("word_after", _WORD_AFTER, _PHONE_LABELS, 2),  # " (cell"
    (
        "relation_after",
        _RELATION_AFTER_WORD,
        ["his", "her", "their", "pt", "pts", "patient", "patients"],
        0,
    ),
    (
        "role",  # "pa-c", "m.d.": the letters before the first sign lead
        _ROLE_AFTER,
        "rn md pa cnm crna phd pharmd lpn cna msw lcsw licsw rrt crt np snm m r".split(),  # noqa: SIM905
        1,
    ),
]
#: What must follow a frequent lead word for its rule to match from it (see ``places.GATES``):
#: "pt" leads only "pt name" and "pt's son", "r" and "m" only "r.n." and "m.d.", "his" a kin.
GATES = {
    ("relation", "pt"): " name",
    ("relation", "patient"): " name",
    ("relation_after", "pt"): r"'s[ \t]",
    ("relation_after", "patient"): r"'s[ \t]",
    ("role", "r"): r"\.n\.",
    ("role", "m"): r"\.d\.",
    ("relation", "ordered"): " by",
    **{("label", w): r"[ \t]*:" for w in _COLON_LABELS},
    **{("label", w): r"[ \t]+to\b" for w in ["routed", "called", "call"]},
    **{("label", w): r"[ \t]+with\b" for w in ["discussed", "reviewed", "consult", "consulted"]},
    ("label", "taken"): r"[ \t]+by\b",
    ("label", "message"): r"[ \t]+from\b",
    ("speech_before", "please"): r"[ \t]+see\b",
    ("speech_before", "summary"): r"[ \t]+for\b",
    ("pt_initials", "pt"): _PT_INITIALS_AFTER,
    ("pt_initials", "patient"): _PT_INITIALS_AFTER,
    ("relation_after", "his"): r"[ \t]+" + trie(KIN),
    ("relation_after", "her"): r"[ \t]+" + trie(KIN),
    # " is made aware", " was (cell) ...": the words of ``_WORD_AFTER`` after "is" or "was".
    **{
        ("word_after", w): r"[ \t]+(?:made[ \t]+)?\(?"
        + trie([*_ACTION_WORDS, *_SPEECH_WORDS, *_PHONE_LABELS, "famil", *_THINGS])
        for w in ["is", "was"]
    },
}
_SCAN = WordLedScan(RULES, GATES)


class NameContext:
    """Where title and relation words end, or a role starts: one scan of the text each."""

    def __init__(
        self,
        text: str,
        low_text: str,
        led: dict[str, list[re.Match[str]]] | None = None,
        counts: tuple[int, int] | None = None,
    ) -> None:
        """``low_text`` is ``tokens.folded(text)``: the case-blind regexes run on it.

        ``led`` holds the matches of ``RULES`` in ``low_text`` when the caller scanned them
        already (together with other rules), and ``counts`` is ``case_counts(text)`` when
        the caller counted; otherwise both are computed here.
        """
        if led is None:
            led = _SCAN.run(low_text)
        # "MS" / "mr" without a period is mental status or mitral regurgitation, not a title.
        upper, lower = case_counts(text) if counts is None else counts
        self.lower_note = upper < 0.02 * (upper + lower)
        self.title: set[int] = set()
        self.weak_title: set[int] = set()
        #: "MS." / "MR." in capitals: in mixed-case text also "changes in MS. Aspiration ...".
        self.shouted_title: set[int] = set()
        for m in led["title"]:
            word = m.group().split(".")[0].strip()
            # "Mr Wilson" is a title; "MR" / "mr" without a period may be a valve or a state.
            weak = (
                "." not in m.group()
                and word in {"ms", "mr"}
                and text[m.start() : m.start() + 2] not in {"Mr", "Ms"}
            )
            (self.weak_title if weak else self.title).add(m.end())
            if text[m.start() : m.start() + 2] in {"MS", "MR"}:
                self.shouted_title.add(m.end())
        self.relation = set(map(_END, led["relation"]))
        #: After a label or verb that introduces a person ("RE:", "routed to").
        self.label = set(map(_END, led["label"]))
        #: After a sign-off dash ("-- Alan").
        self.signoff = (
            set(map(_END, _SIGNOFF_BEFORE.finditer(text)))
            if "--" in text or "\u2014" in text
            else set()
        )
        head = text[:80]
        if "," in head and ("/" in head or "--" in head) and text[:1].isalpha():
            self.signoff.add(0)  # a header line: "BARROS, LUIZ M. / #00554084"
        self.role_before = set(map(_END, led["role_before"]))
        #: After a verb of speech ("says"): only a known name is taken there.
        self.speech_before = set(map(_END, led["speech_before"]))
        self.initial = set(map(_END, _INITIAL_BEFORE.finditer(text)))
        after = leftmost(led["relation_after"], _RELATION_IN_BRACKETS.finditer(low_text))
        self.relation_after = {name_end(text, m.start()) for m in after}
        self.role = {name_end(text, m.start() + 1) for m in led["role"]}
        if "DO" in text:  # the one literal of ``_DO_AFTER``: most notes skip its scan
            self.role |= {name_end(text, m.start() + 1) for m in _DO_AFTER.finditer(text)}
        #: Ends of names followed by a comma and a role ("SMITH, MD"): surer than "SEE MD".
        self.comma_role = {e for e in self.role if e < len(text) and text[e] == ","}
        self.family_after: set[int] = set()
        #: Token ends followed by a thing or a group ("Muir| valve", "transplant| team").
        self.thing_after: set[int] = set()
        self.action_after: set[int] = set()
        self.speech_after: set[int] = set()
        for m in led["word_after"]:  # one regex for the five kinds
            if m.group("action") or m.group("phone"):
                self.action_after.add(name_end(text, m.start() + 1))
                continue
            if m.group("speech"):
                self.speech_after.add(name_end(text, m.start() + 1))
                continue
            end = m.start()
            while end > 0 and text[end - 1] in " \t":
                end -= 1
            (self.family_after if m.group("family") else self.thing_after).add(end)
        #: Token starts and ends where some name context applies.
        self.starts = self.title | self.weak_title | self.relation | self.role_before | self.initial
        self.starts |= self.label | self.signoff | self.speech_before
        self.ends = self.role | self.relation_after | self.action_after | self.speech_after


def name_end(text: str, pos: int) -> int:
    """Where a name before ``pos`` would end: back over spaces and one comma."""
    while pos > 0 and text[pos - 1] in " \t":
        pos -= 1
    if pos > 0 and text[pos - 1] == ",":
        pos -= 1
    while pos > 0 and text[pos - 1] in " \t":
        pos -= 1
    return pos


def mixed_case_candidates(text: str, ctx: NameContext) -> list[re.Match[str]]:
    """In mixed-case text only capitalised tokens, or tokens in a name context, can be names."""
    caps = capitalised_in(text)
    found = dict(zip(map(_START, caps), caps, strict=True))
    plain = len(found)  # while nothing joins, the capitalised tokens are the answer, in order
    for pos in ctx.title | ctx.weak_title | ctx.relation | ctx.role_before | ctx.label:
        if pos not in found:
            m = TOKEN.match(text, pos)
            if m is not None:
                found[pos] = m
    for pos in ctx.role | ctx.relation_after:
        m = TOKEN_ENDING.search(text, max(0, pos - 40), pos)
        if m is not None and m.start() not in found:
            found[m.start()] = m
    for m in _PARTICLE.finditer(text):  # "van den Wittenberg": lower-case, but part of a name
        if not (m.start() and text[m.start() - 1].isalpha()):
            found.setdefault(m.start(), m)
    if len(found) == plain:
        return caps
    # The capitalised tokens are in order and the others few: a sort by start in C.
    return sorted(found.values(), key=_START)


_START = re.Match.start
_END = re.Match.end


# A lower-case surname particle before a capitalised word (literal first letters: fast skip).
_PARTICLE = re.compile(
    trie("de van von der den da di du la le del della dos das ten ter".split())  # noqa: SIM905
    + r"\b(?=[ \t][A-Za-z])"
)
