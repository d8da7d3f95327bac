"""FHIR R4 Bundle (JSON) in, radiology WorkItems out.

Validation is shared with ``$validate`` and lives in :mod:`.validate`: the
R4B models plus the rules they miss (:func:`.validate.check_rules`), so
ingestion refuses with 422 what the HL7 Java validator rejects.

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
  placeholder ``Basic`` (same position, so error locations stay right); they
  are checked by the generic rules only, accepted, ignored by extraction, and
  noted with an informational issue (see :func:`parse_bundle_with_issues`).
* The library accepts an entry resource with no ``resourceType`` and raises
  ``KeyError`` on an unknown one; both are reported here as 422 issues.
* The library is laxer than R4 in places. The rules close some gaps: ids over
  64 characters, empty arrays/objects/strings, and the required bindings of
  the status-like codes this adapter reads (``REQUIRED_CODES``). Others stay
  open: ``"true"`` for a boolean, required bindings elsewhere.
"""

from __future__ import annotations

from typing import Any

from sluicegate.adapters.fhir.extract import READ_TYPES, work_items
from sluicegate.adapters.fhir.validate import (
    ERROR_SEVERITIES,
    MEDIA_TYPES,
    R4_ONLY,
    RESHAPED_IN_R4B,
    check_media_type,
    check_resource,
    load_json,
    reject,
    validate_resource,
)
from sluicegate.core.interfaces import InvalidInput, Issue, WorkItem

__all__ = [
    "MEDIA_TYPES",
    "R4_ONLY",
    "RESHAPED_IN_R4B",
    "ignored_entries",
    "parse_bundle",
    "parse_bundle_with_issues",
    "parse_document",
]

NO_WORK = (
    "The Bundle holds no radiology work with findings text: expected a radiology "
    "DiagnosticReport (category RAD) or an ImagingStudy / imaging ServiceRequest "
    "carrying findings."
)


def parse_bundle(
    body: bytes, content_type: str | None, *, tenant: str, channel: str
) -> list[WorkItem]:
    """Check, validate and extract; every rejection is an InvalidInput without PHI."""
    items, _ = parse_bundle_with_issues(body, content_type, tenant=tenant, channel=channel)
    return items


def parse_bundle_with_issues(
    body: bytes, content_type: str | None, *, tenant: str, channel: str
) -> tuple[list[WorkItem], list[Issue]]:
    """:func:`parse_bundle`, also returning the issues that did not block it:
    warnings, and a note per entry that was accepted but ignored (see
    :func:`ignored_entries`)."""
    check_media_type(content_type)
    return parse_document(load_json(body), tenant=tenant, channel=channel)


def parse_document(doc: Any, *, tenant: str, channel: str) -> tuple[list[WorkItem], list[Issue]]:
    """:func:`parse_bundle_with_issues` for a body already read as JSON (media type
    checked, ``load_json`` done), so a route that looked at the JSON first does not
    decode it twice. ``doc`` is not modified."""
    check_resource(doc, "Bundle")
    issues = validate_resource(doc)
    errors = [i for i in issues if i.severity in ERROR_SEVERITIES]
    if errors:
        raise InvalidInput(errors, status=422)
    items = work_items(doc, tenant=tenant, channel=channel)
    if not items:
        raise reject(422, "business-rule", NO_WORK, "Bundle.entry")
    return items, [*issues, *ignored_entries(doc, issues)]


# Bundle types whose entries are content, not requests; in a transaction or batch the
# response Bundle answers every entry (200 for one read as context), so no note is added.
CONTENT_BUNDLES = frozenset({"collection", "message", "document"})


def ignored_entries(doc: Any, issues: list[Issue]) -> list[Issue]:
    """One ``informational`` issue per entry of a collection, message or document
    Bundle whose resource type extraction never reads (``Bundle.entry[i]``): it was
    accepted, not rejected, and nothing was taken from it.

    An R4-only resource already has its own note (``Bundle.entry[i].resource``,
    from the validator) and gets no second one.
    """
    if not isinstance(doc, dict) or doc.get("type") not in CONTENT_BUNDLES:
        return []
    entries = doc.get("entry")
    noted = {i.location for i in issues if i.severity == "information"}
    out: list[Issue] = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(rtype, str) or rtype in READ_TYPES:
            continue
        if f"Bundle.entry[{index}].resource" in noted:
            continue
        message = f"{rtype} entries are not read by this gateway: accepted and ignored."
        out.append(Issue("information", "informational", message, f"Bundle.entry[{index}]"))
    return out
