"""FHIR R4 validation: reading the body, the models, and the ``$validate`` core.

The reading steps (media type, strict JSON, resource type) and model validation
(R4-only types swapped for a placeholder; see the notes in :mod:`.parse`) live
here, so ``parse_bundle`` and ``$validate`` share one implementation. The rules
the models miss are in :mod:`.rules` (on the typed walk of :mod:`.walk`, with the
required-code table in :mod:`.codes`); :func:`check_rules`, :func:`compare_datetimes`,
``REQUIRED_CODES`` and ``SELF_CONTAINED`` are re-exported from here for callers.

Diagnostics name elements and entry positions, never values: ids, fullUrls,
references and names can all be PHI.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from pydantic import ValidationError

from sluicegate.adapters.fhir.outcome import fhir_path, validation_issues
from sluicegate.adapters.fhir.rules import (
    REQUIRED_CODES,
    SELF_CONTAINED,
    Key,
    check_rules,
    compare_datetimes,
)
from sluicegate.adapters.fhir.walk import Json, Loc, known_type
from sluicegate.core.interfaces import InvalidInput, Issue

__all__ = [
    "ERROR_SEVERITIES",
    "MEDIA_TYPES",
    "R4_ONLY",
    "REQUIRED_CODES",
    "RESHAPED_IN_R4B",
    "SELF_CONTAINED",
    "Json",
    "Key",
    "Loc",
    "check_media_type",
    "check_resource",
    "check_rules",
    "compare_datetimes",
    "has_errors",
    "is_r4_type",
    "known_type",
    "load_json",
    "merge",
    "model_issues",
    "normalise",
    "reject",
    "validate_body",
    "validate_resource",
]

log = logging.getLogger(__name__)

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
