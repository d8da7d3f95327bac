"""FHIR R4 Bundle (JSON) in, radiology WorkItems out.

fhir.resources has no R4 package, so input is validated with its R4B (4.3.0)
models. That is safe for every resource this adapter reads (Bundle, Patient,
DiagnosticReport, ImagingStudy, ServiceRequest, Observation, Practitioner,
Organization): R4B changed only the medication-regulation, evidence and
subscription areas (hl7.org/fhir/R4B/r4b-explanation.html), and every HL7 R4
(4.0.1) example of those types in the test corpus validates unchanged. The
differences that do matter to a Bundle:

* R4 resource types absent from the R4B models (``MedicinalProduct*``,
  ``SubstanceSpecification``, ``Effect/RiskEvidenceSynthesis``,
  ``Substance{NucleicAcid,Polymer,Protein,ReferenceInformation,SourceMaterial}``)
  make the library raise ``KeyError`` (not a ValidationError), and ``Evidence`` /
  ``EvidenceVariable`` were redesigned in R4B, so valid R4 instances fail.
  We never read them, so the copy that is validated swaps each for a
  placeholder ``Basic`` (same position, so error locations stay right); they are
  accepted unvalidated.
* The library accepts an entry resource with no ``resourceType`` and raises
  ``KeyError`` on an unknown one; both are reported here as 422 issues.
* The library is laxer than R4 in places (``"true"`` for a boolean, ids over
  64 characters, no required-binding checks); we do not tighten it.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from sluicegate.adapters.fhir.extract import work_items
from sluicegate.adapters.fhir.outcome import fhir_path, validation_issues
from sluicegate.core.interfaces import InvalidInput, Issue, WorkItem

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


def parse_bundle(
    body: bytes, content_type: str | None, *, tenant: str, channel: str
) -> list[WorkItem]:
    """Check, validate and extract; every rejection is an InvalidInput without PHI."""
    _check_media_type(content_type)
    doc = _load_json(body)
    _check_bundle_shape(doc)
    _validate(doc)
    items = work_items(doc, tenant=tenant, channel=channel)
    if not items:
        raise _reject(
            422,
            "business-rule",
            "The Bundle holds no radiology work with findings text: expected a radiology "
            "DiagnosticReport (category RAD) or an ImagingStudy / imaging ServiceRequest "
            "carrying findings.",
            "Bundle.entry",
        )
    return items


def _reject(status: int, code: str, message: str, location: str | None = None) -> InvalidInput:
    return InvalidInput([Issue("error", code, message, location)], status=status)


def _check_media_type(content_type: str | None) -> None:
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if media not in MEDIA_TYPES:
        shown = media if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", media) else "none"
        message = f"Content-Type {shown} is not supported; send application/fhir+json."
        raise _reject(415, "not-supported", message)
    charset = re.search(r"charset\s*=\s*\"?([\w.-]+)", params, re.IGNORECASE)
    if charset and charset.group(1).lower().replace("_", "-") not in {"utf-8", "utf8"}:
        raise _reject(415, "not-supported", "FHIR JSON must be encoded as UTF-8.")


def _load_json(body: bytes) -> Any:
    def bad(message: str) -> InvalidInput:
        return _reject(400, "structure", message)

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


def _check_bundle_shape(doc: Any) -> None:
    def bad(message: str) -> InvalidInput:
        return _reject(400, "structure", message)

    if not isinstance(doc, dict):
        raise bad("Body must be a JSON object holding a FHIR Bundle resource.")
    rtype = doc.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise bad("Body is not a FHIR resource: it has no resourceType.")
    if rtype != "Bundle":
        named = rtype if _known_type(rtype) or rtype in R4_ONLY else "an unknown type"
        raise bad(f"Expected a Bundle resource, got {named}.")


def _validate(doc: dict[str, Any]) -> None:
    """Validate against the R4B Bundle model; issues carry FHIRPath locations."""
    issues: list[Issue] = []
    copy = _normalise(doc, [], issues)
    if issues:
        raise InvalidInput(issues, status=422)
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(copy)
    except ValidationError as exc:
        raise InvalidInput(validation_issues(exc, copy, "Bundle"), status=422) from None
    except RecursionError:
        raise _reject(400, "structure", "Content is nested too deeply.") from None
    except Exception as exc:  # third-party code on untrusted input; its text may hold PHI
        log.warning("fhir validator failed unexpectedly: %s", type(exc).__name__)
        raise _reject(422, "invalid", "Content could not be validated as FHIR R4.") from None


def _normalise(node: Any, path: list[str | int], issues: list[Issue]) -> Any:
    """Copy ``node`` for validation, swapping R4-only resources for a placeholder
    and reporting resources whose type is missing or unknown."""
    if isinstance(node, list):
        return [_normalise(v, [*path, i], issues) for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    rtype = node.get("resourceType")
    if rtype is None and _is_resource_slot(path):
        issues.append(_type_issue("Resource has no resourceType.", path))
    elif rtype is not None:
        if rtype in R4_ONLY or rtype in RESHAPED_IN_R4B:
            return dict(_PLACEHOLDER)
        if not isinstance(rtype, str) or not _known_type(rtype):
            issues.append(_type_issue("Unknown resourceType.", path))
            return {}
    return {k: _normalise(v, [*path, k], issues) for k, v in node.items()}


def _is_resource_slot(path: list[str | int]) -> bool:
    """Where R4 JSON must hold a whole resource: entry/parameter ``resource``, ``contained``."""
    if path[-2:-1] == ["contained"]:
        return True
    return len(path) >= 3 and path[-1] == "resource" and path[-3] in ("entry", "parameter", "part")


def _type_issue(message: str, path: list[str | int]) -> Issue:
    return Issue("error", "structure", message, fhir_path("Bundle", path, None))


@lru_cache(maxsize=512)
def _known_type(name: str) -> bool:
    """True for a concrete resource type the R4B models know."""
    from fhir.resources.R4B import get_fhir_model_class

    if not re.fullmatch(r"[A-Z][A-Za-z]{1,63}", name) or name in {"Resource", "DomainResource"}:
        return False
    try:
        return bool(get_fhir_model_class(name).has_resource_base())
    except (ValueError, AttributeError):
        return False
