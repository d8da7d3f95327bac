"""The rules the R4B models miss: the checks behind :func:`check_rules`.

fhir.resources checks structure, cardinality and primitive formats. The HL7
Java validator, the reference implementation, also rejects what the JSON
format and the core invariants forbid; :func:`check_rules` adds those checks
(the list is in ``docs/fhir.md``), each located by a FHIRPath expression in the
Java validator's style (``Bundle.entry[0]``, ``Encounter.period``). The typed
walk it runs on is in :mod:`.walk`, the required-code table in :mod:`.codes`;
model validation and ``$validate`` stay in :mod:`.validate`.

Diagnostics name elements and entry positions, never values: ids, fullUrls,
references and names can all be PHI.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sluicegate.adapters.fhir.codes import REQUIRED_CODES
from sluicegate.adapters.fhir.outcome import MAX_ISSUES, fhir_path
from sluicegate.adapters.fhir.walk import Json, Loc, Node, required_choices, walk
from sluicegate.core.interfaces import Issue

__all__ = ["REQUIRED_CODES", "SELF_CONTAINED", "Key", "check_rules", "compare_datetimes"]

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_NO_TZ = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
_DATETIME = re.compile(
    r"(?P<y>\d{4})(-(?P<mo>\d{2})(-(?P<d>\d{2})"
    r"(T(?P<h>\d{2}):(?P<mi>\d{2})(:(?P<s>\d{2}(\.\d+)?))?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
# Bundles whose urn:uuid references can only mean another entry of the same Bundle.
SELF_CONTAINED = frozenset({"transaction", "batch", "collection", "document", "message"})


@dataclass
class _Context:
    """The document being checked, and what the rules look up more than once."""

    doc: Json
    root: str
    full_urls: dict[int, set[str]] = field(default_factory=dict)

    def issue(self, loc: Loc, code: str, message: str) -> Issue:
        """An error at ``loc``, located as FHIRPath from the document's root."""
        return Issue("error", code, message, fhir_path(self.root, loc, self.doc))

    def urls_of(self, bundle: Json) -> set[str]:
        """The fullUrls of a Bundle's entries, computed once per Bundle."""
        key = id(bundle)
        if key not in self.full_urls:
            urls = [e.get("fullUrl") for e in _list(bundle.get("entry")) if isinstance(e, dict)]
            self.full_urls[key] = {u for u in urls if isinstance(u, str)}
        return self.full_urls[key]


def check_rules(doc: Json, *, root: str) -> list[Issue]:
    """What real validators reject and the models let through; [] when nothing is wrong.

    ``doc`` is the parsed JSON of a resource, ``root`` the first step of every
    location (its resourceType). Never raises on odd JSON: wrong shapes are the
    models' business and are skipped here.
    """
    ctx = _Context(doc, root)
    try:
        issues = _empty_values(ctx)
        for node in walk(doc, _PRIMITIVE_RULES):
            issues += _choice_rules(ctx, node)
            for rule in _RULES.get(node.ftype or "", ()):
                issues += rule(ctx, node)
    except RecursionError:
        return [Issue("error", "structure", "Content is nested too deeply.")]
    if len(issues) > MAX_ISSUES:
        more = len(issues) - MAX_ISSUES
        capped = Issue("error", "too-costly", f"{more} further issues not reported.")
        issues = [*issues[:MAX_ISSUES], capped]
    return issues


# --- the rules -------------------------------------------------------------------------------


def _empty_values(ctx: _Context) -> list[Issue]:
    """FHIR JSON never holds an empty array, object or string: leave the property out."""
    found: list[tuple[Loc, type]] = []
    try:
        _find_empty(ctx.doc, [], found)
    except RecursionError:  # deeper than the interpreter allows: walk it iteratively
        return _empty_values_iterative(ctx)
    return [ctx.issue(loc, "invalid", _EMPTY[kind]) for loc, kind in found]


def _find_empty(value: Any, path: list[str | int], found: list[tuple[Loc, type]]) -> None:
    """Where ``value`` holds an empty array, object or string, in document order;
    a location is built only for what is found."""
    if isinstance(value, dict):
        if not value:
            found.append((tuple(path), dict))
        for key, child in value.items():
            if isinstance(child, str):
                if not child:
                    found.append(((*path, key), str))
            elif isinstance(child, dict | list):
                path.append(key)
                _find_empty(child, path, found)
                path.pop()
    elif isinstance(value, list):
        if not value:
            found.append((tuple(path), list))
        for i, child in enumerate(value):
            if isinstance(child, str):
                if not child:
                    found.append(((*path, i), str))
            elif isinstance(child, dict | list):
                path.append(i)
                _find_empty(child, path, found)
                path.pop()
    elif isinstance(value, str) and not value:
        found.append((tuple(path), str))


def _empty_values_iterative(ctx: _Context) -> list[Issue]:
    issues: list[Issue] = []
    stack: list[tuple[Loc, Any]] = [((), ctx.doc)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*loc, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*loc, i), v) for i, v in reversed(list(enumerate(value))))
        if isinstance(value, list | dict | str) and not value:
            issues.append(ctx.issue(loc, "invalid", _EMPTY[type(value)]))
    return issues


_EMPTY: dict[type, str] = {
    list: "Array cannot be empty - the property should not be present if it has no values.",
    dict: "Object must have some content - the property should not be present if it is empty.",
    str: "String value cannot be empty - the property should not be present if it has no value.",
}


def _choice_rules(ctx: _Context, node: Node) -> list[Issue]:
    """A required choice (``medication[x]``) must be present. The models check this
    too, but only once every element is valid, so it is repeated here."""
    if not isinstance(node.value, dict):
        return []
    rtype = node.value.get("resourceType") if node.ftype == "Resource" else node.ftype
    groups = required_choices(rtype) if isinstance(rtype, str) else {}
    issues: list[Issue] = []
    for group, keys in groups.items():
        if not any(k in node.value or f"_{k}" in node.value for k in keys):
            message = f"{node.epath}.{group}[x]: minimum required = 1, but none is present."
            issues.append(ctx.issue(node.loc, "required", message))
    return issues


def _resource_rules(ctx: _Context, node: Node) -> list[Issue]:
    """Resource.id must match the id type; a Bundle gets its own checks."""
    res = node.value
    if not isinstance(res, dict):
        return []
    issues: list[Issue] = []
    rid = res.get("id")
    if isinstance(rid, str) and rid and not _ID.fullmatch(rid):
        why = "too long (over 64 characters)" if len(rid) > 64 else "invalid characters"
        message = f"Invalid resource id: {why}; ids are 1-64 of A-Z, a-z, 0-9, '-' and '.'."
        issues.append(ctx.issue((*node.loc, "id"), "value", message))
    if res.get("resourceType") == "Bundle":
        issues += _bundle_rules(ctx, node.loc, res)
    return issues


def _bundle_rules(ctx: _Context, loc: Loc, bundle: Json) -> list[Issue]:
    """fullUrl form, and no entry twice (bdl-7 for fullUrl; type and id likewise)."""
    issues: list[Issue] = []
    seen: dict[tuple[Any, ...], int] = {}
    history = bundle.get("type") == "history"  # several versions of one resource are normal
    for i, entry in enumerate(_list(bundle.get("entry"))):
        if not isinstance(entry, dict):
            continue
        at = (*loc, "entry", i)
        res = _dict(entry.get("resource"))
        url = entry.get("fullUrl")
        problem = _full_url_problem(url, res) if isinstance(url, str) and url else None
        if problem:
            issues.append(ctx.issue(at, "invalid", problem))
        if not history:
            issues += _duplicates(ctx, at, i, _entry_keys(url, res), seen)
    return issues


def _entry_keys(url: Any, res: Json) -> list[tuple[Any, ...]]:
    """What must be unique per entry: fullUrl, and type + id (each with meta.versionId)."""
    meta = res.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    keys: list[tuple[Any, ...]] = []
    if isinstance(url, str) and url:
        keys.append(("fullUrl", url, version))
    rtype, rid = res.get("resourceType"), res.get("id")
    if isinstance(rtype, str) and isinstance(rid, str) and rid:
        keys.append(("resource", rtype, rid, version))
    return keys


Key = tuple[Any, ...]


def _duplicates(
    ctx: _Context, at: Loc, index: int, keys: list[Key], seen: dict[Key, int]
) -> list[Issue]:
    issues: list[Issue] = []
    for key in keys:
        first = seen.setdefault(key, index)
        if first != index:
            what = "fullUrl" if key[0] == "fullUrl" else "resource type and id"
            rule = " (bdl-7)" if key[0] == "fullUrl" else ""
            message = f"Duplicate {what}: the same as Bundle entry {first}{rule}."
            issues.append(ctx.issue(at, "duplicate", message))
    return issues


def _full_url_problem(url: str, res: Json) -> str | None:
    """Why a fullUrl is not acceptable, or None; the message never quotes it."""
    if url.startswith("urn:uuid:"):
        return None if _UUID.fullmatch(url[9:]) else "A urn:uuid: fullUrl must hold a valid UUID."
    if url.startswith("urn:oid:"):
        return None if _OID.fullmatch(url[8:]) else "A urn:oid: fullUrl must hold a valid OID."
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "The fullUrl must be an absolute URL (urn:uuid:, urn:oid: or http(s)://)."
    if "/_history/" in url:
        return "The fullUrl must not be version specific (bdl-8)."
    rtype, rid = res.get("resourceType"), res.get("id")
    if isinstance(rtype, str) and isinstance(rid, str) and not url.endswith(f"/{rtype}/{rid}"):
        return "The fullUrl disagrees with the resource: it must end with its type and id."
    return None


def _reference_rules(ctx: _Context, node: Node) -> list[Issue]:
    """ref-1 for local references; urn:uuid references must resolve in their Bundle."""
    ref = node.value.get("reference") if isinstance(node.value, dict) else None
    if not isinstance(ref, str):
        return []
    if ref.startswith("#") and ref != "#":  # a bare "#" is the containing resource
        ids = {c.get("id") for c in _list((node.container or {}).get("contained"))}
        return [] if ref[1:] in ids else [ctx.issue(node.loc, "invariant", _REF_1)]
    bundle = node.bundle
    if ref.startswith("urn:uuid:") and bundle is not None and bundle.get("type") in SELF_CONTAINED:
        return [] if ref in ctx.urls_of(bundle) else [ctx.issue(node.loc, "not-found", _UNRESOLVED)]
    return []


_REF_1 = (
    "Constraint failed: ref-1: SHALL have a contained resource if a local reference is "
    "provided (no contained resource has this id)."
)
_UNRESOLVED = "Reference not found in the Bundle: no entry has this urn:uuid fullUrl."


def _period_rules(ctx: _Context, node: Node) -> list[Issue]:
    """per-1: start SHALL have a lower value than end (unordered counts as failing)."""
    period = node.value
    if not isinstance(period, dict):
        return []
    start, end = period.get("start"), period.get("end")
    if not (isinstance(start, str) and isinstance(end, str)):
        return []
    order = compare_datetimes(start, end)
    if order is None or order == "lt" or order == "eq":
        return []
    detail = "start is after end" if order == "gt" else "start and end differ in precision"
    message = f"Constraint failed: per-1: start SHALL have a lower value than end ({detail})."
    return [ctx.issue(node.loc, "invariant", message)]


def _datetime_rules(ctx: _Context, node: Node) -> list[Issue]:
    if isinstance(node.value, str) and _NO_TZ.fullmatch(node.value):
        return [ctx.issue(node.loc, "value", "If a date has a time, it must have a timezone.")]
    return []


def _code_rules(ctx: _Context, node: Node) -> list[Issue]:
    allowed = REQUIRED_CODES.get(node.epath)
    if allowed is None or not isinstance(node.value, str) or node.value in allowed:
        return []
    message = f"The code is not in the required value set of {node.epath}."
    return [ctx.issue(node.loc, "code-invalid", message)]


_RULES: dict[str, tuple[Callable[[_Context, Node], list[Issue]], ...]] = {
    "Resource": (_resource_rules,),
    "Reference": (_reference_rules,),
    "Period": (_period_rules,),
    "dateTime": (_datetime_rules,),
    "instant": (_datetime_rules,),
    "code": (_code_rules,),
}
# The types whose rules judge primitive (non-object) values; the others only objects.
_PRIMITIVE_RULES = frozenset({"dateTime", "instant", "code"})


# --- date and time order (FHIRPath comparison) ----------------------------------------------


def compare_datetimes(a: str, b: str) -> str | None:
    """``lt``/``eq``/``gt``, ``unknown`` where FHIRPath cannot order them (equal as far
    as both go, but one is more precise), None when either is not a date/dateTime.

    Two values with times are compared in UTC; a date against a dateTime is compared
    as written, as the date carries no timezone.
    """
    left, right = _moment(a), _moment(b)
    if left is None or right is None:
        return None
    (lparts, ltime), (rparts, rtime) = left, right
    if not (ltime and rtime):
        lparts, rparts = _as_written(a), _as_written(b)
    for x, y in zip(lparts, rparts, strict=False):
        if x != y:
            return "lt" if x < y else "gt"
    return "eq" if len(lparts) == len(rparts) else "unknown"


def _moment(text: str) -> tuple[list[Decimal], bool] | None:
    """Components from year down to seconds, in UTC when there is a time."""
    m = _DATETIME.fullmatch(text)
    if m is None:
        return None
    if m["h"] is None:
        return _as_written(text), False
    try:
        offset = _offset(m["tz"])
        local = datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]))
        utc = local.replace(tzinfo=offset).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    parts = [Decimal(p) for p in (utc.year, utc.month, utc.day, utc.hour, utc.minute)]
    return ([*parts, Decimal(m["s"])] if m["s"] else parts), True


def _as_written(text: str) -> list[Decimal]:
    m = _DATETIME.fullmatch(text)
    if m is None:
        return []
    parts = [m[k] for k in ("y", "mo", "d", "h", "mi", "s")]
    return [Decimal(p) for p in parts if p is not None]


def _offset(tz: str | None) -> timezone:
    if tz is None or tz == "Z":
        return UTC
    sign = -1 if tz[0] == "-" else 1
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
