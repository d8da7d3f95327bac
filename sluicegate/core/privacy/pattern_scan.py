"""Run the pattern set in a few passes instead of one pass per pattern.

Python's regex engine tries a pattern at every position of the text, so ~40
patterns cost ~40 passes of ~20 ns a character, however rare their matches;
on digit-dense clinical notes that was most of the detector's time. Here the
same patterns run as *families*, each one regex that tries all its members,
as look-aheads with a capture group each, only at the family's anchors:

* **digit family**: patterns whose match can only begin at the start of a
  digit run, or at ``(``, ``+`` or ``'`` just before one (dates, phones,
  numbers, street numbers);
* **keyword family**: case-insensitive patterns that begin with a label word
  (``MRN``, ``phone``, ``on the``, month names). They run on the lower-cased
  text as case-sensitive regexes (the engine can then skip alternatives by
  their first letter), only at word starts whose first letters begin one of
  the members' labels; those letters are derived from the patterns
  themselves, so a label added to a pattern is never missed;
* every other pattern runs alone, behind its cheap necessary condition.

The result is exactly that of each pattern's own ``finditer``: a member is
tried at every anchor in order, a hit that starts inside the member's
previous hit is dropped (``finditer`` would have resumed after it), and each
kept hit is matched again with the member's own regex at the same position,
so checks and capture groups see what they always saw. Tests compare both
paths on real and generated text.
"""

from __future__ import annotations

import re
import re._constants as sre_c
import re._parser as sre_parse
from collections.abc import Iterable, Sequence
from typing import Any

# Characters that re.IGNORECASE equates with an ASCII letter although their
# lower case is not that letter (dotted capital I, dotless i, long s, Kelvin
# sign): a text holding one cannot be matched on its lower-cased copy.
_FOLD_SPECIAL = frozenset("\u0130\u0131\u017f\u212a")


def lower_aligned(text: str) -> str | None:
    """``text.lower()`` when it matches case-insensitively like ``text``, char for char."""
    low = text.lower()
    if text.isascii():
        return low
    if len(low) != len(text):
        return None
    for c in set(text):
        if c.isascii():
            continue
        lc = c.lower()
        if c in _FOLD_SPECIAL or (c.isalnum(), c.isdecimal(), c.isspace()) != (
            lc.isalnum(),
            lc.isdecimal(),
            lc.isspace(),
        ):
            return None
    return low


#: Stand for "any white space" and "any digit" in a prefix (characters no pattern spells).
SPACE, DIGIT = "\x00", "\x01"
_ATOMS = {SPACE: r"\s", DIGIT: r"\d"}


def prefixes(regex: str, flags: int = 0, size: int = 2) -> set[str]:
    """Strings of at most ``size`` characters one of which starts every match.

    Zero-width assertions are skipped (a superset is safe); a class of more
    than 30 characters or a category (``\\w``) ends the prefix there.
    """
    found: set[str] = set()
    _walk(list(sre_parse.parse(regex, flags)), "", size, found)
    return found


def first_class(regex: str, flags: int = 0) -> str | None:
    """A character class of every first character a match can have, or None if unbounded."""
    firsts = prefixes(regex, flags, 1)
    if "" in firsts:
        return None
    return "[" + "".join(_ATOMS.get(c) or re.escape(c) for c in sorted(firsts)) + "]"


def starts_with_char(regex: str, flags: int = 0) -> bool:
    """Whether the regex begins by consuming a literal or a class (the engine then skips ahead)."""
    first = list(sre_parse.parse(regex, flags))[:1]
    return bool(first) and first[0][0] in (sre_c.LITERAL, sre_c.IN)


def _walk(items: list[Any], pre: str, size: int, found: set[str]) -> None:
    if len(pre) >= size or not items:
        found.add(pre)
        return
    (op, av), rest = items[0], items[1:]
    if op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
        _walk(rest, pre, size, found)
    elif op is sre_c.LITERAL:
        _walk(rest, pre + chr(av), size, found)
    elif op is sre_c.IN:
        chars = _class_chars(av)
        if chars is None:
            found.add(pre)
        for c in chars or ():
            _walk(rest, pre + c, size, found)
    elif op is sre_c.SUBPATTERN:
        _walk(list(av[-1]) + rest, pre, size, found)
    elif op is sre_c.BRANCH:
        for alt in av[1]:
            _walk(list(alt) + rest, pre, size, found)
    elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
        low, high, item = av
        if low == 0:
            _walk(rest, pre, size, found)
        if high != 0:
            again = [] if high == 1 else [(op, (max(low - 1, 0), high - 1, item))]
            _walk(list(item) + again + rest, pre, size, found)
    else:
        found.add(pre)


def _class_chars(av: Any) -> list[str] | None:
    if list(av) == [(sre_c.CATEGORY, sre_c.CATEGORY_SPACE)]:
        return [SPACE]  # "\\s": one atom standing for any white space
    if list(av) == [(sre_c.CATEGORY, sre_c.CATEGORY_DIGIT)]:
        return [DIGIT]
    chars: list[str] = []
    for op, arg in av:
        if op is sre_c.LITERAL:
            chars.append(chr(arg))
        elif op is sre_c.RANGE and arg[1] - arg[0] < 30:
            chars.extend(chr(c) for c in range(arg[0], arg[1] + 1))
        else:
            return None
    return chars


def prefix_lead(starts: Iterable[str]) -> str:
    """A look-ahead regex that holds where one of ``starts`` begins.

    Written as a trie ("(?:o(?:n\\s|f\\s)|t(?:he\\s))"), so the engine compares
    each character once and skips the alternatives that begin otherwise.
    """
    trie: dict[str, Any] = {}
    for s in starts:
        if not s:
            raise ValueError("a member can start anywhere: it cannot join a keyword family")
        node = trie
        for c in s:
            node = node.setdefault(c, {})
        node[""] = {}
    return "(?=" + _trie_regex(trie) + ")"


def _trie_regex(node: dict[str, Any]) -> str:
    alts = []
    for c, child in sorted(node.items()):
        if not c:
            continue
        atom = _ATOMS.get(c) or re.escape(c)
        alts.append(atom if "" in child else atom + _trie_regex(child))
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def _renamed(source: str, tag: int) -> str:
    """Give a member's named groups (and back-references) names unique in the family."""
    if re.search(r"\\[1-9]", source):
        raise ValueError("family members use named back-references only")
    source = re.sub(r"\(\?P<(\w+)>", lambda m: f"(?P<{m[1]}_{tag}>", source)
    return re.sub(r"\(\?P=(\w+)\)", lambda m: f"(?P={m[1]}_{tag})", source)


class Family:
    """Members tried together, as look-aheads, at each anchor found by ``lead``.

    ``members`` are ``(key, regex)``; ``hits`` returns, per key, the start
    positions that the member's own ``finditer`` would have matched at.
    The combined regex fails where no member matches, so only hits come back
    from the engine.
    """

    def __init__(
        self, members: Sequence[tuple[int, re.Pattern[str]]], lead: str, flags: int
    ) -> None:
        parts = []
        for tag, (_, rx) in enumerate(members):
            source = _renamed(rx.pattern, tag)
            if (rx.flags ^ flags) & re.IGNORECASE:
                source = f"(?{'i' if rx.flags & re.IGNORECASE else '-i'}:{source})"
            parts.append(f"(?:(?=(?P<m{tag}>{source}))|)")
        chain = "(?!)"
        for tag in reversed(range(len(members))):
            chain = f"(?(m{tag})|{chain})"
        body = "(?:" + "".join(parts) + chain + ")"
        self.scan = re.compile(lead + body, flags)
        self.at_start = re.compile(body, flags)
        self.slots = [
            (self.scan.groupindex[f"m{tag}"], key) for tag, (key, _) in enumerate(members)
        ]

    def hits(self, text: str, *, from_start: bool, out: dict[int, list[int]]) -> None:
        """Add each member's finditer start positions in ``text`` to ``out[key]``."""
        after: dict[int, int] = {}
        slots = self.slots
        matches: Iterable[re.Match[str]] = self.scan.finditer(text)
        if from_start:
            first = self.at_start.match(text)
            if first is not None:
                matches = [first, *matches]
        for m in matches:
            regs = m.regs
            for group, key in slots:
                start, end = regs[group]
                if start < 0 or start < after.get(key, 0):
                    continue
                after[key] = end
                out.setdefault(key, []).append(start)
