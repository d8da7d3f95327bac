"""The pseudonym vault: one job's surrogate <-> original mapping.

Surrogates are consistent within a job: the same original (ignoring case,
spacing and punctuation; any name variant of the same person) always gets the
same surrogate, so the model sees one ``[PATIENT_1]`` however the report spells
the name. The vault never leaves on-prem; the pipeline seals :meth:`Vault.to_bytes`
with AES-256-GCM before storing it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sluicegate.core.privacy import surrogates as sg
from sluicegate.core.privacy.known import TITLES

FORMAT_VERSION = 1
NAME_LABELS = frozenset({"PATIENT", "NAME"})
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_DIGIT_GROUP = re.compile(r"\d+")
_NUMBERISH = frozenset({"ID", "SSN", "ACCOUNT", "PHONE"})
_ZIP = re.compile(r"\d{5}(?:-\d{4})?|\d{3,4}")


def name_tokens(text: str) -> list[str]:
    """Casefolded words of a name, without titles, suffixes and bare numbers."""
    return [
        t
        for t in (m.group().casefold() for m in _TOKEN.finditer(text))
        if t.strip(".") not in TITLES and not t.isdigit()
    ]


@dataclass
class _Person:
    label: str
    index: int
    display: str
    tokens: set[str] = field(default_factory=set)
    family: set[str] = field(default_factory=set)
    fakes: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"[{self.label}_{self.index}]"


def _learn(person: _Person, name: str) -> None:
    """Fold one spelling of a person's name into what the vault knows of them."""
    tokens = name_tokens(name)
    person.tokens.update(tokens)
    if "," in name:
        person.family.update(name_tokens(name.split(",", 1)[0]))
    elif len(tokens) > 1:
        person.family.add(tokens[-1])
    shown = len(name_tokens(person.display))
    if "," not in name and (
        len(tokens) > shown or ("," in person.display and len(tokens) == shown)
    ):
        person.display = name


def _reads_as(day: date, dates: set[date]) -> bool:
    """Whether ``day`` is, or written day-first/month-first could be read as, one of ``dates``."""
    if day in dates:
        return True
    try:
        return day.day <= 12 and date(day.year, day.day, day.month) in dates
    except ValueError:
        return False


class Vault:
    """Surrogates of one job. ``mode`` is ``tags`` or ``realistic``."""

    def __init__(self, *, mode: str = "tags", seed: int = 0, date_offset_days: int = 0) -> None:
        if mode not in ("tags", "realistic"):
            raise ValueError(f"unknown surrogate mode {mode!r}")
        self.mode = mode
        self.seed = seed
        self.date_offset_days = date_offset_days
        self._counters: dict[str, int] = {}
        self._persons: list[_Person] = []
        self._keys: dict[str, str] = {}
        self._originals: dict[str, str] = {}
        self._avoid: set[str] = set()
        self._avoid_digits: set[str] = set()  # long numbers, also avoided inside others
        self._faker: sg.Faker | None = None

    @classmethod
    def new(cls, mode: str, shift_days: tuple[int, int], known_dates: Iterable[date] = ()) -> Vault:
        """A fresh vault with a random seed and a random date offset in ``shift_days``.

        The offset is redrawn (a few times) while it would move one known date
        onto another, so a shifted date can never read as a real one.
        """
        low, high = sorted(shift_days)
        dates = set(known_dates)
        offset = 0
        for _ in range(64):
            offset = low + secrets.randbelow(high - low + 1)
            if offset == 0 and (low, high) != (0, 0):
                continue  # a zero shift would leave real dates in place
            if not any(_reads_as(sg.shift(d, offset), dates) for d in dates):
                break
        return cls(mode=mode, seed=secrets.randbits(63), date_offset_days=offset)

    # --- building -----------------------------------------------------------------------

    def avoid(self, values: Iterable[str]) -> None:
        """Realistic surrogates must never coincide with these (the item's identifiers)."""
        for value in values:
            if not isinstance(value, str):
                continue
            self._avoid.add(value.casefold().strip())
            words = (m.group().casefold() for m in _TOKEN.finditer(value))
            self._avoid.update(w for w in words if not any(c.isdigit() for c in w))
            # A long real number must not appear inside a fake either (a phone's
            # 555-01xx tail, an id): the guard flags any digit run containing it.
            digits = re.sub(r"\D", "", value)
            if len(digits) >= 7:
                self._avoid_digits.add(digits)

    def add_person(self, names: Iterable[str], label: str = "PATIENT") -> None:
        """Register known name variants; variants of one person share one surrogate."""
        unique = dict.fromkeys(n.strip() for n in names if isinstance(n, str) and n.strip())
        ordered = sorted(unique, key=lambda n: -len(name_tokens(n)))
        for name in ordered:
            tokens = set(name_tokens(name))
            if not tokens:
                continue
            person = next(
                (p for p in self._persons if tokens <= p.tokens or len(tokens & p.tokens) >= 2),
                None,
            )
            if person is None:
                person = self._new_person(label, name)
            _learn(person, name)

    def _new_person(self, label: str, display: str) -> _Person:
        person = _Person(label, self._next(label), display)
        self._persons.append(person)
        return person

    def _next(self, label: str) -> int:
        self._counters[label] = self._counters.get(label, 0) + 1
        return self._counters[label]

    # --- surrogates ---------------------------------------------------------------------

    def surrogate(self, label: str, original: str) -> str:
        """The surrogate for ``original`` of category ``label`` (see ``surrogates.LABELS``)."""
        if label == "AGE":
            return sg.generalize_age(original)
        if label in NAME_LABELS:
            return self._name(label, original)
        if self.mode == "realistic":
            fake = self._realistic(label, original)
            if fake is not None:
                return fake
        key = f"{label}\x1f{self._norm(label, original)}"
        tag = self._keys.get(key)
        if tag is None:
            tag = f"[{label}_{self._next(label)}]"
            self._keys[key] = tag
            self._originals[tag] = original
        return tag

    def _norm(self, label: str, value: str) -> str:
        if label == "DATE":
            expr = sg.parse_date(value)
            if expr is not None:
                return expr.value.isoformat()
        if label in _NUMBERISH:
            alnum = re.sub(r"[\W_]", "", value).upper()
            return alnum or value
        return " ".join(value.casefold().split())

    def person_for(self, text: str, label: str = "NAME") -> _Person:
        """The known person ``text`` names, or a new one under ``label``."""
        tokens = set(name_tokens(text))
        if tokens:
            for want in ("PATIENT", "NAME"):
                for p in self._persons:
                    if p.label == want and tokens <= p.tokens:
                        return p
            for p in self._persons:
                if len(tokens & p.tokens) >= 2:
                    return p
        else:  # nothing name-like (digits, an initial): the same spelling, the same person
            key = " ".join(text.casefold().split())
            for p in self._persons:
                if not p.tokens and " ".join(p.display.casefold().split()) == key:
                    return p
        person = self._new_person(label, text)
        _learn(person, text)
        return person

    def _name(self, label: str, original: str) -> str:
        person = self.person_for(original, label)
        if self.mode == "tags":
            self._originals.setdefault(person.tag, person.display)
            return person.tag
        fake = _TOKEN.sub(lambda m: self._fake_token(person, m.group()), original)
        if fake == original:  # nothing name-like in it (e.g. a bare number)
            return person.tag
        self._record(fake, original)
        return fake

    def _fake_token(self, person: _Person, token: str) -> str:
        key = token.casefold()
        if key.strip(".") in TITLES or key.isdigit():
            return token
        fake = person.fakes.get(key)
        if fake is None:
            faker = self._fake()
            fake = faker.last_name() if key in person.family else faker.first_name()
            if len(key) == 1:
                fake = fake[0]
            person.fakes[key] = fake
        if token.isupper() and len(token) > 1:
            return fake.upper()
        return fake.lower() if token.islower() else fake

    def _realistic(self, label: str, original: str) -> str | None:
        # a shifted date keeps its own spelling, so it is keyed by spelling, not by day
        norm = " ".join(original.split()) if label == "DATE" else self._norm(label, original)
        key = f"{label}\x1f{norm}"
        known = self._keys.get(key)
        if known is not None:
            return known
        fake: str | None
        if label == "DATE":
            expr = sg.parse_date(original)
            if expr is None:
                return None
            moved = sg.shift(expr.value, self.date_offset_days)
            fake = expr.render(moved)
            if self._collides(fake):  # "April 3" when the patient is called April
                fake = moved.isoformat()
        elif label == "LOCATION":
            if _ZIP.fullmatch(original.strip()):
                return sg.generalize_zip(original) or None
            faker = self._fake()
            fake = faker.street() if original.strip()[:1].isdigit() else faker.city()
        else:
            fake = self._fake_value(label, original)
        if fake is None or fake in self._originals:
            return None
        self._keys[key] = fake
        self._record(fake, original)
        return fake

    def _fake_value(self, label: str, original: str) -> str | None:
        faker = self._fake()
        makers = {
            "SSN": faker.ssn,
            "EMAIL": faker.email,
            "URL": faker.url,
            "IP": faker.ip,
            "PHONE": lambda: faker.phone(original),
            "ID": lambda: faker.identifier(original),
            "ACCOUNT": lambda: faker.identifier(original),
        }
        make = makers.get(label)
        return make() if make else None

    def _fake(self) -> sg.Faker:
        if self._faker is None:
            self._faker = sg.Faker(self.seed + len(self._originals), self._collides)
        return self._faker

    def _collides(self, value: str) -> bool:
        if value.casefold() in self._avoid or value in self._originals:
            return True
        if any(m.group().casefold() in self._avoid for m in _TOKEN.finditer(value)):
            return True
        # a real short id standing as a digit group of the fake ("997-62-2234" for id 2234)
        if any(group in self._avoid for group in _DIGIT_GROUP.findall(value)):
            return True
        digits = re.sub(r"\D", "", value)
        return any(known in digits for known in self._avoid_digits)

    def _record(self, surrogate: str, original: str) -> None:
        self._originals.setdefault(surrogate, original)

    # --- reading ------------------------------------------------------------------------

    def original(self, surrogate: str) -> str | None:
        """The original behind an exact surrogate, or None."""
        return self._originals.get(surrogate)

    def mapping(self) -> dict[str, str]:
        """Surrogate -> original (identifier values: keep on-prem)."""
        return dict(self._originals)

    def tag(self, label: str, index: int) -> str | None:
        """The original behind ``[LABEL_index]``, or None when there is none."""
        return self._originals.get(f"[{label}_{index}]")

    def __len__(self) -> int:
        return len(self._originals)

    # --- storage ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical JSON of the whole mapping (to be sealed before it is stored)."""
        data: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "mode": self.mode,
            "seed": self.seed,
            "date_offset_days": self.date_offset_days,
            "counters": self._counters,
            "persons": [
                {
                    "label": p.label,
                    "index": p.index,
                    "display": p.display,
                    "tokens": sorted(p.tokens),
                    "family": sorted(p.family),
                    "fakes": p.fakes,
                }
                for p in self._persons
            ],
            "keys": self._keys,
            "originals": self._originals,
        }
        return json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Vault:
        """Inverse of :meth:`to_bytes`; ``ValueError`` (without values) if it is not a vault."""
        try:
            raw = json.loads(data.decode("utf-8"))
            if raw.get("v") != FORMAT_VERSION:
                raise ValueError("unsupported vault format version")
            vault = cls(
                mode=str(raw["mode"]),
                seed=int(raw["seed"]),
                date_offset_days=int(raw["date_offset_days"]),
            )
            vault._counters = {str(k): int(v) for k, v in raw["counters"].items()}
            for p in raw["persons"]:
                vault._persons.append(
                    _Person(
                        str(p["label"]),
                        int(p["index"]),
                        str(p["display"]),
                        set(p["tokens"]),
                        set(p["family"]),
                        {str(k): str(v) for k, v in p["fakes"].items()},
                    )
                )
            vault._keys = {str(k): str(v) for k, v in raw["keys"].items()}
            vault._originals = {str(k): str(v) for k, v in raw["originals"].items()}
        except (
            UnicodeDecodeError,
            json.JSONDecodeError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            raise ValueError(f"not a pseudonym vault ({type(exc).__name__})") from None
        return vault
