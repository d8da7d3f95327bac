"""Tokens, capitalisation and regex helpers shared by the name and place recognizers.

Both recognizers read the same tokens and ask the same questions about case
(is this note all-caps? is this word at a sentence start?), so the answers live
here once; the regex builders keep long word lists fast in Python's
backtracking engine.
"""

from __future__ import annotations

import re
from typing import Any


def lead(words: list[str]) -> str:
    """A look-ahead on the possible first letters, so the engine skips other positions fast."""
    first = sorted({w[0].lower() for w in words} | {w[0].upper() for w in words})
    return "(?=[" + re.escape("".join(first)) + "])"


def trie(words: list[str]) -> str:
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
LETTER = r"[^\W\d_]"
TOKEN = re.compile(rf"{LETTER}(?:[^\W\d_'\-]|['\-](?={LETTER}))*")
CAP_TOKEN = re.compile(rf"(?<![^\W\d_'\-])[A-ZÀ-ÖØ-ÞĀ-ž](?:[^\W\d_'\-]|['\-](?={LETTER}))*")
TOKEN_ENDING = re.compile(rf"(?<![^\W\d_'\-]){LETTER}(?:[^\W\d_'\-]|['\-](?={LETTER}))*$")


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


def no_case_signal(text: str) -> bool:
    """All-caps or all-lower-case notes carry no capitalisation signal."""
    upper, lower = case_counts(text)
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
