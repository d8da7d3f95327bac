"""FHIR R4 validation: the models, the rules they miss, and the ``$validate`` core.

fhir.resources checks structure, cardinality and primitive formats. The HL7
Java validator, the reference implementation, also rejects what the JSON
format and the core invariants forbid; :func:`check_rules` adds those checks
(the list is in ``docs/fhir.md``), each located by a FHIRPath expression in the
Java validator's style (``Bundle.entry[0]``, ``Encounter.period``).

Model validation lives here as well (media type, JSON, resource types, R4-only
types swapped for a placeholder; see the notes in :mod:`.parse`), so
``parse_bundle`` and ``$validate`` share one implementation.

Diagnostics name elements and entry positions, never values: ids, fullUrls,
references and names can all be PHI.
"""

from __future__ import annotations

import json
import logging
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from sluicegate.adapters.fhir.outcome import MAX_ISSUES, fhir_path, validation_issues
from sluicegate.core.interfaces import InvalidInput, Issue

log = logging.getLogger(__name__)

Json = dict[str, Any]
Loc = tuple[str | int, ...]

MEDIA_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})

# fmt: off
R4_ONLY = frozenset({
    "EffectEvidenceSynthesis", "RiskEvidenceSynthesis", "MedicinalProduct",
    "MedicinalProductAuthorization", "MedicinalProductContraindication",
    "MedicinalProductIndication", "MedicinalProductIngredient", "MedicinalProductInteraction",
    "MedicinalProductManufactured", "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect",
    "SubstanceSpecification", "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
    "SubstanceReferenceInformation", "SubstanceSourceMaterial"
})
# fmt: on
RESHAPED_IN_R4B = frozenset({"Evidence", "EvidenceVariable"})
_PLACEHOLDER = {"resourceType": "Basic", "code": {"text": "R4 resource not validated"}}
ERROR_SEVERITIES = frozenset({"error", "fatal"})


# --- reading the body -------------------------------------------------------------


def reject(status: int, code: str, message: str, location: str | None = None) -> InvalidInput:
    """One error issue as an exception, for input that cannot be processed further."""
    return InvalidInput([Issue("error", code, message, location)], status=status)


def check_media_type(content_type: str | None) -> None:
    """FHIR JSON in UTF-8 only (415 otherwise); the type is named only when it looks like one."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if media not in MEDIA_TYPES:
        shown = media if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", media) else "none"
        message = f"Content-Type {shown} is not supported; send application/fhir+json."
        raise reject(415, "not-supported", message)
    charset = re.search(r"charset\s*=\s*\"?([\w.-]+)", params, re.IGNORECASE)
    if charset and charset.group(1).lower().replace("_", "-") not in {"utf-8", "utf8"}:
        raise reject(415, "not-supported", "FHIR JSON must be encoded as UTF-8.")


def load_json(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity); errors quote positions, never content (400)."""

    def bad(message: str) -> InvalidInput:
        return reject(400, "structure", message)

    try:
        text = body.decode("utf-8-sig")  # a leading BOM is tolerated, nothing else
    except UnicodeDecodeError as exc:
        raise bad(f"Body is not valid UTF-8 (byte offset {exc.start}).") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        # exc.msg is a fixed phrase ("Expecting ',' delimiter"), never input.
        raise bad(
            f"Body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except ValueError:
        raise bad("Body is not valid JSON: NaN and Infinity are not allowed.") from None
    except RecursionError:
        raise bad("Body is not valid JSON: nested too deeply.") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def check_resource(doc: Any, expected_type: str | None = None) -> str:
    """The resource type of ``doc``; 400 for non-FHIR JSON or the wrong type.

    An unknown type is not named back: it is input, and could be anything.
    """

    def bad(message: str) -> InvalidInput:
        return reject(400, "structure", message)

    wanted = f"a FHIR {expected_type} resource" if expected_type else "a FHIR resource"
    if not isinstance(doc, dict):
        raise bad(f"Body must be a JSON object holding {wanted}.")
    rtype = doc.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise bad("Body is not a FHIR resource: it has no resourceType.")
    named = rtype if is_r4_type(rtype) else "an unknown type"
    if expected_type and rtype != expected_type:
        raise bad(f"Expected a {expected_type} resource, got {named}.")
    if not is_r4_type(rtype):
        raise bad("Body is not a FHIR resource: its resourceType is not an R4 resource type.")
    return rtype


def is_r4_type(name: str) -> bool:
    """A concrete R4 resource type: one the R4B models know, or an R4-only one."""
    return name in R4_ONLY or name in RESHAPED_IN_R4B or known_type(name)


@lru_cache(maxsize=512)
def known_type(name: str) -> bool:
    """True for a concrete resource type the R4B models know."""
    from fhir.resources.R4B import get_fhir_model_class

    if not re.fullmatch(r"[A-Z][A-Za-z]{1,63}", name) or name in {"Resource", "DomainResource"}:
        return False
    try:
        return bool(get_fhir_model_class(name).has_resource_base())
    except (ValueError, AttributeError):
        return False


# --- model validation ---------------------------------------------------------------


def validate_resource(doc: Json) -> list[Issue]:
    """Every issue with a resource: model, then rules; R4-only types noted, not failed.

    Raises InvalidInput (400) only when the content is too deeply nested to check.
    """
    rtype = str(doc["resourceType"])
    if rtype in R4_ONLY or rtype in RESHAPED_IN_R4B:
        note = Issue("warning", "not-supported", _R4_ONLY_NOTE, rtype)
        return [note, *check_rules(doc, root=rtype)]
    found: list[Issue] = []
    try:
        copy = normalise(doc, rtype, found)
    except RecursionError:
        raise reject(400, "structure", "Content is nested too deeply.") from None
    if not has_errors(found):
        found += model_issues(copy, rtype)
    return merge(found, check_rules(doc, root=rtype))


_R4_ONLY_NOTE = (
    "R4 resource type not covered by the R4B models: checked against the generic rules "
    "only, not its own definition."
)


def normalise(doc: Json, root: str, issues: list[Issue]) -> Any:
    """``doc`` as the models must see it: nested R4-only resources become a placeholder
    (an informational issue says so), missing or unknown resource types are errors.

    Copy on write: a container nothing was swapped in is returned as it is (the
    models do not modify their input), so a clean Bundle is not copied at all.
    """
    return _normalise(doc, [], root, issues)


def _normalise(node: Any, path: list[str | int], root: str, issues: list[Issue]) -> Any:
    if isinstance(node, list):
        out: list[Any] | None = None
        for i, value in enumerate(node):
            if not isinstance(value, dict | list):
                continue
            path.append(i)
            new = _normalise(value, path, root, issues)
            path.pop()
            if new is not value:
                out = out if out is not None else list(node)
                out[i] = new
        return node if out is None else out
    if not isinstance(node, dict):
        return node
    rtype = node.get("resourceType")
    if rtype is None and path and _is_resource_slot(path):
        issues.append(_type_issue("Resource has no resourceType.", root, path))
    elif rtype is not None and path:
        if rtype in R4_ONLY or rtype in RESHAPED_IN_R4B:
            where = fhir_path(root, path, None)
            issues.append(Issue("information", "not-supported", _SKIPPED, where))
            return dict(_PLACEHOLDER)
        if not isinstance(rtype, str) or not known_type(rtype):
            issues.append(_type_issue("Unknown resourceType.", root, path))
            return {}
    changed: dict[str, Any] | None = None
    for key, value in node.items():
        if not isinstance(value, dict | list):
            continue
        path.append(key)
        new = _normalise(value, path, root, issues)
        path.pop()
        if new is not value:
            changed = changed if changed is not None else dict(node)
            changed[key] = new
    return node if changed is None else changed


_SKIPPED = (
    "R4 resource type not covered by the R4B models: checked against the generic rules "
    "only, and ignored when work is extracted."
)


def _is_resource_slot(path: list[str | int]) -> bool:
    """Where R4 JSON must hold a whole resource: entry/parameter ``resource``, ``contained``."""
    if path[-2:-1] == ["contained"]:
        return True
    return len(path) >= 3 and path[-1] == "resource" and path[-3] in ("entry", "parameter", "part")


def _type_issue(message: str, root: str, path: list[str | int]) -> Issue:
    return Issue("error", "structure", message, fhir_path(root, path, None))


def model_issues(copy: Json, root: str) -> list[Issue]:
    """Validate a normalised copy against its R4B model; issues carry FHIRPath locations."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(root).model_validate(copy)
    except ValidationError as exc:
        return validation_issues(exc, copy, root)
    except RecursionError:
        raise reject(400, "structure", "Content is nested too deeply.") from None
    except Exception as exc:  # third-party code on untrusted input; its text may hold PHI
        log.warning("fhir validator failed unexpectedly: %s", type(exc).__name__)
        return [Issue("error", "invalid", "Content could not be validated as FHIR R4.")]
    return []


def merge(model: list[Issue], rules: list[Issue]) -> list[Issue]:
    """Model issues then rule issues; a model ``value`` issue is dropped where a rule
    says more about the same element (the model only says "does not match regex")."""
    ruled = {i.location for i in rules}
    kept = [i for i in model if not (i.code == "value" and i.location in ruled)]
    return kept + rules


def has_errors(issues: list[Issue]) -> bool:
    return any(i.severity in ERROR_SEVERITIES for i in issues)


# --- $validate ------------------------------------------------------------------------


def validate_body(
    body: bytes, content_type: str | None, expected_type: str | None = None
) -> tuple[int, list[Issue]]:
    """The core of ``$validate``: (HTTP status, issues); valid means no error issues.

    415/400 mean the body could not be validated at all (media type, JSON, not a
    FHIR resource, not the expected type). Otherwise the status is 200 whether or
    not the resource is valid, as the R4 ``$validate`` operation specifies; the
    verdict is in the issues. Never raises on bad input.
    """
    try:
        check_media_type(content_type)
        doc = load_json(body)
        check_resource(doc, expected_type)
        return 200, validate_resource(doc)
    except InvalidInput as exc:
        return exc.status, exc.issues
    except RecursionError:
        return 400, [Issue("error", "structure", "Content is nested too deeply.")]


# --- rules the models miss ------------------------------------------------------------

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

# Required bindings the Java validator checks without a terminology server, for the
# elements this gateway reads (R4 4.0.1 value sets); not the whole of R4 terminology.
# fmt: off
REQUIRED_CODES: dict[str, frozenset[str]] = {
    "Bundle.type": frozenset({
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection"}),
    "Bundle.entry.request.method": frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}),
    "Bundle.entry.search.mode": frozenset({"match", "include", "outcome"}),
    "Patient.gender": frozenset({"male", "female", "other", "unknown"}),
    "Encounter.status": frozenset({
        "planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
        "entered-in-error", "unknown"}),
    "DiagnosticReport.status": frozenset({
        "registered", "partial", "preliminary", "final", "amended", "corrected", "appended",
        "cancelled", "entered-in-error", "unknown"}),
    "Observation.status": frozenset({
        "registered", "preliminary", "final", "amended", "corrected", "cancelled",
        "entered-in-error", "unknown"}),
    "ImagingStudy.status": frozenset({
        "registered", "available", "cancelled", "entered-in-error", "unknown"}),
    "ServiceRequest.status": frozenset({
        "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}),
    "ServiceRequest.intent": frozenset({
        "proposal", "plan", "directive", "order", "original-order", "reflex-order",
        "filler-order", "instance-order", "option"}),
    "ServiceRequest.priority": frozenset({"routine", "urgent", "asap", "stat"}),
}
# fmt: on


class _Node:
    """An element met on the walk, with what the rules need to judge it.

    A plain slotted class, not a (frozen) dataclass: the walk makes one per element
    of the document, and a frozen dataclass's ``__init__`` costs several times more.
    """

    __slots__ = ("bundle", "container", "epath", "ftype", "loc", "value")

    def __init__(
        self,
        loc: Loc,  # from the document root, as pydantic would give it
        value: Any,
        ftype: str | None,  # its FHIR type ("Period", "dateTime", "Resource"), None if unknown
        epath: str,  # element path inside its resource, without indices ("Encounter.status")
        container: Json | None,  # the resource a local "#id" reference resolves in
        bundle: Json | None,  # the nearest Bundle around it: the scope of urn:uuid references
    ) -> None:
        self.loc = loc
        self.value = value
        self.ftype = ftype
        self.epath = epath
        self.container = container
        self.bundle = bundle


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
        for node in _walk(doc):
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


# --- the walk ------------------------------------------------------------------------------


def _walk(doc: Json) -> Iterator[_Node]:
    """Every element whose FHIR type is known from the R4B models, in document order.

    Iterative, so deep JSON cannot exhaust the stack. Resources of R4-only types
    are visited themselves but not entered: the models do not know their elements.
    Primitive values of a type no rule looks at (``string``, ``uri``, ...) are not
    visited: every rule would pass them.
    """
    stack = [_Node((), doc, "Resource", "", None, None)]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node.value, dict):
            children = list(_children(node))
            children.reverse()
            stack.extend(children)


def _children(node: _Node) -> Iterator[_Node]:
    value = node.value
    if not isinstance(value, dict):
        return
    if node.ftype == "Resource":
        node = _enter_resource(node)
        if node.ftype is None:
            return
    fields = _fields(node.ftype or "")
    loc, container, bundle = node.loc, node.container, node.bundle
    for key, child in value.items():
        ftype = fields.get(key)
        if ftype is None:
            continue
        judged = ftype in _PRIMITIVE_RULES  # else only objects can break a rule
        epath = f"{node.epath}.{key}"
        if isinstance(child, list):
            for i, item in enumerate(child):
                if judged or isinstance(item, dict):
                    yield _Node((*loc, key, i), item, ftype, epath, container, bundle)
        elif judged or isinstance(child, dict):
            yield _Node((*loc, key), child, ftype, epath, container, bundle)


def _enter_resource(node: _Node) -> _Node:
    """The same node seen from inside: typed as its resourceType, with its own scopes."""
    rtype = node.value.get("resourceType")
    if not isinstance(rtype, str) or not known_type(rtype):
        return _Node(node.loc, node.value, None, node.epath, node.container, node.bundle)
    contained = len(node.loc) >= 2 and node.loc[-2] == "contained"
    container = node.container if contained and node.container is not None else node.value
    bundle = node.value if rtype == "Bundle" else node.bundle
    return _Node(node.loc, node.value, rtype, rtype, container, bundle)


def _model(type_name: str) -> Any:
    """The R4B model class of a resource or complex type, None for primitives."""
    from fhir.resources.R4B import get_fhir_model_class

    if not type_name[:1].isupper():
        return None
    try:
        return get_fhir_model_class(type_name)
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _fields(type_name: str) -> dict[str, str]:
    """JSON key -> FHIR type name for a complex type or resource of the R4B models."""
    model = _model(type_name)
    out: dict[str, str] = {}
    for name, info in model.model_fields.items() if model else ():
        ftype = _type_name(info.annotation)
        if ftype is not None:
            out[info.alias or name] = ftype
    return out


@lru_cache(maxsize=1024)
def _required_choices(type_name: str) -> dict[str, tuple[str, ...]]:
    """Choice groups of min 1 (``medication[x]``) -> their JSON keys."""
    model = _model(type_name)
    groups: dict[str, list[str]] = {}
    for name, info in model.model_fields.items() if model else ():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("one_of_many_required"):
            groups.setdefault(str(extra.get("one_of_many")), []).append(info.alias or name)
    return {group: tuple(keys) for group, keys in groups.items()}


def _type_name(annotation: Any) -> str | None:
    """``Optional[List[abc.PeriodType]]`` -> ``Period``; ``Annotated[str, DateTime()]``
    -> ``dateTime``; None for what is not a FHIR element (``fhir_comments``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        marker = type(annotation.__metadata__[0]).__name__
        return marker[:1].lower() + marker[1:]
    if origin in (typing.Union, types.UnionType, list):
        found = {_type_name(a) for a in typing.get_args(annotation) if a is not type(None)}
        return found.pop() if len(found) == 1 else None
    if annotation is bool:
        return "boolean"
    name = getattr(annotation, "__name__", "")
    if name == "FHIRPrimitiveExtensionType":
        return "Element"
    return name.removesuffix("Type") if name.endswith("Type") and name != "Type" else None


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


def _choice_rules(ctx: _Context, node: _Node) -> list[Issue]:
    """A required choice (``medication[x]``) must be present. The models check this
    too, but only once every element is valid, so it is repeated here."""
    if not isinstance(node.value, dict):
        return []
    rtype = node.value.get("resourceType") if node.ftype == "Resource" else node.ftype
    groups = _required_choices(rtype) if isinstance(rtype, str) else {}
    issues: list[Issue] = []
    for group, keys in groups.items():
        if not any(k in node.value or f"_{k}" in node.value for k in keys):
            message = f"{node.epath}.{group}[x]: minimum required = 1, but none is present."
            issues.append(ctx.issue(node.loc, "required", message))
    return issues


def _resource_rules(ctx: _Context, node: _Node) -> list[Issue]:
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


def _reference_rules(ctx: _Context, node: _Node) -> list[Issue]:
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


def _period_rules(ctx: _Context, node: _Node) -> list[Issue]:
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


def _datetime_rules(ctx: _Context, node: _Node) -> list[Issue]:
    if isinstance(node.value, str) and _NO_TZ.fullmatch(node.value):
        return [ctx.issue(node.loc, "value", "If a date has a time, it must have a timezone.")]
    return []


def _code_rules(ctx: _Context, node: _Node) -> list[Issue]:
    allowed = REQUIRED_CODES.get(node.epath)
    if allowed is None or not isinstance(node.value, str) or node.value in allowed:
        return []
    message = f"The code is not in the required value set of {node.epath}."
    return [ctx.issue(node.loc, "code-invalid", message)]


_RULES: dict[str, tuple[Callable[[_Context, _Node], list[Issue]], ...]] = {
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
