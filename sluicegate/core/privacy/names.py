"""Person names in narrative without any structured hint (the entry point for places too).

A dictionary + context recognizer: given names and surnames from the public
domain U.S. Census lists (shipped by the ``names`` package), filtered by how
common the word is in ordinary English (``wordfreq``) and by a hand-written
clinical stoplist, then accepted or rejected by context: titles ("Dr.",
"Mrs"), roles ("RN", "MD"), relations ("wife", "son"), verbs of contact
("seen by", "spoke with"), labels ("Name:") and capitalisation.

Places and institutions are found by ``places.PlaceRecognizer`` over the same
tokens; ``NameRecognizer.find`` returns both, so the detector has one entry
point for the dictionary stage. The word-list functions stay importable from
here (``known.py`` and the tests use them); they live in ``lexicon.py``.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from itertools import compress, count
from operator import not_

from sluicegate.core.privacy.findings import Finding, Kind
from sluicegate.core.privacy.gazetteer import place_names
from sluicegate.core.privacy.lexicon import (
    DEPARTMENT_ENDINGS,
    NOT_AFTER_TITLE,
    Lexicon,
    given_names,
    is_common_word,
    surnames,
    warm,
)
from sluicegate.core.privacy.name_context import (
    CONTACT_END,
    GATES,
    KIN_SET,
    PARTICLES,
    ROLES,
    RULES,
    SIGNOFF_END,
    TITLES,
    VISIT_AFTER,
    NameContext,
    mixed_case_candidates,
)
from sluicegate.core.privacy.places import GATES as PLACE_GATES
from sluicegate.core.privacy.places import RULES as PLACE_RULES
from sluicegate.core.privacy.places import PlaceRecognizer
from sluicegate.core.privacy.tokens import (
    TOKEN_ENDING,
    WordLedScan,
    case_counts,
    folded,
    no_case_signal,
    sentence_start,
    tokens_in,
)

#: What follows the apostrophe of a contraction ("I'm", "we'll"), never of a name ("O'Brien").
_CONTRACTED = frozenset(["m", "ll", "ve", "d", "re", "t"])

#: ".N." of "R.N.", ".D." of "M.D.": a dotted abbreviation, not an initial.
_DOTTED = re.compile(r"\.[A-Za-z]\.")
_STREET_WORDS = frozenset(
    [
        "street",
        "avenue",
        "road",
        "place",
        "lane",
        "drive",
        "close",
        "court",
        "boulevard",
        "terrace",
        "crescent",
        "square",
        "highway",
        "parkway",
        "plaza",
        "alley",
    ]
)

_WORD = re.Match.group
#: The word-led context regexes of names and places, found with one scan of each note.
_LED = WordLedScan([*RULES, *PLACE_RULES], {**GATES, **PLACE_GATES})

#: ", Given" after a surname ("KNIGHT, HEATHER"), the given name capitalised.
_WORD_BEFORE = re.compile(r"\b([A-Za-z]+)\.?[ \t]$")  # searched in a window before a token
_NEXT_CAPITALISED = re.compile(r"[ \t]([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b")
_GIVEN_AFTER_COMMA = re.compile(r",[ \t]*([A-Z][A-Za-z]+)\b(?![ \t]*:)")

#: Distinct words remembered per note style before the memo starts afresh.
_ALONE_MAX = 100_000

__all__ = ["NameRecognizer", "given_names", "is_common_word", "surnames", "warm"]


class NameRecognizer:
    """Finds person names (and, through ``PlaceRecognizer``, places) in narrative."""

    def __init__(self) -> None:
        lex = Lexicon()
        self._lex = lex
        self._given = lex.given
        self._surnames = lex.surnames
        self._common = lex.common
        self._stop = lex.stop
        self._places = lex.states
        self._pure = lex.pure
        self._places_finder = PlaceRecognizer(lex)
        self._gazetteer_words = frozenset(w for n in place_names() for w in n.split())
        # Common words that are no name at all: rejected before any context is consulted.
        self._plain = (self._common - self._given - self._surnames) - self._places
        #: The same without one-letter words, which stay as initials, and surname particles,
        #: which join names in capitals too ("DR. VAN DER STAEL DE JONGE").
        self._plain_words = frozenset(w for w in self._plain if len(w) != 1) - PARTICLES
        # In an all-caps note a word out of context may be a name only if it is one of these.
        self._shouted_candidates = self._given | self._places | (self._surnames - self._common)
        # Per note style (mixed, all-caps, all-lower): word -> ``_rejected_alone(word)``.
        self._alone: tuple[dict[str, bool], ...] = ({}, {}, {})

    def find(self, text: str) -> list[Finding]:
        """Names (Kind.NAME) and places (Kind.LOCATION), possibly overlapping."""
        counts = case_counts(text)
        nocase = no_case_signal(text, counts)
        low_text = folded(text)
        led = _LED.run(low_text)
        ctx = NameContext(text, low_text, led, counts)
        states: list[Finding] = []
        accepted: list[bool] = []
        if nocase:
            # Every loop over all tokens below runs in C (map, compress), not in Python.
            all_tokens = tokens_in(text)
            lows = list(map(str.lower, map(_WORD, all_tokens)))
            # Only words of some place name go to the gazetteer.
            in_gazetteer = list(map(self._gazetteer_words.__contains__, lows))
            place_tokens = list(compress(all_tokens, in_gazetteer))
            place_lows = list(compress(lows, in_gazetteer))
            # An ordinary word is never a name, whatever its context: drop those first
            # (initials stay: "VICTOR E. HALVORSEN").
            keep = list(map(not_, map(self._plain_words.__contains__, lows)))
            tokens = list(compress(all_tokens, keep))
            kept_lows = name_lows = list(compress(lows, keep))
            if ctx.lower_note:
                accepted = self._decide_lower_note(text, tokens, kept_lows, ctx, states)
            else:
                accepted = self._decide_shouted(text, tokens, kept_lows, ctx, states)
        else:
            tokens = mixed_case_candidates(text, ctx)
            words = list(map(_WORD, tokens))
            lows = name_lows = list(map(str.lower, words))
            in_gazetteer = list(map(self._gazetteer_words.__contains__, lows))
            place_tokens = list(compress(tokens, in_gazetteer))
            place_lows = list(compress(lows, in_gazetteer))
            accepted = self._decide_mixed(text, tokens, words, lows, ctx, states)
        # Grow confirmed names over adjacent name-like tokens and initials, both ways.
        if any(accepted):
            self._grow(text, tokens, accepted, nocase, ctx)
        if ctx.thing_after and any(accepted):
            _drop_eponyms(text, tokens, accepted, ctx)
        if any(accepted):
            # A repeated mention grows rightwards only ("TESTPERSON, JANE"), never over the
            # word before it ("Call Testperson's daughter").
            for j in self._repeat(tokens, accepted, name_lows, nocase):
                while (
                    j + 1 < len(tokens)
                    and not accepted[j + 1]
                    and text[tokens[j].end() : tokens[j + 1].start()] in {" ", ", ", ","}
                    and self._adjacent_to_name(text, tokens, accepted, j + 1, nocase, ctx)
                ):
                    accepted[j + 1] = True
                    j += 1
        out = [
            Finding(m.start(), _name_end(m), Kind.NAME, "dictionary")
            for m, ok in zip(tokens, accepted, strict=True)
            if ok
        ]
        out.extend(states)
        if led["pt_initials"]:
            out.extend(self._patient_initials(text, led["pt_initials"]))
        out.extend(self._places_finder.find(text, low_text, place_tokens, nocase, led, place_lows))
        return out

    def _repeat(
        self, tokens: list[re.Match[str]], accepted: list[bool], lows: list[str], nocase: bool
    ) -> list[int]:
        """Accept the other mentions of a name found once ("Patient: Hall, J." ...
        "HOSPITAL COURSE: Hall's ..."): a note keeps talking about the same people.

        Only words that are no frequent English word and no clinical term, written
        the same way (capitalised in mixed-case text); one C-speed pass over the tokens.
        """
        common, stop, wordlike = self._common, self._stop, self._lex.wordlike
        names: set[str] = set()
        for j in compress(count(), accepted):
            base = lows[j].removesuffix("'s")
            word = tokens[j].group()
            if len(base) < 3 or base in stop or base in wordlike:
                continue
            # A name that is also a word ("Hall", "Green") only repeats capitalised; without
            # case to go by, only a word no dictionary lists ("shin" stays).
            if nocase:
                if base not in common and not self._lex.dictionary_word(base):
                    names.update((base, base + "'s"))
            elif base not in common or (word[0].isupper() and self._known(base)):
                names.update((base, base + "'s"))
        if not names:
            return []
        grown: list[int] = []
        for j in compress(count(), map(names.__contains__, lows)):
            word = tokens[j].group()
            if not nocase and (
                not word[0].isupper()
                or (word.isupper() and (len(word) <= 4 or lows[j].removesuffix("'s") in common))
            ):
                continue  # lower case, or "HALL" / "DUE" in capitals in mixed-case text
            if not accepted[j]:
                accepted[j] = True
                grown.append(j)
        return grown

    def _patient_initials(self, text: str, found: list[re.Match[str]]) -> list[Finding]:
        """ "Pt D.R. is 44", "PT MAS IS 85": a patient's initials where the name would be."""
        out: list[Finding] = []
        for m in found:  # matched in the folded text: the case is read here
            group = 1 if m.group(1) else 2
            start, end = m.span(group)
            low = m.group(group)
            if group == 2 and not text[start:end].isupper():
                continue  # "pt now is 5": undotted initials are capitals
            if low in self._common or low in self._stop:
                continue  # "PT ED IS 2 ...": an abbreviation
            out.append(Finding(start, end, Kind.NAME, "dictionary"))
        return out

    def _grow(
        self,
        text: str,
        tokens: list[re.Match[str]],
        accepted: list[bool],
        nocase: bool,
        ctx: NameContext,
    ) -> None:
        """Accept the neighbours of accepted tokens that ``_adjacent_to_name`` takes.

        Rounds until nothing grows ("DAN A. WEXMORE-LYONS": each round adds the
        next neighbour). Each round visits, in text order, the tokens beside an
        accepted one at that moment, as a pass over every token would; only
        those few are visited (a token accepted adds its right neighbour to the
        round, its left one to the next).
        """
        n = len(tokens)
        grown = True
        while grown:
            grown = False
            todo = [
                j
                for i, ok in enumerate(accepted)
                if ok
                for j in (i - 1, i + 1)
                if 0 <= j < n and not accepted[j]
            ]
            heapq.heapify(todo)
            while todo:
                i = heapq.heappop(todo)
                while todo and todo[0] == i:
                    heapq.heappop(todo)  # beside two accepted tokens: listed twice
                if self._adjacent_to_name(text, tokens, accepted, i, nocase, ctx):
                    accepted[i] = grown = True
                    if i + 1 < n and not accepted[i + 1]:
                        heapq.heappush(todo, i + 1)

    def _decide_shouted(
        self,
        text: str,
        tokens: list[re.Match[str]],
        lows: list[str],
        ctx: NameContext,
        states: list[Finding],
    ) -> list[bool]:
        """Which tokens of an all-caps note are names by themselves (before growing).

        Without a capital to go by, only a known name or place, a joined word, a
        rare word that is a surname or has an apostrophe, or a word in a name
        context can be one. That test needs only the word, so one comprehension
        picks the few tokens worth the full decision (``_is_name``, in text order).
        """
        picked = self._picked_by_word(lows)
        context = _at_context(tokens, ctx)
        return self._decide(text, tokens, sorted(picked | context), context, True, ctx, states)

    def _picked_by_word(self, lows: list[str]) -> set[int]:
        """Indices of the tokens of a note without case that their word alone lets through:
        a known name or place, a joined word, a rare word with an apostrophe."""
        picked = set(compress(count(), map(self._shouted_candidates.__contains__, lows)))
        # Joined words are few: test each distinct one, then find its tokens in C.
        common = self._common
        joined = {low for low in set(lows) if "-" in low or ("'" in low and low not in common)}
        if joined:
            picked.update(compress(count(), map(joined.__contains__, lows)))
        return picked

    def _decide_lower_note(
        self,
        text: str,
        tokens: list[re.Match[str]],
        lows: list[str],
        ctx: NameContext,
        states: list[Finding],
    ) -> list[bool]:
        """As ``_decide_shouted`` for an all-lower-case note, where a non-English word or a
        word right after a given name ("consult with patty quillane") may be one too.

        Not those among the frequent words that are no given name or place ("will", "see",
        "care": surnames too, but without context no rule takes them).
        """
        picked = self._picked_by_word(lows)
        given = self._given
        extra = [
            j
            for j in compress(count(1), map(given.__contains__, lows))
            if j < len(tokens) and tokens[j].start() == tokens[j - 1].end() + 1
        ]
        if not text.isascii():
            extra.extend(j for j, m in enumerate(tokens) if not m.group().isascii())
        common, places = self._common, self._places
        picked.update(
            j
            for j in extra
            if not (
                lows[j] in common
                and lows[j] not in given
                and lows[j] not in places
                and "-" not in lows[j]
            )
        )
        context = _at_context(tokens, ctx)
        return self._decide(text, tokens, sorted(picked | context), context, True, ctx, states)

    def _decide_mixed(
        self,
        text: str,
        tokens: list[re.Match[str]],
        words: list[str],
        lows: list[str],
        ctx: NameContext,
        states: list[Finding],
    ) -> list[bool]:
        """Which candidates of a mixed-case note are names by themselves (before growing).

        Away from any name context a token is decided by its word alone: not an
        ordinary word (unless joined and capitalised), not a short abbreviation
        ("BP", "CXR"). Tokens in a context go through every test.
        """
        plain = self._plain
        context = _at_context(tokens, ctx)
        picked = {
            j
            for j, (word, low) in enumerate(zip(words, lows, strict=True))
            if (low not in plain or ("-" in low and not word.islower()))
            and not (len(word) <= 4 and word.isupper())
        } - context
        for j in context:
            m, word, low = tokens[j], words[j], lows[j]
            if low in plain and word.islower():
                continue  # an ordinary word: no context makes it a name
            if (
                len(word) <= 4
                and word.isupper()
                and m.start() not in ctx.title
                and m.start() not in ctx.relation
                and m.end() not in ctx.role
            ):
                continue  # an abbreviation in mixed-case text ("BP", "CXR")
            picked.add(j)
        return self._decide(text, tokens, sorted(picked), context, False, ctx, states)

    def _decide(
        self,
        text: str,
        tokens: list[re.Match[str]],
        picked: list[int],
        context: set[int],
        nocase: bool,
        ctx: NameContext,
        states: list[Finding],
    ) -> list[bool]:
        """``_is_name`` of the ``picked`` tokens (in text order); False for the others.

        Most picked tokens stand in no name context, and most of those are rejected by
        their word alone: ``_rejected_alone`` answers that once per distinct word.
        """
        accepted = [False] * len(tokens)
        family = ctx.family_after
        alone = self._alone[(ctx.lower_note + 1) if nocase else 0]
        for j in picked:
            m = tokens[j]
            if j not in context and m.end() not in family:
                word = m.group()
                rejected = alone.get(word)
                if rejected is None:
                    rejected = self._remember(alone, word, nocase, ctx.lower_note)
                if rejected:
                    continue
            accepted[j] = self._is_name(text, m, nocase, ctx, states)
        return accepted

    def _remember(self, alone: dict[str, bool], word: str, nocase: bool, lower_note: bool) -> bool:
        if len(alone) >= _ALONE_MAX:
            alone.clear()  # a bound on memory; the answers are cheap to recompute
        rejected = alone[word] = self._rejected_alone(word, nocase, lower_note)
        return rejected

    def _rejected_alone(self, word: str, nocase: bool, lower_note: bool) -> bool:
        """Does ``_is_name`` reject ``word`` (and report no state) wherever no context is?

        "No context": the token starts at none of ``ctx.starts``, ends at none of
        ``ctx.ends`` nor ``ctx.family_after``. This follows ``_is_name`` step by step
        with every position test false; where the answer would depend on the text
        around the word (a visit verb after it, a sentence start), it says False:
        ``_is_name`` must decide.
        """
        low = word.lower()
        common = low in self._common
        if common and word.islower() and low not in self._given and low not in self._surnames:
            return True
        if low.endswith("'s"):
            low = low[:-2]
        if len(low) < 2 or low in KIN_SET or low in TITLES:
            return True
        known = self._known(low)
        if low in self._places:
            return not (word[0].isupper() or nocase)  # else reported as a state
        capital = word[0].isupper() and (not nocase or (lower_note and not word.isupper()))
        stop = low in self._stop
        if low in self._given and not stop and low not in NOT_AFTER_TITLE:
            return False  # "bill called": VISIT_AFTER reads the text after it
        if not known and "-" in low:
            head, _, tail = low.partition("-")
            if head in KIN_SET and (
                tail in self._given or self._lex.rare(tail, tail in self._stop)
            ):
                return False  # "DAUGHTER-TAMSIN"
        if (
            capital
            and known
            and not common
            and not stop
            and not word.isupper()
            and (low in self._given or not self._lex.wordy(low))
        ):
            return False  # CONTACT_END reads the text before it
        if stop or common:
            return True
        if not known:
            if capital and not word.isascii() and word[0].isupper() and not word.isupper():
                return False
            if (capital and not nocase) or (lower_note and word.islower() and len(low) > 4):
                return not self._lex.rare(low, False)  # else _after_given_name reads the text
            return True
        if nocase:
            if lower_note and word[0].isupper() and not word.isupper():
                return False  # sentence_start reads the text
            return low not in self._pure
        if not word[0].isupper() or (word.isupper() and len(low) <= 4):
            return True
        return low not in self._given and self._lex.wordy(low)

    def _known(self, low: str) -> bool:
        """A given name or surname, also "O'Brien" (census: OBRIEN) and "Smith-Jones"."""
        if low in self._given or low in self._surnames:
            return True
        if "'" in low or "-" in low:
            # "O'Brien", "Smith-Jones"; not "I'm", "con't".
            flat = low.replace("'", "")
            return (low[:2] in {"o'", "d'"} and flat in self._surnames) or (
                "-" in low
                and all(
                    len(p) > 2 and (p in self._surnames or p in self._given) for p in low.split("-")
                )
            )
        return False

    def _is_name(
        self, text: str, m: re.Match[str], nocase: bool, ctx: NameContext, states: list[Finding]
    ) -> bool:
        """Is the token ``m`` a name by itself? Keep ``_rejected_alone`` in step with it."""
        word = m.group()
        low = word.lower()
        common = low in self._common
        if common and word.islower() and low not in self._given and low not in self._surnames:
            return False  # the bulk of ordinary prose: nothing below could accept it
        if low.endswith("'s"):
            low = low[:-2]
        if len(low) < 2:
            return False
        if low in KIN_SET or low in TITLES:
            return False  # "GUARDIAN: Niece, Patricia"
        start = m.start()
        known = self._known(low)
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
            and low not in NOT_AFTER_TITLE
            and ((known and not common) or self._lex.rare(low, stop))
        ):
            return True
        if start in ctx.title:
            if low in NOT_AFTER_TITLE or (common and not known and not capital):
                return False
            if not known and low.endswith(DEPARTMENT_ENDINGS):
                return False  # "Dr. Neurology aware": the service, not a person
            if (
                start in ctx.shouted_title
                and not nocase
                and low not in self._given
                and self._lex.wordy(low)
            ):
                return False  # "changes in MS. Aspiration precautions"
            if stop and common and nocase and start in ctx.shouted_title:
                return False  # "MS S. CARE": no capital to tell the name Care from care
            if not nocase and word.isupper() and len(low) <= 3 and not known:
                return False  # "monitor MS. OOB as tolerated": an abbreviation
            return known or capital or (not common and not self._lex.ordinary(low))
        if (start in ctx.label or start in ctx.signoff) and self._introduced(
            text, m, word, low, known, common, stop, capital, nocase, ctx
        ):
            return True  # "RE: SCARPETTA, NANNI", "routed to Ines Quast", "-- Kasia RN"
        if (
            start in ctx.speech_before
            and (capital or nocase)
            and (
                self._spoken_of(low.removesuffix("'s"))
                or (not nocase and self._two_word_name(text, m, low, stop))
            )
        ):
            return True  # "SAYS SVEA HAS BEEN", "said Bronwen": the person spoken of
        if (
            m.end() in ctx.comma_role
            and known
            and not self._lex.wordy(low)
            and low not in NOT_AFTER_TITLE
            and not stop
            and (capital or nocase)
        ):
            return True  # "JAMES SMITH, MD", "Graham Price, RN": a comma, then the role
        if m.end() in ctx.role and low not in NOT_AFTER_TITLE and not stop:
            # "JONES, RRT" (frequent only as a name), "Mary Quist, RN"; not "2 LITERS NP",
            # "Notify Md", "All MD's" (a role abbreviation after an ordinary word).
            if known and not common and (nocase or not sentence_start(text, start)):
                return capital or nocase or not self._lex.wordy(low)
            if (low in self._given and low not in self._lex.wordlike) or (
                known
                and not (common and self._lex.dictionary_word(low))
                and not self._lex.wordy(low)
            ):
                return capital or nocase  # "ROSE, RN"; not "SEE MD NOTES", "U/O LOW, MD AWARE"
            return (capital or nocase) and self._lex.rare(low, stop)
        if (
            low in self._given
            and not stop
            and low not in NOT_AFTER_TITLE
            and VISIT_AFTER.match(text, m.end()) is not None
        ):
            return True  # "social: bill called", "Bob visited this evening"
        if (
            m.end() in ctx.speech_after
            and not stop
            and low not in NOT_AFTER_TITLE
            and len(low) > 2
            and (
                (low in self._given and low not in self._lex.wordlike and not self._lex.wordy(low))
                or (
                    not nocase
                    and word[0].isupper()
                    and not word.isupper()
                    and self._lex.rare(low, stop)
                )
            )
        ):
            return capital or nocase  # "Kelly states", "Bianka says", "Eloah remains"
        if m.end() in ctx.action_after and not stop and low not in NOT_AFTER_TITLE:
            # "DZIEKONSKI AWARE", "Ybrenna Quillane cell# ...": a name, not "Pt aware".
            if low in self._given and low not in self._lex.wordlike:
                return capital or nocase
            if known and not common and not self._lex.wordy(low):
                return capital or nocase
            if (capital or nocase) and self._lex.rare(low, stop):
                return True
        if not known and "-" in low:
            head, _, tail = low.partition("-")
            if head in KIN_SET and (
                tail in self._given or self._lex.rare(tail, tail in self._stop)
            ):
                return True  # "DAUGHTER-TAMSIN"
        if m.end() in ctx.relation_after and low not in NOT_AFTER_TITLE and not stop:
            # "Nadia Vestergaard his niece", "Tomas Wirtanen (son)", "Okonkwo (resident)".
            if known and (capital or not common):
                return True
            if capital or nocase:
                return self._lex.rare(low, stop)
        if (
            m.end() in ctx.family_after
            and known
            and not common
            and not stop
            and low not in NOT_AFTER_TITLE
            and (capital or nocase)
        ):
            return True  # "the Duvall family", "KEEP DUVALL FAMILY AWARE"
        if start in ctx.relation:
            if low in self._given or (capital and (known or not common)):
                return not stop and low not in NOT_AFTER_TITLE
            if (capital or nocase) and self._lex.rare(low, stop):
                return True  # "husband Milovan": an unknown word right after a relation
        if start in ctx.role_before and (low in self._given or self._lex.rare(low, stop)):
            return not stop and low not in NOT_AFTER_TITLE  # "NP Carol", "NP Djuric"
        if (
            start in ctx.initial
            and not common
            and (known if nocase else (capital and self._lex.rare(low, stop)))
        ):
            return True  # "W. Dziekonski", "D. Phyl"
        if (
            capital
            and known
            and not common
            and not stop
            and not word.isupper()
            and (low in self._given or not self._lex.wordy(low))
            and CONTACT_END.search(text, max(0, start - 24), start) is not None
        ):
            return True
        if stop or common:
            return False
        if not known:
            # A capitalised word spelled outside English ("Ryhänen") is a proper noun.
            if capital and not word.isascii() and word[0].isupper() and not word.isupper():
                return True
            # "Mary Tuchscherer", "consult with patty quillane": an unknown word right after a
            # given name written the same way (capitalised, or all lower case in such a note).
            if capital and not nocase:
                return self._after_given_name(text, start, low, lower=False)
            if ctx.lower_note and word.islower() and len(low) > 4:
                return self._after_given_name(text, start, low, lower=True)
            return False
        if nocase:
            if ctx.lower_note and word[0].isupper() and not word.isupper():
                # A capital in a lower-case note is a strong signal ("Irene Castellano, RN").
                return not sentence_start(text, start) or low in self._pure
            return low in self._pure  # no capital to go by: only unmistakable names
        if not word[0].isupper() or (word.isupper() and len(low) <= 4):
            return False  # lower case, or an abbreviation in mixed-case text
        if low not in self._given and self._lex.wordy(low):
            return False  # "1 Liter", "LCX STENT": a surname that is also a word needs context
        # At a sentence start the capital says nothing: only a name first ("Anna is from ...").
        return not sentence_start(text, start) or low in self._pure or low in self._given

    def _introduced(
        self,
        text: str,
        m: re.Match[str],
        word: str,
        low: str,
        known: bool,
        common: bool,
        stop: bool,
        capital: bool,
        nocase: bool,
        ctx: NameContext,
    ) -> bool:
        """Is the word after a label, a verb of contact or a sign-off dash a name?

        A given name that is no frequent word, a surname that is no dictionary
        word, or a word no list of English knows; never a short abbreviation in
        mixed-case text ("routed to ICU") nor a clinical term.
        """
        if not (capital or nocase) or low in NOT_AFTER_TITLE or len(low) < 2:
            return False
        if m.start() in ctx.label:
            given = _GIVEN_AFTER_COMMA.match(text, m.end())
            if given is not None and given.group(1).lower() in self._given:
                return True  # "PATIENT: KNIGHT, HEATHER", "RE: Wilson, Laurie": Last, Given
        if stop:
            return False
        if not nocase and word.isupper() and len(low) <= 4 and low not in self._given:
            return False  # "routed to GI": an abbreviation in mixed-case text
        if m.start() in ctx.signoff and m.start() not in ctx.label:
            end = SIGNOFF_END.match(text, m.end())
            if end is None:
                return False  # "-- Continue heparin gtt at 5": a dash in prose, no sign-off
            if m.start() == 0 and ("," not in end.group() or end.group()[-1:] not in "-/\u2014"):
                return False  # a first line that is no "NAME, GIVEN / #123" header
            if word[0].isupper() and (
                low in self._given or (end.group("role") and not common and m.start() > 0)
            ):
                return True  # "-- Mark RN", "-- Merel W., RN": the role vouches for the name
        if low in self._given and low not in self._lex.wordlike:
            return True
        if known and not common and not self._lex.wordy(low):
            return True
        return self._lex.unknown(low)

    @staticmethod
    def _particle_led(text: str, tokens: list[re.Match[str]], accepted: list[bool], i: int) -> bool:
        """In a note without case, does a name, title or particle lead the particle at ``i``
        ("DR. VAN DER BERG"), so that it is no Latin phrase ("DE NOVO LESION")?"""
        start = tokens[i].start()
        if i > 0 and accepted[i - 1] and text[tokens[i - 1].end() : start] == " ":
            return True
        before = _WORD_BEFORE.search(text, max(0, start - 12), start)
        return before is not None and (
            before.group(1).lower() in PARTICLES or before.group(1).lower() in TITLES
        )

    def _particle_joins(self, nxt: str) -> bool:
        """In a note without case, may a particle join the word after it ("STAEL DE JONGE";
        not "BRANDT LA DILATED")? Only a name that is no English word, or no word at all."""
        stop = nxt in self._stop
        if stop:
            return False
        return (self._lex.known_name(nxt) and not self._lex.ordinary(nxt)) or self._lex.rare(
            nxt, stop
        )

    def _two_word_name(self, text: str, m: re.Match[str], low: str, stop: bool) -> bool:
        """ "please see Ottoline Brackwater": two capitalised words no dictionary knows, or
        the second a surname that is no frequent word (mixed-case text only)."""
        word = m.group()
        if word.isupper() or not word[0].isupper() or not self._lex.rare(low, stop):
            return False
        nxt = _NEXT_CAPITALISED.match(text, m.end())
        if nxt is None:
            return False
        second = nxt.group(1).lower()
        if second in self._stop:
            return False
        return (second in self._surnames and second not in self._common) or self._lex.rare(
            second, False
        )

    def _spoken_of(self, base: str) -> bool:
        """After "says": a given name that is no frequent word, or a surname that is no
        English word ("SAYS HE'S", "said Monday", "reports Tylenol" stay out)."""
        lex = self._lex
        if len(base) < 3 or base in self._stop or base in NOT_AFTER_TITLE:
            return False
        if base in self._given and base not in lex.wordlike:
            return True
        return base in self._surnames and base not in self._common and not lex.wordy(base)

    def _after_given_name(self, text: str, start: int, low: str, *, lower: bool) -> bool:
        """Is the word at ``start`` an unknown surname after a given name cased like it?"""
        if start < 3 or text[start - 1] != " " or not self._lex.rare(low, False):
            return False
        prev = TOKEN_ENDING.search(text, max(0, start - 20), start - 1)
        if prev is None:
            return False
        first = prev.group()
        f = first.lower()
        return (
            (first.islower() if lower else first[0].isupper() and not first.isupper())
            and f in self._given
            and f not in self._lex.wordlike
            and f not in self._stop
            and f not in NOT_AFTER_TITLE
        )

    def _adjacent_to_name(
        self,
        text: str,
        tokens: list[re.Match[str]],
        accepted: list[bool],
        i: int,
        nocase: bool,
        ctx: NameContext,
    ) -> bool:
        m = tokens[i]
        word = m.group()
        low = word.lower().removesuffix("'s")
        gap = text[tokens[i - 1].end() : m.start()] if i > 0 else ""
        left = i > 0 and accepted[i - 1] and gap in {" ", ", ", ","}
        if not left and len(word) > 1 and _after_middle_initial(text, tokens, accepted, i, nocase):
            left = True  # "Arnaldo J. Cavanna", "Maeve A Conmy": the surname after the initial
        if i > 0 and accepted[i - 1] and gap.lower() in {" and ", " & ", "& ", ", and "}:
            # A list of names: "Dr. Lindqvist and Okafor", "DRS AMARI AND BRENNICK".
            stop = low in self._stop or low in NOT_AFTER_TITLE
            if nocase:
                return not stop and (
                    (self._lex.known_name(low) and not self._lex.ordinary(low))
                    or self._lex.rare(low, stop)
                )
            return (
                word[0].isupper()
                and not word.isupper()
                and not stop
                and (self._lex.known_name(low) or not self._lex.ordinary(low))
            )
        right = (
            i + 1 < len(tokens)
            and accepted[i + 1]
            and bool(re.fullmatch(r" |\. ?|\.", text[m.end() : tokens[i + 1].start()]))
        )
        if (
            not (left or right)
            and i + 1 < len(tokens)
            and accepted[i + 1]
            and text[m.end() : tokens[i + 1].start()] in {", ", ","}
            and tokens[i + 1].group().lower() in self._given
            and (word[0].isupper() or nocase)
            and low not in self._stop
            and low not in NOT_AFTER_TITLE
            and ((low in self._surnames and not self._lex.wordy(low)) or self._lex.rare(low, False))
        ):
            return True  # "LAST, First": a surname before a comma and an accepted given name
        if not (left or right):
            return False
        if len(word) == 1:
            # An initial: "J. Smith", "Smith, J."; not "R.N.", nor "SMITH W IMPROVED" (with).
            if _DOTTED.match(text, m.end()):
                return False
            after = text[m.end() : m.end() + 1]
            prose_after = (
                nocase
                and i + 1 < len(tokens)
                and text[m.end() : tokens[i + 1].start()] == " "
                and tokens[i + 1].group().lower() in self._common
            )
            if right and after == " " and _before_surname(text, tokens, i, nocase, self._lex):
                return True  # "Maeve A Conmy": an undotted middle initial after a given name
            if (
                left
                and after == "."
                and ctx.lower_note
                and gap == " "
                and tokens[i - 1].group() in self._given
            ):
                return True  # "patricia l. quimbledon": a middle initial in a lower-case note
            return (right and after == ".") or (
                left
                and word.isupper()
                and text[tokens[i - 1].end() : m.start()] in {", ", " "}
                and not prose_after
            )
        if not left and text[m.end() : tokens[i + 1].start()] != " ":
            return False  # "COAGS. MURIELE": a period after a word ends a sentence
        if low in self._stop and left and m.end() in ctx.role and (word[0].isupper() or nocase):
            return True  # "Ellis Foley CRT": the role vouches for an eponym surname
        if low in PARTICLES and (
            (
                right
                and text[m.end() : tokens[i + 1].start()] == " "
                and (not nocase or self._particle_led(text, tokens, accepted, i))
            )
            or (
                left
                and i + 1 < len(tokens)
                and text[m.end() : tokens[i + 1].start()] == " "
                and (
                    tokens[i + 1].group()[0].isupper()
                    if not nocase
                    else self._particle_joins(tokens[i + 1].group().lower())
                )
            )
        ):
            return True  # "Dr. van den Wittenberg", "da Cruz, Rodrigo", "de Lange van Dijk"
        if low in _STREET_WORDS and left:
            return False  # "Seneca Place", "Farnell Street": a street, not a person
        if low in self._stop or low in NOT_AFTER_TITLE or low in ROLES or low in KIN_SET:
            return False
        if low in TITLES or (word.isupper() and len(low) <= 3 and not nocase):
            return False
        if (
            left
            and "," in gap
            and not (self._lex.known_name(low) and (low in self._given or not self._lex.wordy(low)))
            and not self._lex.rare(low.removesuffix("'s"), low in self._stop)
        ):
            return False  # "Dr. Okafor, Esmolol gtt": after a comma a name or no English
        if "'" in low and low.split("'", 1)[1] in _CONTRACTED:
            return False  # "I'm", "we'll"
        if low in self._common:
            capital = word[0].isupper() and (not nocase or (ctx.lower_note and not word.isupper()))
            # After a name any known name ("Dr. Ray Brown"); before one, a given name
            # ("Karen Smith"), not a surname that is also a word ("Both Suzette and ...").
            if capital and (
                low in self._given or (low in self._surnames and (left or not self._lex.wordy(low)))
            ):
                return True
            # "KAREN ANN ZOLNIEREK", "PER WARREN DZIEKONSKI NP": a given name that is also a
            # word, but not one of the most frequent ("WILL", "MAY"), beside a name; and
            # "JAMES SMITH": a frequent surname right after an accepted given name.
            if nocase and low in self._given and low not in self._lex.wordlike:
                return True
            return (
                nocase
                and left
                and gap == " "
                and tokens[i - 1].group().lower() in self._given
                and low in self._surnames
                and not self._lex.wordy(low)
            )
        if nocase:
            return self._lex.known_name(low) or ((left or right) and self._lex.rare(low, False))
        return word[0].isupper()


def _after_middle_initial(
    text: str, tokens: list[re.Match[str]], accepted: list[bool], i: int, nocase: bool
) -> bool:
    """Does token ``i`` follow "Given M." or "Given M" (both accepted): the surname's place?

    The gap after an initial is ". " or " ", which ends a sentence elsewhere; here the
    initial sits between two words with one space before it, as a middle initial does.
    In notes without case only a dotted initial counts ("pt v. tach" has none).
    """
    if i < 2 or not (accepted[i - 1] and accepted[i - 2]):
        return False
    initial = tokens[i - 1].group()
    if len(initial) != 1 or len(tokens[i - 2].group()) < 2:
        return False
    if text[tokens[i - 2].end() : tokens[i - 1].start()] != " ":
        return False
    gap = text[tokens[i - 1].end() : tokens[i].start()]
    if nocase:
        return gap == ". "
    return initial.isupper() and gap in {". ", " "} and tokens[i][0][0].isupper()


def _before_surname(
    text: str, tokens: list[re.Match[str]], i: int, nocase: bool, lex: Lexicon
) -> bool:
    """Is the undotted capital at ``i`` a middle initial: after a capitalised given name
    or word no dictionary knows, and one space, in mixed-case text ("Maeve A Conmy"; not
    "GIVEN A DOSE", "Hepatitis B Virus")?"""
    if nocase or i < 1 or not tokens[i][0].isupper():
        return False
    first = tokens[i - 1].group()
    return (
        text[tokens[i - 1].end() : tokens[i].start()] == " "
        and first[0].isupper()
        and not first.isupper()
        and (first.lower() in lex.given or lex.rare(first.lower(), first.lower() in lex.stop))
    )


def _name_end(m: re.Match[str]) -> int:
    """Where the name in token ``m`` ends: before a possessive "'s" ("Hall's" -> "Hall"),
    so that a later mention maps to the same person as the first."""
    end = m.end()
    return end - 2 if m.group()[-2:] in {"'s", "'S"} else end


def _at_context(tokens: list[re.Match[str]], ctx: NameContext) -> set[int]:
    """Indices of the tokens that start at ``ctx.starts`` or end at ``ctx.ends``.

    Tokens do not overlap, so their starts and ends are sorted: a few binary
    searches replace a set lookup per token.
    """
    found: set[int] = set()
    for positions, where in ((ctx.starts, _START), (ctx.ends, _END)):
        if not positions:
            continue
        edges = list(map(where, tokens))
        for pos in positions:
            j = bisect_left(edges, pos)
            if j < len(edges) and edges[j] == pos:
                found.add(j)
    return found


_START = re.Match.start
_END = re.Match.end


def _drop_eponyms(
    text: str, tokens: list[re.Match[str]], accepted: list[bool], ctx: NameContext
) -> None:
    """Un-accept the words of "Passy Muir valve", "Cardic Transplant team" (not after a title)."""
    for i in range(len(tokens) - 1, -1, -1):
        if not accepted[i] or tokens[i].end() not in ctx.thing_after:
            continue
        j = i
        while True:
            if tokens[j].start() in ctx.title:
                break  # "Dr. Okafor team": a person's team
            accepted[j] = False
            if j == 0 or not accepted[j - 1]:
                break
            if text[tokens[j - 1].end() : tokens[j].start()] not in {" ", "-"}:
                break
            j -= 1
