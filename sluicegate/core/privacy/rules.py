"""Structured de-identification by rule: FHIR element paths and HL7 v2 field positions.

Rules are data (``profiles/default.yaml``, documented in docs/privacy.md). The
same rules serve two purposes: *harvest* pulls every identifier value out of
the structured part of a message (so the free-text de-identifier and the guard
can hunt it in the narrative), and *apply* writes a de-identified copy.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatchcase
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

from sluicegate.core.privacy import surrogates as sg
from sluicegate.core.privacy.surrogates import label_for
from sluicegate.core.privacy.vault import Vault

METHODS = frozenset({"redact", "pseudonymize", "date_shift", "generalize", "keep", "text"})
HL7_TYPES = frozenset(
    {"CX", "EI", "ST", "ID", "IS", "XPN", "XCN", "NDL", "XAD", "XTN", "TS", "DT", "DTM", "TX", "FT"}
)
DEFAULT_PROFILE = Path(__file__).with_name("profiles") / "default.yaml"
# Keys that describe a value rather than hold one: kept under an inherited rule.
STRUCTURAL = frozenset(
    {
        "use",
        "system",
        "type",
        "rank",
        "url",
        "code",
        "status",
        "resourceType",
        "prefix",
        "suffix",
        "state",
        "country",
        "contentType",
        "language",
        "assigner",
    }
)
_DATE_KINDS = frozenset({"birth_date", "date"})
_ZIP_KEYS = frozenset({"postalCode"})

TextFn = Callable[[str], str]
Json = dict[str, Any]


class ProfileError(ValueError):
    """A de-identification profile is invalid; the message names the rule."""


@dataclass(frozen=True)
class Rule:
    """One rule: where (a FHIR path or an HL7 field), what to do, and what it harvests."""

    target: str
    method: str
    kind: str | None = None
    harvest: bool = True
    type: str = "ST"

    @property
    def harvests(self) -> bool:
        return bool(self.kind) and self.harvest and self.method not in ("keep", "text")


@dataclass(frozen=True)
class Profile:
    """An ordered rule set; the first rule that matches wins."""

    name: str
    fhir: tuple[Rule, ...]
    hl7: tuple[Rule, ...]

    @cached_property
    def fhir_matcher(self) -> _FhirRules:
        """The FHIR rules compiled for matching (built once per profile)."""
        return _FhirRules(self.fhir)

    @cached_property
    def hl7_index(self) -> dict[str, dict[int, Rule]]:
        """Segment id -> field number -> rule, filled as segments are met."""
        return {}

    def with_overrides(self, fhir: Sequence[Rule] = (), hl7: Sequence[Rule] = ()) -> Profile:
        """This profile with ``fhir``/``hl7`` rules put in front (so they win)."""
        return Profile(self.name, (*fhir, *self.fhir), (*hl7, *self.hl7))


# --- loading ----------------------------------------------------------------------------


def parse_rules(items: Any, domain: str, source: str) -> tuple[Rule, ...]:
    """Validate raw rule mappings; a bad one raises ProfileError naming it."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ProfileError(f"{source}: {domain} must be a list of rules")
    key = "path" if domain == "fhir" else "field"
    rules: list[Rule] = []
    for i, raw in enumerate(items):
        where = f"{source}: {domain} rule {i + 1}"
        if not isinstance(raw, Mapping):
            raise ProfileError(f"{where}: a rule is a mapping with {key!r} and 'method'")
        target = raw.get(key)
        where += f" ({target})" if isinstance(target, str) else ""
        unknown = set(raw) - {key, "method", "kind", "harvest", "type"}
        if unknown:
            raise ProfileError(f"{where}: unknown keys {sorted(unknown)}")
        if not isinstance(target, str) or not target.strip():
            raise ProfileError(f"{where}: {key!r} is required")
        method = raw.get("method")
        if method not in METHODS:
            raise ProfileError(f"{where}: method must be one of {sorted(METHODS)}")
        kind = raw.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise ProfileError(f"{where}: kind must be a string")
        if method == "pseudonymize" and not kind:
            raise ProfileError(f"{where}: pseudonymize needs a kind")
        if domain == "fhir" and not re.fullmatch(r"[A-Za-z*?\[\]]+(\.[\w*?\[\]]+)+", target):
            raise ProfileError(f"{where}: path must be ResourceType.element[.element...]")
        rtype = str(raw.get("type", "ST"))
        if domain == "hl7":
            if not re.fullmatch(r"[A-Z0-9*?]{1,3}-(\d{1,3}|\*)", target):
                raise ProfileError(f"{where}: field must look like PID-5 or Z*-*")
            if rtype not in HL7_TYPES:
                raise ProfileError(f"{where}: type must be one of {sorted(HL7_TYPES)}")
        harvest = raw.get("harvest", True)
        if not isinstance(harvest, bool):
            raise ProfileError(f"{where}: harvest must be true or false")
        rules.append(Rule(target, method, kind, harvest, rtype))
    return tuple(rules)


def parse_profile(data: Any, source: str) -> Profile:
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: a profile is a mapping with 'fhir' and 'hl7' rule lists")
    unknown = set(data) - {"name", "fhir", "hl7"}
    if unknown:
        raise ProfileError(f"{source}: unknown keys {sorted(unknown)}")
    return Profile(
        str(data.get("name", Path(source).stem)),
        parse_rules(data.get("fhir"), "fhir", source),
        parse_rules(data.get("hl7"), "hl7", source),
    )


def load_profile(path: str | Path | None = None) -> Profile:
    """The profile in ``path`` (YAML), or the built-in default profile."""
    if path is None:
        return default_profile()
    return _load(str(path))


@lru_cache(maxsize=1)
def default_profile() -> Profile:
    return _load(str(DEFAULT_PROFILE))


def _load(path: str) -> Profile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: invalid YAML ({type(exc).__name__})") from None
    return parse_profile(data, path)


# --- shared helpers -----------------------------------------------------------------------


class _Bag:
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


# --- FHIR -------------------------------------------------------------------------------


def _resources(doc: Any) -> Iterator[Json]:
    """Every resource in ``doc``: itself, Bundle entries (nested too), contained ones."""
    if not isinstance(doc, dict):
        return
    yield doc
    for entry in doc.get("entry") or [] if doc.get("resourceType") == "Bundle" else []:
        if isinstance(entry, dict):
            yield from _resources(entry.get("resource"))
    for contained in doc.get("contained") or []:
        yield from _resources(contained)


def _split(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.split("."))


def _match_depth(pattern: tuple[str, ...], path: tuple[str, ...]) -> int | None:
    """Length of the prefix of ``path`` that ``pattern`` matches, or None."""

    def go(pi: int, i: int) -> int | None:
        if pi == len(pattern):
            return i
        if pattern[pi] == "**":
            return (
                go(pi + 1, i)
                if go(pi + 1, i) is not None
                else (go(pi, i + 1) if i < len(path) else None)
            )
        if i < len(path) and fnmatchcase(path[i], pattern[pi]):
            return go(pi + 1, i + 1)
        return None

    return go(0, 0)


_PERIOD = Rule("period", "date_shift", "date")


class _FhirRules:
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = [(r, _split(r.target)) for r in rules]

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per profile, bounded
    def rule_for(self, path: tuple[str, ...]) -> Rule | None:
        """The rule governing the leaf at ``path`` (None: no rule, or a structural key)."""
        for rule, pattern in self.rules:
            depth = _match_depth(pattern, path)
            if depth is None:
                continue
            if depth < len(path):
                rest = path[depth:]
                if "period" in rest and rule.method != "redact":
                    return _PERIOD  # validity dates of a name, address...: still dates
                if any(k in STRUCTURAL for k in rest):
                    return None
            return rule
        return None


def _fhir_rules(profile: Profile) -> _FhirRules:
    return profile.fhir_matcher


def _walk_leaves(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """(path, value, parent) of every leaf of one resource, not entering other resources."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("contained",) or (key == "resource" and path[:1] == ("Bundle",)):
                continue
            yield from (
                _walk_leaves(value, (*path, key))
                if isinstance(value, dict | list)
                else iter([((*path, key), value, node)])
            )
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                yield from _walk_leaves(item, path)
            else:
                yield path, item, node


def harvest_fhir(resource_or_bundle: Json, profile: Profile | None = None) -> dict[str, list[str]]:
    """Identifier values by kind from every resource in a FHIR resource or Bundle."""
    rules = _fhir_rules(profile or default_profile())
    bag = _Bag()
    for res in _resources(resource_or_bundle):
        rtype = str(res.get("resourceType", ""))
        named: list[tuple[str, tuple[str, ...], Json]] = []
        for path, value, parent in _walk_leaves(res, (rtype,)):
            rule = rules.rule_for(path)
            if rule is None or not rule.harvests or rule.kind is None:
                continue
            kind = (
                "email"
                if rule.kind == "phone" and isinstance(value, str) and "@" in value
                else rule.kind
            )
            if rule.kind in _DATE_KINDS or rule.method == "date_shift":
                bag.add_date(kind, value)
            else:
                bag.add(kind, value)
            if path[-1] == "family" and isinstance(parent, dict):
                named.append((rule.kind, path, parent))
            if path[-1] in ("line", "city") and isinstance(parent, dict) and rule.kind == "address":
                _add_address(bag, parent)
        for kind, path, name in named:
            given_rule = rules.rule_for((*path[:-1], "given"))
            given = [g for g in name.get("given") or [] if isinstance(g, str)]
            if given_rule is None or not given_rule.harvests:
                given = []  # a profile that keeps given names does not hunt them either
            family = str(name["family"]) if isinstance(name.get("family"), str) else ""
            bag.add_name(kind, family, given)
    return bag.data


def _add_address(bag: _Bag, addr: Json) -> None:
    lines = [x for x in addr.get("line") or [] if isinstance(x, str)]
    region = " ".join(x for x in (addr.get("state"), addr.get("postalCode")) if isinstance(x, str))
    parts = [*lines, addr.get("city"), region]
    bag.add("address", ", ".join(x for x in parts if isinstance(x, str) and x))


def apply_fhir(
    resource: Json, vault: Vault, profile: Profile | None = None, text: TextFn | None = None
) -> Json:
    """A de-identified deep copy of a FHIR resource or Bundle.

    ``text`` de-identifies free-text elements (method ``text``); by default the
    values harvested from the same document are hunted in them. Every string
    no rule transforms is still swept for those values, so an identifier that
    turns up in an unexpected element (a reference, a search URL, another
    resource's address) does not survive either.
    """
    profile = profile or default_profile()
    sweep = _known_only(harvest_fhir(resource, profile), vault)
    ctx = _Apply(_fhir_rules(profile), vault, text or sweep, sweep)
    out = copy.deepcopy(resource)
    for res in _resources(out):
        _apply_node(res, (str(res.get("resourceType", "")),), ctx)
    return out


_DROP = object()


@dataclass(frozen=True)
class _Apply:
    rules: _FhirRules
    vault: Vault
    text: TextFn
    sweep: TextFn


def _apply_node(node: Any, path: tuple[str, ...], ctx: _Apply) -> None:
    if isinstance(node, dict):
        for key in list(node):
            value = node[key]
            if key == "contained" or (key == "resource" and path[:1] == ("Bundle",)):
                continue  # walked as resources of their own
            child = (*path, key)
            if isinstance(value, dict | list):
                _apply_node(value, child, ctx)
                if value == [] or value == {}:
                    del node[key]
                continue
            new = _apply_leaf(child, value, ctx)
            if new is _DROP:
                del node[key]
            else:
                node[key] = new
    elif isinstance(node, list):
        keep: list[Any] = []
        for item in node:
            if isinstance(item, dict | list):
                _apply_node(item, path, ctx)
                if item not in ([], {}):
                    keep.append(item)
                continue
            new = _apply_leaf(path, item, ctx)
            if new is not _DROP:
                keep.append(new)
        node[:] = keep


def _apply_leaf(path: tuple[str, ...], value: Any, ctx: _Apply) -> Any:
    rule = ctx.rules.rule_for(path)
    vault, text = ctx.vault, ctx.text
    if rule is None:
        return ctx.sweep(value) if isinstance(value, str) else value
    if rule.method == "keep":
        return value
    if rule.method == "redact" or not isinstance(value, str):
        return _DROP
    if rule.method == "text":
        return text(value)
    if rule.method == "date_shift":
        return shift_date_text(value, vault)
    if rule.method == "generalize":
        return _generalize(path[-1], rule.kind or "", value)
    return vault.surrogate(label_for(rule.kind or "", value), value)


def _generalize(key: str, kind: str, value: str) -> Any:
    if key in _ZIP_KEYS or kind == "address":
        return sg.generalize_zip(value) or _DROP
    if kind in _DATE_KINDS:
        m = re.match(r"\d{4}", value)
        return m.group() if m else _DROP
    if kind == "age":
        return sg.generalize_age(value)
    return _DROP


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


# --- HL7 v2 ---------------------------------------------------------------------------------


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
    bag = _Bag()
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


def _harvest_value(bag: _Bag, rule: Rule, comps: list[str], d: _Delims) -> None:
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
    sweep = _known_only(harvest_hl7(er7, profile), vault)
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


def _known_only(identifiers: dict[str, list[str]], vault: Vault) -> TextFn:
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
