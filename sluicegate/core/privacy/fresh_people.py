"""People for the fresh-data corpus: names drawn from Faker in many locales.

Why Faker: its name lists are independent of the U.S. Census lists the
detector's dictionary uses, and its locales bring spellings (``Zmyślony``,
``van Nus``, ``O'Rourke``, ``Brito da Rocha``) that a U.S.-only list never has.
Every draw reseeds the locale's Faker from the note's own ``random.Random``, so
a note stays a pure function of its seed.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from functools import cache

from faker import Faker

#: Faker locales and their weights: a U.S. hospital's mix, with many origins.
LOCALES: dict[str, int] = {
    "en_US": 30,
    "en_GB": 8,
    "en_IE": 6,
    "es_MX": 8,
    "en_IN": 8,
    "de_DE": 7,
    "fr_FR": 7,
    "it_IT": 7,
    "pl_PL": 6,
    "pt_BR": 7,
    "nl_NL": 6,
}
RELATIONS = {  # relation: the relative is female (None: either)
    "wife": True,
    "husband": False,
    "son": False,
    "daughter": True,
    "sister": True,
    "brother": False,
    "niece": True,
    "nephew": False,
    "granddaughter": True,
    "mother": True,
    "father": False,
    "partner": None,
    "friend": None,
    "neighbor": None,
    "HCP": None,
    "daughter-in-law": True,
}


@cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


def fake(r: random.Random, locale: str) -> Faker:
    """The locale's Faker, reseeded from ``r`` so the note stays reproducible."""
    faker = _faker(locale)
    faker.seed_instance(r.getrandbits(48))
    return faker


def pick_locale(r: random.Random) -> str:
    return r.choices(list(LOCALES), weights=list(LOCALES.values()))[0]


def ascii_fold(text: str) -> str:
    """``Zmyślony`` -> ``zmyslony``: what an email address's local part looks like."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


@dataclass(frozen=True)
class Person:
    first: str
    middle: str
    last: str
    female: bool
    locale: str

    @property
    def mi(self) -> str:
        return self.middle[0]

    def initial(self) -> str:
        """The surname's initial, skipping particles: ``van Nus`` -> ``N``."""
        caps = [w for w in self.last.split() if w[0].isupper()]
        return (caps[0] if caps else self.last)[0]


def person(r: random.Random, female: bool | None = None, last: str | None = None) -> Person:
    """A person from a random locale; some surnames hyphenated or in two parts."""
    locale = pick_locale(r)
    faker = fake(r, locale)
    is_female = r.random() < 0.5 if female is None else female
    first = faker.first_name_female() if is_female else faker.first_name_male()
    if last is None:
        last = faker.last_name()
        roll = r.random()
        if roll < 0.08:
            last = f"{last}-{faker.last_name()}"
        elif roll < 0.13 or (locale in ("es_MX", "pt_BR") and roll < 0.45):
            last = f"{last} {faker.last_name()}"
    return Person(first, faker.first_name(), last, is_female, locale)
