"""FHIR R4 by rule: harvest identifier values from element paths, apply the methods."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from sluicegate.core.privacy import surrogates as sg
from sluicegate.core.privacy.rules.common import (
    DATE_KINDS,
    IdentifierBag,
    Json,
    TextFn,
    known_only,
    shift_date_text,
)
from sluicegate.core.privacy.rules.profile import Profile, Rule, default_profile
from sluicegate.core.privacy.surrogates import label_for
from sluicegate.core.privacy.vault import Vault

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
_ZIP_KEYS = frozenset({"postalCode"})


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


class FhirRules:
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


def _fhir_rules(profile: Profile) -> FhirRules:
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
    bag = IdentifierBag()
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
            if rule.kind in DATE_KINDS or rule.method == "date_shift":
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


def _add_address(bag: IdentifierBag, addr: Json) -> None:
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
    sweep = known_only(harvest_fhir(resource, profile), vault)
    ctx = _Apply(_fhir_rules(profile), vault, text or sweep, sweep)
    out = copy.deepcopy(resource)
    for res in _resources(out):
        _apply_node(res, (str(res.get("resourceType", "")),), ctx)
    return out


_DROP = object()


@dataclass(frozen=True)
class _Apply:
    rules: FhirRules
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
    if kind in DATE_KINDS:
        m = re.match(r"\d{4}", value)
        return m.group() if m else _DROP
    if kind == "age":
        return sg.generalize_age(value)
    return _DROP
