"""What the FHIR and HL7 v2 rule engines share: the identifier bag, date shifting,
and the known-identifier sweep of free-text fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from sluicegate.core.privacy import surrogates as sg
from sluicegate.core.privacy.surrogates import label_for
from sluicegate.core.privacy.vault import Vault

TextFn = Callable[[str], str]
Json = dict[str, Any]
DATE_KINDS = frozenset({"birth_date", "date"})


class IdentifierBag:
    """Ordered, de-duplicated identifier values by kind."""

    def __init__(self) -> None:
        self.data: dict[str, list[str]] = {}

    def add(self, kind: str, value: Any) -> None:
        if not isinstance(value, str):
            return
        value = " ".join(value.split())
        alnum = sum(c.isalnum() for c in value)
        if alnum == 0 or (alnum < 2 and label_for(kind) in ("PATIENT", "NAME")):
            return  # a bare initial would match everywhere
        bucket = self.data.setdefault(kind, [])
        if value not in bucket:
            bucket.append(value)

    def add_name(self, kind: str, family: str, given: Sequence[str]) -> None:
        given = [g for g in given if g]
        for part in [family, *given]:
            self.add(kind, part)
        if family and given:
            self.add(kind, " ".join([*given, family]))
            self.add(kind, f"{given[0]} {family}")
            self.add(kind, f"{family}, {' '.join(given)}")
            self.add(kind, f"{family}, {given[0]}")

    def add_date(self, kind: str, value: Any) -> None:
        self.add(kind, value)
        if isinstance(value, str):
            m = re.match(r"(\d{4})-?(\d{2})-?(\d{2})", value.strip())
            if m:
                self.add(kind, f"{m[1]}-{m[2]}-{m[3]}")


def shift_date_text(value: str, vault: Vault) -> str:
    """A structured date (FHIR date/dateTime, HL7 TS) shifted (realistic) or tagged (tags).

    The time of day and zone are kept; a bare year is kept (Safe Harbor allows it).
    """
    v = value.strip()
    if re.fullmatch(r"\d{4}", v):
        return v
    m = re.match(r"(\d{4})(-?)(\d{2})(?:\2(\d{2}))?", v)
    if not m:
        return vault.surrogate("DATE", v)
    y, sep, mo, d = int(m[1]), m[2], int(m[3]), int(m[4] or 15)
    try:
        day = date(y, mo, d)
    except ValueError:
        return vault.surrogate("DATE", v)
    if vault.mode == "tags":
        return vault.surrogate("DATE", day.isoformat() if m[4] else v)
    new = sg.shift(day, vault.date_offset_days)
    head = f"{new.year:04d}{sep}{new.month:02d}" + (f"{sep}{new.day:02d}" if m[4] else "")
    return head + v[m.end() :]


def known_only(identifiers: dict[str, list[str]], vault: Vault) -> TextFn:
    from sluicegate.core.privacy.deidentify import KnownSweep, replace_spans

    sweep = KnownSweep(identifiers)
    vault_names(vault, identifiers)

    def run(value: str) -> str:
        return replace_spans(value, sweep.find(value), vault)[0]

    return run


def vault_names(vault: Vault, identifiers: Mapping[str, Sequence[str]]) -> None:
    """Register the people among ``identifiers`` so all their name variants share a surrogate."""
    for key, values in identifiers.items():
        label = label_for(key)
        if label in ("PATIENT", "NAME"):
            vault.add_person(values, label)
    vault.avoid(v for values in identifiers.values() for v in values)
