"""Word lists that decide whether a word could be a name or is ordinary English.

Read at run time from PyPI packages (nothing copied into the repo; see
data/ATTRIBUTION.md): U.S. Census 1990 given names and surnames (public
domain, via the ``names`` package), English word frequencies (``wordfreq``)
and Webster's Second (``english-words``), plus hand-written clinical
stopwords and U.S. state names. The name and place recognizers share one
``Lexicon`` so each list is loaded once per process.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from sluicegate.core.privacy.gazetteer import place_names, place_prefixes

_DATA = resources.files("sluicegate.core.privacy") / "data"
_COMMON_TOP_N = 25000
_COMMON_ZIPF = 4.0  # about once per 100,000 words
_PURE_SURNAME_RANK = 5000
_PURE_SURNAME_ZIPF = 3.5


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
def dictionary_words() -> frozenset[str]:
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
    dictionary = dictionary_words()
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
def us_states() -> frozenset[str]:
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
    frequent_words()
    typo_targets()
    clinical_stopwords()
    us_states()


#: Words that follow a title or a relation but are no name ("Dr. aware", "wife called").
NOT_AFTER_TITLE = frozenset(
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


_LETTERS = "abcdefghijklmnopqrstuvwxyz"
#: A given name more frequent than this in English text is first of all a word ("will", "hope").
_WORDLIKE_NAME_ZIPF = 5.0
#: Typos are only looked for in words this long, against frequent words of _TYPO_TARGET letters
#: or more: shorter words have too many one-letter neighbours ("Dunn" / "dune").
_TYPO_MIN = 6
_TYPO_TARGET = 5
_SWAP_MIN = 4
#: Generic drug stems ("esmolol", "hydralazine", "vancomycin"): no proper noun ends so.
_DRUG_ENDINGS = (
    "olol",
    "pril",
    "sartan",
    "statin",
    "azole",
    "mycin",
    "cillin",
    "floxacin",
    "azine",
    "dipine",
    "tidine",
    "prazole",
    "parin",
    "semide",
    "afil",
    "oxacin",
    "vir",
    "mab",
    "nib",
    "triptan",
    "zepam",
    "zolam",
)
#: Departments and specialties ("Cardiology", "Psychiatry"): never a person after "Dr." or "per".
DEPARTMENT_ENDINGS = ("ology", "ologist", "iatry", "iatrics", "surgery", "medicine", "ics")
#: Surnames this common are names even when a dictionary lists them as words ("Baker").
_WORDY_RANK = 15000
_TYPO_TOP_N = 50000


@lru_cache(maxsize=1)
def wordlike_names() -> frozenset[str]:
    """Given names that are among the most frequent English words ("will", "may", "hope")."""
    import wordfreq

    return frozenset(
        w for w in given_names() if wordfreq.zipf_frequency(w, "en") >= _WORDLIKE_NAME_ZIPF
    )


@lru_cache(maxsize=1)
def frequent_words() -> frozenset[str]:
    """The 50,000 commonest words of English text (names and places among them)."""
    import wordfreq

    return frozenset(w for w in wordfreq.top_n_list("en", _TYPO_TOP_N) if w.isalpha())


@lru_cache(maxsize=1)
def typo_targets() -> frozenset[str]:
    """Frequent words a hurried typist misspells: the 50,000 commonest, no names among them."""

    pure = pure_names()
    return frozenset(w for w in frequent_words() if len(w) >= _TYPO_TARGET and w not in pure)


class Lexicon:
    """The loaded lists, plus the questions both recognizers ask of a lower-cased word."""

    def __init__(self) -> None:
        self.given = given_names()
        self.surnames = surnames()
        self.common = common_words()
        self.stop = clinical_stopwords()
        self.states = us_states()
        self.pure = pure_names()
        self.dictionary = dictionary_words()
        self.wordlike = wordlike_names()
        self._surname_rank = _ranked_surnames()
        self._typo_targets = typo_targets()
        #: The 50,000 commonest English words: a place no gazetteer lists is none of these.
        self.frequent = frequent_words()
        self._short_targets = frozenset(w for w in self.common if len(w) >= _SWAP_MIN)
        self._typos: dict[str, bool] = {}

    def known_name(self, low: str) -> bool:
        return low in self.given or low in self.surnames

    def rare(self, low: str, stop: bool) -> bool:
        """Not a word of ordinary English or clinical shorthand: likely a proper noun.

        A hyphenated word is rare only if every part is ("Wexmore-Lyons", not
        "phoned-family"), and a misspelling of a frequent word ("tongiht",
        "hospiatal") is not rare at all: notes are typed fast.
        """
        if "-" in low:  # "Vexley-Painter": each part rare or a name that is no frequent word
            return all(
                p
                and (
                    self.rare(p, p in self.stop)
                    or (self.known_name(p) and p not in self.common and p not in self.stop)
                )
                for p in low.split("-")
            )
        return (
            len(low) > 3
            and "'" not in low
            and not stop
            and low not in NOT_AFTER_TITLE
            and not self.ordinary(low)
            and not low.endswith(_DRUG_ENDINGS)
            and not self.typo(low)
        )

    def unknown(self, low: str) -> bool:
        """No word any list here knows: not frequent, not in the dictionary, no drug stem.

        Unlike ``rare`` this does not look for typos: after a label ("Caller:") a word
        one letter from an English word ("Cherith") is still read as a name.
        """
        return (
            len(low) > 2
            and "'" not in low
            and low not in self.stop
            and low not in NOT_AFTER_TITLE
            and low not in self.frequent
            and not self.ordinary(low)
            and not low.endswith(_DRUG_ENDINGS)
            and not low.endswith(DEPARTMENT_ENDINGS)
            and (
                "-" not in low
                or all(self.unknown(p) or self.known_name(p) for p in low.split("-") if p)
            )
        )

    def ordinary(self, low: str) -> bool:
        """A frequent or dictionary word, or a regular inflection of one ("awaiting")."""
        return low in self.common or self.dictionary_word(low)

    def wordy(self, low: str) -> bool:
        """A word first, a name second: in the dictionary and no given or frequent surname.

        Webster's Second lists many surnames as obscure words ("schneider",
        "johannes"); a surname among the commonest 15,000 is read as a name,
        a rare one that is also a word ("Stent", "Liter", "Both") as a word.
        """
        if low in self.given or self._surname_rank.get(low, _WORDY_RANK) < _WORDY_RANK:
            return False
        return self.dictionary_word(low)

    def dictionary_word(self, low: str) -> bool:
        """In Webster's Second, or a regular inflection of a word there.

        Unlike ``ordinary`` this ignores frequency, so a name that is frequent
        only because it is a name ("jones") is not a dictionary word.
        """
        d = self.dictionary
        if low in d:
            return True
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

    def typo(self, low: str) -> bool:
        """One keystroke away from a frequent word (dropped, doubled, swapped or wrong letter).

        Census names are never typos: "Karen" is one letter from "taken".
        """
        if len(low) < _SWAP_MIN or low in self.given or low in self.surnames:
            return False
        if not low.isascii():
            return False  # nobody types "Germán" for "german" by accident
        cached = self._typos.get(low)
        if cached is None:
            if len(low) < _TYPO_MIN:  # short words: only two letters swapped ("tema")
                cached = _swapped(low, self._short_targets)
            else:
                cached = _one_edit_from(low, self._typo_targets)
            self._typos[low] = cached
            if len(self._typos) > 50_000:
                self._typos.clear()
        return cached


def _swapped(word: str, targets: frozenset[str]) -> bool:
    """Is ``word`` a frequent word with two neighbouring letters swapped?"""
    return any(
        word[:i] + word[i + 1] + word[i] + word[i + 2 :] in targets for i in range(len(word) - 1)
    )


def _one_edit_from(word: str, targets: frozenset[str]) -> bool:
    """Is some word of ``targets`` one deletion, insertion, transposition or substitution away?"""
    n = len(word)
    for i in range(n):
        head, tail = word[:i], word[i + 1 :]
        if head + tail in targets:
            return True
        if i + 1 < n and head + word[i + 1] + word[i] + word[i + 2 :] in targets:
            return True
        for c in _LETTERS:
            if head + c + tail in targets or head + c + word[i:] in targets:
                return True
    return any(word + c in targets for c in _LETTERS)
