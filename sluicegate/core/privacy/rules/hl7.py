"""HL7 v2 by rule: harvest identifier values from field positions, apply the methods."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from sluicegate.core.privacy import surrogates as sg
from sluicegate.core.privacy.rules.common import (
    IdentifierBag,
    TextFn,
    known_only,
    shift_date_text,
)
from sluicegate.core.privacy.rules.profile import Profile, Rule, default_profile
from sluicegate.core.privacy.surrogates import label_for
from sluicegate.core.privacy.vault import Vault


@dataclass(frozen=True)
class _Delims:
    field: str = "|"
    comp: str = "^"
    rep: str = "~"
    esc: str = "\\"
    sub: str = "&"

    def unescape(self, s: str) -> str:
        if self.esc not in s:
            return s
        e = self.esc
        for code, char in (("F", self.field), ("S", self.comp), ("T", self.sub), ("R", self.rep)):
            s = s.replace(f"{e}{code}{e}", char)
        return s.replace(f"{e}E{e}", e)

    def escape(self, s: str) -> str:
        e = self.esc
        s = s.replace(e, f"{e}E{e}")
        for code, char in (("F", self.field), ("S", self.comp), ("T", self.sub), ("R", self.rep)):
            s = s.replace(char, f"{e}{code}{e}")
        return s.replace("\r", " ").replace("\n", " ")


def _segments(er7: str) -> tuple[list[str], _Delims]:
    text = er7.lstrip("\ufeff").strip("\x0b\x1c")  # a BOM or MLLP framing is not content
    lines = [s for s in re.split(r"\r\n|\r|\n", text) if s.strip()]
    delims = _Delims()
    for line in lines:
        if line.startswith("MSH") and len(line) >= 8:
            enc = line[4:8]
            delims = _Delims(line[3], enc[0], enc[1], enc[2], enc[3] if len(enc) > 3 else "&")
            break
    return lines, delims


def _fields(line: str, d: _Delims) -> tuple[str, list[str]]:
    """Segment id and its fields indexed by HL7 field number (index 0 unused)."""
    parts = line.split(d.field)
    seg = parts[0]
    if seg == "MSH":
        return seg, ["MSH", d.field, *parts[1:]]
    return seg, parts


def _join_fields(seg: str, fields: list[str], d: _Delims) -> str:
    if seg == "MSH":
        return d.field.join(["MSH", *fields[2:]])
    return d.field.join(fields)


def _hl7_rules(profile: Profile, seg: str, n: int) -> Rule | None:
    """The first rule for field ``n`` of segment ``seg``."""
    index = profile.hl7_index
    rules = index.get(seg)
    if rules is None:
        rules = index[seg] = _segment_rules(profile, seg)
    return rules.get(n, rules.get(0))


def _segment_rules(profile: Profile, seg: str) -> dict[int, Rule]:
    """Field number -> first matching rule for one segment id (0: a ``SEG-*`` rule)."""
    out: dict[int, Rule] = {}
    for rule in profile.hl7:
        rseg, _, rfield = rule.target.partition("-")
        if not fnmatchcase(seg, rseg):
            continue
        if rfield == "*":
            out.setdefault(0, rule)
            break  # every later rule for this segment is shadowed
        out.setdefault(int(rfield), rule)
    return out


def _comps(value: str, d: _Delims) -> list[str]:
    return value.split(d.comp)


def _sub(value: str, d: _Delims, i: int = 0) -> str:
    parts = value.split(d.sub)
    return d.unescape(parts[i]) if i < len(parts) else ""


def _get(comps: list[str], i: int) -> str:
    """Component ``i`` (1-based), first subcomponent, unescaped."""
    return comps[i - 1] if i <= len(comps) else ""


def harvest_hl7(er7: str, profile: Profile | None = None) -> dict[str, list[str]]:
    """Identifier values by kind from an HL7 v2 message (ER7 text)."""
    profile = profile or default_profile()
    lines, d = _segments(er7)
    bag = IdentifierBag()
    for line in lines:
        seg, fields = _fields(line, d)
        for n in range(1, len(fields)):
            if not fields[n]:
                continue
            rule = _hl7_rules(profile, seg, n)
            if rule is None or not rule.harvests or rule.kind is None:
                continue
            for rep in fields[n].split(d.rep) if seg != "MSH" or n > 2 else []:
                _harvest_value(bag, rule, _comps(rep, d), d)
    return bag.data


def _ndl_layout(t: str, comps: list[str], d: _Delims) -> str:
    """NDL names sit in subcomponents; older senders put them in components like XCN."""
    if t == "NDL" and comps and d.sub not in comps[0] and len(comps) > 1:
        return "XCN"
    return t


def _harvest_value(bag: IdentifierBag, rule: Rule, comps: list[str], d: _Delims) -> None:
    kind = rule.kind or "id"
    t = _ndl_layout(rule.type, comps, d)
    if t in ("XPN", "XCN", "NDL"):
        if t == "NDL":
            head = comps[0] if comps else ""
            ident, fam, giv, mid = (_sub(head, d, i) for i in range(4))
        elif t == "XCN":
            ident, fam, giv, mid = (_sub(_get(comps, i), d) for i in (1, 2, 3, 4))
        else:
            ident = ""
            fam, giv, mid = (_sub(_get(comps, i), d) for i in (1, 2, 3))
        bag.add_name(kind, fam, [giv] if giv else [])
        if giv and mid:
            bag.add(kind, f"{giv} {mid} {fam}".strip())
            bag.add(kind, f"{fam}, {giv} {mid}".strip(", "))
        if mid and len(mid.strip(". ")) > 1:
            bag.add(kind, mid)
        if ident and sum(c.isdigit() for c in ident) >= 4:
            bag.add("id", ident)
    elif t == "XAD":
        street = " ".join(p for p in (_sub(_get(comps, 1), d, i) for i in range(3)) if p)
        other, city, state, zip_ = (_sub(_get(comps, i), d) for i in (2, 3, 4, 5))
        for part in (street, other, city, zip_):
            bag.add(kind, part)
        bag.add(kind, ", ".join(x for x in (street, city, f"{state} {zip_}".strip()) if x))
    elif t == "XTN":
        for i in (1, 12):
            bag.add(kind, _sub(_get(comps, i), d))
        address = _sub(_get(comps, 4), d)
        bag.add("email" if "@" in address else kind, address)
        area, local = _sub(_get(comps, 6), d), _sub(_get(comps, 7), d)
        if local:
            bag.add(kind, f"({area}) {local}" if area else local)
    elif t in ("TS", "DT", "DTM"):
        value = _sub(_get(comps, 1), d)
        bag.add_date(kind, value)
    else:
        bag.add(kind, _sub(_get(comps, 1), d))


def apply_hl7(
    er7: str, vault: Vault, profile: Profile | None = None, text: TextFn | None = None
) -> str:
    """A de-identified copy of an HL7 v2 message (segments joined with carriage returns).

    Fields no rule transforms are still swept for the message's own identifiers.
    """
    profile = profile or default_profile()
    sweep = known_only(harvest_hl7(er7, profile), vault)
    text = text or sweep
    lines, d = _segments(er7)
    out: list[str] = []
    for line in lines:
        seg, fields = _fields(line, d)
        for n in range(1, len(fields)):
            if (seg == "MSH" and n <= 2) or not fields[n]:
                continue
            rule = _hl7_rules(profile, seg, n)
            if rule is not None and rule.method != "keep":
                fields[n] = d.rep.join(
                    _apply_value(rule, rep, d, vault, text) for rep in fields[n].split(d.rep)
                )
            # an identifier where no rule expects one, or in a component the rule keeps
            fields[n] = sweep(fields[n])
        out.append(_join_fields(seg, fields, d))
    return "\r".join(out) + "\r"


def _apply_value(rule: Rule, rep: str, d: _Delims, vault: Vault, text: TextFn) -> str:
    if rule.method == "redact":
        return ""
    if rule.method == "text":
        return d.escape(text(d.unescape(rep)))
    comps = _comps(rep, d)
    t = _ndl_layout(rule.type, comps, d)
    label = label_for(rule.kind or "id")

    def sur(i: int, lab: str = label) -> None:
        if i <= len(comps) and comps[i - 1]:
            raw = d.unescape(comps[i - 1].replace(d.sub, " "))
            comps[i - 1] = d.escape(vault.surrogate(lab, raw))

    if rule.method == "date_shift" or t in ("TS", "DT", "DTM"):
        if rule.method == "generalize":
            comps[0] = comps[0][:4]
        else:
            comps[0] = d.escape(shift_date_text(comps[0], vault)) if comps[0] else ""
        return d.comp.join(comps)
    if rule.method == "generalize":
        if t == "XAD" and len(comps) >= 5:
            comps[4] = sg.generalize_zip(comps[4])
            return d.comp.join(comps)
        return ""
    if t in ("XPN", "XCN"):
        first = 1 if t == "XPN" else 2
        if t == "XCN":
            sur(1, "ID")
        _name_comps(comps, [first, first + 1, first + 2], d, vault, label)
    elif t == "NDL":
        subs = comps[0].split(d.sub) if comps else []
        if subs:
            if subs[0]:
                subs[0] = d.escape(vault.surrogate("ID", d.unescape(subs[0])))
            _name_comps(subs, [2, 3, 4], d, vault, label)
            comps[0] = d.sub.join(subs)
    elif t == "XAD":
        for i in (1, 2, 3, 8):
            sur(i, "LOCATION")
        if len(comps) >= 5:
            comps[4] = sg.generalize_zip(comps[4])
    elif t == "XTN":
        sur(1)
        sur(12)
        sur(4, "EMAIL")
        if len(comps) >= 7 and comps[6]:
            local = d.unescape(" ".join(x for x in comps[5:7] if x))
            comps[5], comps[6] = "", d.escape(vault.surrogate(label, local))
    else:
        sur(1)
    return d.comp.join(comps)


def _name_comps(comps: list[str], idx: list[int], d: _Delims, vault: Vault, label: str) -> None:
    """Family/given/middle components: one tag for the person, or a fake per part."""
    present = [i for i in idx if i <= len(comps) and comps[i - 1]]
    if not present:
        return
    parts = {i: d.unescape(comps[i - 1].split(d.sub)[0]) for i in present}
    if vault.mode == "tags":
        whole = " ".join(parts[i] for i in sorted(parts, key=lambda i: (i != idx[0] + 1, i)))
        tag = vault.surrogate(label, whole)
        for i in present:
            comps[i - 1] = ""
        comps[idx[0] - 1] = tag
        return
    for i in present:
        comps[i - 1] = d.escape(vault.surrogate(label, parts[i]))
