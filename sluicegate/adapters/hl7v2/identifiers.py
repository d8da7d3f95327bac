"""Known identifiers from structured fields (PID, NK1, PV1, ORC, OBR), for privacy.

Values are collected in the forms they are likely to appear in free text
(``Given Family``, ``1947-10-06`` ...). They travel only inside sealed work
items and the sealed context table; they are never logged.

The privacy profile's HL7 field rules (``core.privacy.rules.harvest_hl7``)
are unioned in, so a channel's profile decides what counts as an identifier;
this walk adds the forms free text uses (``Given Family``, ISO dates).
"""

from __future__ import annotations

from collections.abc import Iterable

from sluicegate.adapters.hl7v2.er7 import Encoding, first_subcomponent, repetitions, unescape
from sluicegate.adapters.hl7v2.parse import Message
from sluicegate.core.privacy.rules import harvest_hl7

# The kinds core.privacy.rules.harvest_hl7 uses for the same fields.
KEYS = ("name", "mrn", "birth_date", "phone", "address", "accession", "provider", "ssn", "account")


def _comps(rep: str, enc: Encoding) -> list[str]:
    return [unescape(first_subcomponent(c, enc), enc).strip() for c in rep.split(enc.component)]


def _at(parts: list[str], n: int) -> str:
    return parts[n - 1] if n - 1 < len(parts) else ""


def person_names(value: str, enc: Encoding, offset: int = 0) -> list[str]:
    """XPN (offset 0) or the name part of XCN (offset 1): parts and common orderings."""
    out: list[str] = []
    for rep in repetitions(value, enc):
        parts = _comps(rep, enc)
        family, given, middle = (_at(parts, offset + k) for k in (1, 2, 3))
        out += [p for p in (family, given, middle) if len(p) > 1]
        if family and given:
            out += [f"{given} {family}", f"{family}, {given}", f"{family}^{given}"]
            if middle:
                out.append(f"{given} {middle} {family}")
    return out


def _ids(value: str, enc: Encoding) -> list[str]:
    return [i for rep in repetitions(value, enc) if (i := _at(_comps(rep, enc), 1))]


def _dates(value: str) -> list[str]:
    digits = value[:8]
    if len(digits) == 8 and digits.isdigit():
        y, m, d = digits[:4], digits[4:6], digits[6:8]
        return [digits, f"{y}-{m}-{d}", f"{m}/{d}/{y}"]
    return [value] if value else []


def _addresses(value: str, enc: Encoding) -> list[str]:
    out: list[str] = []
    for rep in repetitions(value, enc):
        parts = [p for p in _comps(rep, enc)[:5] if p]
        out += parts
        if len(parts) > 1:
            out.append(", ".join(parts))
    return out


def _phones(value: str, enc: Encoding) -> list[str]:
    out: list[str] = []
    for rep in repetitions(value, enc):
        parts = _comps(rep, enc)
        if parts[0]:
            out.append(parts[0])
        local = "".join(p for p in (_at(parts, 6), _at(parts, 7)) if p)
        if local:
            out.append(local)
        if _at(parts, 4):
            out.append(_at(parts, 4))  # email
    return out


def _providers(value: str, enc: Encoding) -> list[str]:
    out = person_names(value, enc, offset=1)
    out += _ids(value, enc)
    return out


def _add(found: dict[str, list[str]], kind: str, values: Iterable[str]) -> None:
    bucket = found.setdefault(kind, [])
    for v in values:
        if v and v not in bucket:
            bucket.append(v)


def harvest(message: Message) -> dict[str, list[str]]:
    """Every identifier the structured fields of ``message`` reveal, by kind."""
    enc = message.header.encoding
    found: dict[str, list[str]] = {k: [] for k in KEYS}
    for pid in message.all("PID"):
        _add(found, "mrn", _ids(pid.field(2), enc) + _ids(pid.field(3), enc))
        _add(found, "mrn", _ids(pid.field(4), enc))
        _add(found, "account", _ids(pid.field(18), enc))
        _add(found, "name", person_names(pid.field(5), enc) + person_names(pid.field(6), enc))
        _add(found, "name", person_names(pid.field(9), enc))
        _add(found, "birth_date", _dates(pid.field(7)))
        _add(found, "address", _addresses(pid.field(11), enc))
        _add(found, "phone", _phones(pid.field(13), enc) + _phones(pid.field(14), enc))
        _add(found, "ssn", [pid.field(19)] if pid.field(19) else [])
        _add(found, "mrn", _ids(pid.field(20), enc))
    for mrg in message.all("MRG"):
        _add(found, "mrn", _ids(mrg.field(1), enc) + _ids(mrg.field(3), enc))
        _add(found, "name", person_names(mrg.field(7), enc))
    for nk1 in message.all("NK1"):
        _add(found, "name", person_names(nk1.field(2), enc))
        _add(found, "address", _addresses(nk1.field(4), enc))
        _add(found, "phone", _phones(nk1.field(5), enc) + _phones(nk1.field(6), enc))
    for pv1 in message.all("PV1"):
        for n in (7, 8, 9, 17, 52):
            _add(found, "provider", _providers(pv1.field(n), enc))
        _add(found, "account", _ids(pv1.field(19), enc))
    for orc in message.all("ORC"):
        _add(found, "accession", _ids(orc.field(2), enc) + _ids(orc.field(3), enc))
        for n in (10, 11, 12):
            _add(found, "provider", _providers(orc.field(n), enc))
    for obr in message.all("OBR"):
        _add(found, "accession", _ids(obr.field(2), enc) + _ids(obr.field(3), enc))
        _add(found, "accession", _ids(obr.field(18), enc) + _ids(obr.field(19), enc))
        for n in (16, 28):
            _add(found, "provider", _providers(obr.field(n), enc))
        for n in (32, 33, 34, 35):  # NDL: name in subcomponents of component 1
            rep = obr.field(n)
            parts = rep.split(enc.component)[0].split(enc.subcomponent)
            if len(parts) > 2 and parts[1] and parts[2]:
                _add(found, "provider", [parts[1], parts[2], f"{parts[2]} {parts[1]}"])
    for txa in message.all("TXA"):
        for n in (5, 9, 10, 22):
            _add(found, "provider", _providers(txa.field(n), enc))
    # The privacy profile's HL7 field rules are the declared source of truth;
    # this walk adds the free-text variants (Given Family, reformatted dates).
    for kind, values in harvest_hl7(message.text).items():
        _add(found, kind, values)
    return {k: v for k, v in found.items() if v}
