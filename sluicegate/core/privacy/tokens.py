"""Tokens, capitalisation and regex helpers shared by the name and place recognizers.

Both recognizers read the same tokens and ask the same questions about case
(is this note all-caps? is this word at a sentence start?), so the answers live
here once; the regex builders keep long word lists fast in Python's
backtracking engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Any


def lead(words: list[str]) -> str:
    """A look-ahead on the possible first letters, so the engine skips other positions fast."""
    first = sorted({w[0].lower() for w in words} | {w[0].upper() for w in words})
    return "(?=[" + re.escape("".join(first)) + "])"


def trie(words: list[str], gates: Mapping[str, str] | None = None) -> str:
    """A regex alternation of ``words`` as a prefix tree: one branch per first letter.

    Python's engine tries alternatives one by one; sharing prefixes makes a
    long word list cost about one comparison per position instead of one per word.
    A word in ``gates`` (lower case) ends only where its look-ahead holds after it.
    """
    tree: dict[str, Any] = {}
    for word in words:
        node = tree
        for ch in word.lower():
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict[str, Any], prefix: str = "") -> str:
        alts = [
            re.escape(ch) + render(child, prefix + ch) for ch, child in sorted(node.items()) if ch
        ]
        if "" in node and gates and prefix in gates:
            # Longer words first, as the optional group below would try them.
            return "(?:" + "|".join([*alts, "(?=" + gates[prefix] + ")"]) + ")"
        if not alts:
            return ""
        optional = "" in node
        body = alts[0] if len(alts) == 1 and not optional else "(?:" + "|".join(alts) + ")"
        if optional:
            body = ("(?:" + "|".join(alts) + ")") + "?"
        return body

    return "(?:" + render(tree) + ")"


# Letters are any Unicode letters ("Jožef", "Ryhänen"); an apostrophe or hyphen may join them.
LETTER = r"[^\W\d_]"
# Runs of letters joined by single signs: the same tokens as "letter, then letters or a sign
# before a letter", but the engine reads a run of letters in one step.
TOKEN = re.compile(rf"{LETTER}+(?:['\-]{LETTER}+)*")
# The capital comes first and the look-behind after it, so the engine skips to capitals fast.
CAP_TOKEN = re.compile(
    rf"[A-ZÀ-ÖØ-ÞĀ-ž](?<![^\W\d_'\-][A-ZÀ-ÖØ-ÞĀ-ž])(?:[^\W\d_'\-]|['\-](?={LETTER}))*"
)
#: ``TOKEN`` and ``CAP_TOKEN`` for ASCII text, where they find the same tokens: a letter is
#: then tested against a table, not its Unicode category (about a third faster). Pick one
#: with ``tokens_in`` / ``capitalised_in``; ``str.isascii`` costs nothing. The repeats are
#: possessive (nothing after them could make the engine give a letter back), which spares
#: the engine its backtracking bookkeeping: ~5% faster, the same tokens.
TOKEN_ASCII = re.compile(r"[A-Za-z]++(?:['\-][A-Za-z]++)*+")
CAP_TOKEN_ASCII = re.compile(r"[A-Z](?<![A-Za-z][A-Z])[A-Za-z]*+(?:['\-][A-Za-z]++)*+")
TOKEN_ENDING = re.compile(rf"(?<![^\W\d_'\-]){LETTER}(?:[^\W\d_'\-]|['\-](?={LETTER}))*$")


def tokens_in(text: str) -> list[re.Match[str]]:
    """``TOKEN``'s matches in ``text``."""
    return list((TOKEN_ASCII if text.isascii() else TOKEN).finditer(text))


def capitalised_in(text: str) -> list[re.Match[str]]:
    """``CAP_TOKEN``'s matches in ``text``."""
    return list((CAP_TOKEN_ASCII if text.isascii() else CAP_TOKEN).finditer(text))


def folded(text: str) -> str:
    """``text`` in lower case with the same offsets, for case-blind regexes without IGNORECASE.

    Python's engine matches IGNORECASE patterns about half as fast; lower-casing
    once is a single C call. The few characters whose lower case is longer
    ("İ") are kept as they are, so every offset still points at the same character.
    """
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_ASCII_LOWER = bytes(range(ord("a"), ord("z") + 1))
_NOT_UPPER = bytes(b for b in range(256) if b not in _ASCII_UPPER)
_NOT_LOWER = bytes(b for b in range(256) if b not in _ASCII_LOWER)


def case_counts(text: str) -> tuple[int, int]:
    """Upper- and lower-case ASCII letters in the first 1,500 characters (C speed)."""
    sample = text[:1500].encode("ascii", "ignore")
    return len(sample.translate(None, _NOT_UPPER)), len(sample.translate(None, _NOT_LOWER))


def no_case_signal(text: str, counts: tuple[int, int] | None = None) -> bool:
    """All-caps or all-lower-case notes carry no capitalisation signal.

    ``counts`` is ``case_counts(text)`` when the caller counted already.
    """
    upper, lower = case_counts(text) if counts is None else counts
    if not upper + lower:
        return True
    share = upper / (upper + lower)
    return share > 0.7 or share < 0.02


def sentence_start(text: str, pos: int) -> bool:
    before = text[max(0, pos - 4) : pos].rstrip(" \t")
    if not before:
        return True
    if before[-1] == "." and len(before) >= 2 and before[-2].isupper():
        # "J. Smith": an initial, not the end of a sentence.
        return len(before) >= 3 and before[-3].isalpha()
    return before[-1] in ".!?:;\n-*#>"


def first_runs(words: Iterable[str], *, plural: bool = False) -> set[str]:
    """The first word-character run of each of ``words`` ("seen by" -> "seen", "i'm" -> "i").

    With ``plural`` a one-run word also yields its "s" form ("son" -> "sons").
    """
    out: set[str] = set()
    for w in words:
        run = _RUN.match(w)
        if run is None:
            continue
        out.add(run.group())
        if plural and run.group() == w:
            out.add(w + "s")
    return out


_RUN = re.compile(r"\w+")

#: A rule of ``WordLedScan``: its name, its regex, the words that lead a match, and how many
#: characters before such a word the match starts (1 for " area", 2 for " (cell").
LedRule = tuple[str, re.Pattern[str], Iterable[str], int]


class WordLedScan:
    """Several word-led regexes over one text with a single scan for their leading words.

    Python's engine tries a regex at every position of the text, so a dozen
    context regexes cost a dozen passes over each note. Every match of these
    regexes starts at (or one or two characters before) a whole word from a
    short list, so one trie regex finds those words and each rule's regex is
    then tried only there. The matches are the ones ``finditer`` would give:
    leftmost first, without overlaps (tests compare the two). A rule's word
    list must hold the whole leading word of every possible match; the regex
    must run on the text the scan reads.
    """

    def __init__(
        self, rules: Iterable[LedRule], gates: Mapping[tuple[str, str], str] | None = None
    ) -> None:
        """``gates`` maps (rule name, lead word) to a look-ahead that holds right after the
        word wherever that rule can match from it (" name" after "pt": "pt name"). A word
        whose every rule has one is found only where one holds: frequent words that seldom
        lead a match ("to", "and", "pt") then cost the engine a few steps, not a Python call.
        """
        self._names: list[str] = []
        lead: dict[str, list[tuple[int, int, Callable[[str, int], re.Match[str] | None]]]] = {}
        names: dict[str, set[str]] = {}  # the rules each word leads
        for name, pattern, words, back in rules:
            if not 0 <= back <= 2:
                # Candidates stay in text order only while a match starts at most two
                # characters before its word (two words are at least two characters apart).
                raise ValueError("a match may start at most two characters before its word")
            if name not in self._names:
                self._names.append(name)
            index = self._names.index(name)
            for word in set(words):
                if not (word.isascii() and word.isalpha() and word.islower()):
                    # Then at most one word of the scan fits at a place (see ``run``).
                    raise ValueError("lead words are lower-case ASCII letters")
                lead.setdefault(word, []).append((index, back, pattern.match))
                names.setdefault(word, set()).add(name)
        for entries in lead.values():
            entries.sort(key=lambda e: -e[1])  # the earlier start first: " (cell" before "(cell"
        self._lead = {w: tuple(e) for w, e in lead.items()}
        gates = gates or {}
        word_gates = {
            w: "|".join(f"(?:{gates[rule, w]})" for rule in sorted(rules))
            for w, rules in names.items()
            if all((rule, w) in gates for rule in rules)
        }
        # A lead word ends where no ASCII letter follows: a rule may want "rn" in "RN2".
        # The look-ahead on first letters lets the engine pass most positions without \b.
        words = "(" + trie(sorted(lead), word_gates) + r")(?![A-Za-z])"
        self._scan = re.compile("(?=[" + "".join(sorted({w[0] for w in lead})) + r"])\b" + words)
        # On ASCII text a word boundary before a letter is a character that is no word
        # character: a set that leads the regex, so the engine skips to such characters in
        # C instead of trying the word list at every position. A word that opens the text
        # has no character before it: ``_first_ascii`` tries that one place.
        self._scan_ascii = re.compile("[^0-9A-Za-z_]" + words, re.ASCII)
        self._first_ascii = re.compile(words, re.ASCII)

    def run(self, text: str) -> dict[str, list[re.Match[str]]]:
        """Each rule's matches in ``text``, in order, as its ``finditer`` would find them.

        The scan's matches never overlap a word that a rule needs: each is one lead word,
        letters only, at a word boundary, and no other lead word fits at the same place
        (a longer one would continue with a letter, which a shorter one may not).
        """
        found: list[list[re.Match[str]]] = [[] for _ in self._names]
        ends = [0] * len(self._names)  # where each rule's previous match ended
        lead = self._lead
        words: Iterable[re.Match[str]]
        if text.isascii():
            words = self._scan_ascii.finditer(text)
            first = self._first_ascii.match(text)
            if first is not None:
                words = chain((first,), words)
        else:
            words = self._scan.finditer(text)
        for word in words:
            pos = word.start(1)  # the word (group 1), not the character before it
            for index, back, match in lead[word[1]]:
                start = pos - back
                if start < ends[index] or start < 0:
                    continue  # inside the previous match: finditer resumes after it
                m = match(text, start)
                if m is not None:
                    found[index].append(m)
                    end = m.end()
                    ends[index] = end if end > start else start + 1
        return dict(zip(self._names, found, strict=True))


def leftmost(*groups: Iterable[re.Match[str]]) -> list[re.Match[str]]:
    """The matches of an alternation's branches, found apart, as its ``finditer`` keeps them.

    Ordered by start, a match starting inside the one kept before it dropped; exact when
    no two branches can match at the same place (each starts with its own characters).
    Each group is one branch's matches as its ``finditer`` gives them (in order, none
    inside another): a group alone is then its own answer, and most notes have one.
    """
    found = [listed for listed in map(list, groups) if listed]
    if len(found) < 2:
        return found[0] if found else []
    out: list[re.Match[str]] = []
    end = 0
    for m in sorted((m for group in found for m in group), key=_START):
        if m.start() >= end:
            out.append(m)
            end = max(m.end(), m.start() + 1)
    return out


_START = re.Match.start
