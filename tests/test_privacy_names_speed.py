"""The name stage's speed-ups keep its findings.

The context regexes of names and places run as one word-led scan
(``tokens.WordLedScan``) instead of one pass each: here the scan is compared
with each regex's own ``finditer`` on generated notes and on word salad built
to provoke overlaps, and the recognizer's findings on a fixed set of notes
written by this module are pinned by a digest (no corpus text is stored).
"""

from __future__ import annotations

import hashlib
import random
import re

import pytest

from sluicegate.core.privacy import fresh
from sluicegate.core.privacy.findings import Finding
from sluicegate.core.privacy.gazetteer import place_names
from sluicegate.core.privacy.lexicon import given_names, surnames
from sluicegate.core.privacy.name_context import (
    _INITIAL_BEFORE,
    _RELATION_IN_BRACKETS,
    KIN,
    NameContext,
)
from sluicegate.core.privacy.name_context import GATES as NAME_GATES
from sluicegate.core.privacy.name_context import RULES as NAME_RULES
from sluicegate.core.privacy.names import NameRecognizer
from sluicegate.core.privacy.places import _ACRONYM_PLACE, acronyms_after_signs
from sluicegate.core.privacy.places import GATES as PLACE_GATES
from sluicegate.core.privacy.places import RULES as PLACE_RULES
from sluicegate.core.privacy.tokens import (
    CAP_TOKEN,
    CAP_TOKEN_ASCII,
    TOKEN,
    TOKEN_ASCII,
    WordLedScan,
    folded,
    leftmost,
    no_case_signal,
    trie,
)

_RULES = [*NAME_RULES, *PLACE_RULES]
_PATTERNS = {name: pattern for name, pattern, _, _ in _RULES}
_SCAN = WordLedScan(_RULES, {**NAME_GATES, **PLACE_GATES})


# The regexes as they were written before they were split or reordered for speed.
_RELATION_AFTER = re.compile(
    r"(?=[(htp])(?:\([ \t]*(?:pt'?s[ \t]+)?"
    + trie(KIN)
    + r"s?[ \t]*\)|\b(?:his|her|their|pt'?s|patient'?s)[ \t]+"
    + trie(KIN)
    + r"\b)",
)
_INITIAL = re.compile(r"(?=[A-Z]\.)(?<![\w.'/<>=-])[A-Z]\.\s?(?=[A-Za-z])")
_TOKEN = re.compile(r"[^\W\d_](?:[^\W\d_'\-]|['\-](?=[^\W\d_]))*")
_CAPITALISED = re.compile(r"(?<![^\W\d_'\-])[A-ZÀ-ÖØ-ÞĀ-ž](?:[^\W\d_'\-]|['\-](?=[^\W\d_]))*")


def _assert_same_as_finditer(text: str) -> int:
    low = folded(text)
    got = _SCAN.run(low)
    total = 0
    for name, pattern in _PATTERNS.items():
        want = [(m.span(), m.groupdict()) for m in pattern.finditer(low)]
        assert [(m.span(), m.groupdict()) for m in got[name]] == want, name
        total += len(want)
    # The acronym regex runs as branches: one led by a word, the others by a sign.
    acronyms = leftmost(got["acronym"], acronyms_after_signs(low))
    want = [(m.span(), m.groupdict()) for m in _ACRONYM_PLACE.finditer(low)]
    assert [(m.span(), m.groupdict()) for m in acronyms] == want
    after = leftmost(got["relation_after"], _RELATION_IN_BRACKETS.finditer(low))
    assert [m.span() for m in after] == [m.span() for m in _RELATION_AFTER.finditer(low)]
    assert {m.end() for m in _INITIAL_BEFORE.finditer(text)} == {
        m.end() for m in _INITIAL.finditer(text)
    }
    assert [m.span() for m in TOKEN.finditer(text)] == [m.span() for m in _TOKEN.finditer(text)]
    assert [m.span() for m in CAP_TOKEN.finditer(text)] == [
        m.span() for m in _CAPITALISED.finditer(text)
    ]
    if text.isascii():  # the ASCII twins, which ``tokens_in`` / ``capitalised_in`` pick
        assert [m.span() for m in TOKEN_ASCII.finditer(text)] == [
            m.span() for m in _TOKEN.finditer(text)
        ]
        assert [m.span() for m in CAP_TOKEN_ASCII.finditer(text)] == [
            m.span() for m in _CAPITALISED.finditer(text)
        ]
    return total


@pytest.mark.parametrize("seed", [3, 17])
def test_led_scan_equals_finditer_on_generated_notes(seed: int) -> None:
    found = 0
    for doc in fresh.generate(40, seed):
        for text in (doc.text, doc.text.upper(), doc.text.lower()):
            found += _assert_same_as_finditer(text)
    assert found > 100  # the notes do reach the rules


def _lead_words() -> list[str]:
    words: set[str] = set()
    for _, _, lead, _ in _RULES:
        words.update(lead)
    return sorted(words)


_FILLER = [
    "ms",
    "smith",
    "son",
    "4 ",
    "the",
    "is",
    "and",
    "to",
    "the smith",
    "4",
    "12",
    "tele",
    "mri",
    "the",
    "made",
    "of",
    "st.",
    "m.d.",
    "r.n.",
]
_FILLER += ["pa-c", "np-c", "dr's", "i'm", "sons", "families", "is made", "his", "cell#", "555"]
_FILLER += [
    "(son)",
    "( pts daughters )",
    "J.",
    "A.B.",
    "Dr. J. Smith",
    "U.S.",
    "O'Neil",
    "x-Ray",
    "a'-b",
    "o''neil",
    "smith-",
    "-jones",
    "'t",
]
_FILLER += ["gh", "gbmc", "ummc", "mc", "hc", "rn2", "mdé", "the gh", "->", "@", "pt's", "Ärzte"]
# What the gated words' rules need after them: a ward's name and number, an acronym, "name".
_FILLER += ["kestrel 4", "the", "ward 12", "ward4", "ggh", "ummc.", "name", "'s", "of", "n.", "d."]
_SEPARATORS = [" ", "  ", "\t", ", ", ",", ". ", ".", "(", ")", " (", "-", "'", "\n", ": ", "/"]
_SEPARATORS += ["@", "->", "-> ", "_", "2", " 4 ", "é"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_led_scan_equals_finditer_on_word_salad(seed: int) -> None:
    """Lead words packed together, so that matches touch, nest and overlap."""
    r = random.Random(seed)
    vocabulary = _lead_words() + _FILLER
    found = 0
    ascii_texts = 0
    for _ in range(300):
        parts = []
        for _ in range(r.randint(5, 40)):
            parts.append(r.choice(vocabulary if r.random() < 0.5 else _FILLER))
            parts.append(" " if r.random() < 0.6 else r.choice(_SEPARATORS))
        text = "".join(parts)
        text = text.upper() if r.random() < 0.3 else text
        found += _assert_same_as_finditer(text)
        ascii_texts += text.isascii()
    assert found > 200
    assert 30 < ascii_texts < 270  # both the ASCII and the Unicode scans are compared


def test_gates_only_drop_words_that_lead_no_match() -> None:
    """Without its gates the scan finds the same matches, and the gates do drop words."""
    ungated = WordLedScan(_RULES)
    phrases = (
        "to the kestrel 4, and ward 12 at 3, per the gh. pt's son, pt name: u of iowa, jo r.n."
        " i am at the lake; ordered by dr x. her son, ann is made aware. mercy med ctr"
    )
    text = phrases + folded(" ".join(doc.text for doc in fresh.generate(30, 5)))
    found = _SCAN.run(phrases)
    gated_rules = ["relation", "relation_after", "role", "word_after", "place_before"]
    for name in [*gated_rules, "university", "ward", "acronym", "hospital"]:
        assert found[name], name  # each rule that a gated word leads matches there
    gated, plain = _SCAN.run(text), ungated.run(text)
    for name in _PATTERNS:
        assert [m.span() for m in gated[name]] == [m.span() for m in plain[name]], name
    assert len(_SCAN._scan.findall(text)) < len(ungated._scan.findall(text))


def test_led_scan_refuses_far_offsets() -> None:
    with pytest.raises(ValueError):
        WordLedScan([("far", re.compile(r"abc"), ["c"], 3)])


def test_words_rejected_alone_are_rejected_by_the_full_decision() -> None:
    """``_rejected_alone`` lets the recognizer skip ``_is_name``: wherever it says a word
    is rejected, away from any context, ``_is_name`` rejects it too and reports no state."""
    recognizer = NameRecognizer()
    texts = [doc.text for doc in fresh.generate(60, 9)] + _notes(4, 60)
    checked = 0
    for text in (*texts, *(t.upper() for t in texts), *(t.lower() for t in texts)):
        low = folded(text)
        ctx = NameContext(text, low)
        nocase = no_case_signal(text)
        for m in TOKEN.finditer(text):
            if m.start() in ctx.starts or m.end() in ctx.ends or m.end() in ctx.family_after:
                continue
            if not recognizer._rejected_alone(m.group(), nocase, ctx.lower_note):
                continue
            states: list[Finding] = []
            assert not recognizer._is_name(text, m, nocase, ctx, states), m.group()
            assert not states
            checked += 1
    assert checked > 10_000


# ------------------------------------------------------------ findings pinned


def _notes(seed: int, n: int) -> list[str]:
    """Short notes in the phrasings the recognizer reads, from Census names and GeoNames."""
    r = random.Random(seed)
    given = sorted(given_names())[::7]
    last = sorted(surnames())[::97]
    places = sorted(p for p in place_names() if " " not in p)[::301]
    templates = [
        "Seen by Dr. {L} today; {F} {L}, RN aware.",
        "wife {f} called, updated on plan. pt lives in {p}.",
        "SPOKE WITH {F} {L} (SON) WHO STATES PT WAS TRANSFERRED FROM {P} HOSPITAL.",
        "{L}, {F} MD paged re: BP. Family meeting w/ {f} at 3pm.",
        "transfer to {P} 4 tomorrow. NP {F} notified. Passy Muir valve in place.",
        "Mrs. {L} visited; her daughter {F} says she will return to {P}.",
        "d/w attending {F} {L}; plan per {L} team. Went to St. {F} rehab.",
        "{F} {L} is made aware. Home phone 555-0100. Originally from {p} area.",
    ]
    notes = []
    for _ in range(n):
        f, ln, p = r.choice(given), r.choice(last), r.choice(places)
        parts = []
        for t in r.sample(templates, 3):
            parts.append(
                t.format(
                    f=f,
                    F=f.title(),
                    L=ln.title(),
                    p=p,
                    P=p.title(),
                )
            )
        text = " ".join(parts)
        notes.append(r.choice([text, text.upper(), text.lower()]))
    return notes


#: sha256 of the findings below; recompute (and say why in the change) only when a rule
#: change is meant to alter what the recognizer reports.
_PINNED = "a71f8f4ae1212039e7cabd142d2c6ef515378c45249c48c59392c4d60d0c4c42"


def test_findings_on_generated_notes_unchanged() -> None:
    recognizer = NameRecognizer()
    lines = []
    for i, text in enumerate(_notes(2026, 120)):
        spans = [(f.start, f.end, str(f.kind), f.source) for f in recognizer.find(text)]
        lines.append(f"{i} {spans}")
    assert sum(line.count("name") for line in lines) > 500
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert digest == _PINNED


def test_bounded_hospital_search_finds_what_the_whole_window_finds() -> None:
    """``places.hospital_words_before`` starts its search where a match can first
    begin; on random text (words, apostrophes, dots, dashes, tabs, newlines,
    non-ASCII letters, digits) it finds the same match as searching the whole
    60-character window. A new seed each run, printed on failure."""
    from sluicegate.core.privacy.places import _HOSPITAL, hospital_words_before

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    pieces = [
        "st", "Mary's", "general", "County", "univ.", "a-b", "O'Neil", "x_y", "Ünion",
        "é", "12", "3rd", "memorial", "heart", "cross", ".", ",", "'", "-", "(",
    ]  # fmt: skip
    gaps = [" ", "  ", "\t", "\n", " \n", "", "\r\n"]
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) + rng.choice(gaps) for _ in range(rng.randint(0, 14)))
        end = rng.randint(0, len(text))
        whole = _HOSPITAL.search(text, max(0, end - 60), end)
        bounded = hospital_words_before(text, end)
        assert (whole and (whole.span(), whole.groupdict())) == (
            bounded and (bounded.span(), bounded.groupdict())
        ), f"seed {seed}: {text!r} end {end}"
