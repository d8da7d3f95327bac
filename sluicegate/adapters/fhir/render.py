"""A finished generation as a FHIR R4 collection Bundle with one draft DiagnosticReport.

The report is ``preliminary`` and labelled AI-asserted (``AIAST``), because a
radiologist still has to sign it; ids and fullUrl derive from the job id, so
rendering the same job twice yields the same resource identities.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from sluicegate.adapters.fhir.outcome import validation_issues
from sluicegate.core.interfaces import Generation, Rendered, WorkItem

MEDIA_TYPE = "application/fhir+json"
EMPTY_TEXT = "(model returned no text)"
TITLE = "Draft radiology report (AI-generated, preliminary)"
AI_ASSERTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "AIAST",
    "display": "Artificial Intelligence asserted",
}
RADIOLOGY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
            "code": "RAD",
            "display": "Radiology",
        }
    ]
}
FALLBACK_CODE = {
    "coding": [
        {"system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study"}
    ],
    "text": "Diagnostic imaging study",
}
_JOB_NS = uuid.UUID("4f7c3a52-1d0e-4b8a-9d65-2b1c7e0a9f13")  # fixed: stable fullUrls


def render_report(
    item: WorkItem, generation: Generation, job_id: str, *, now: datetime | None = None
) -> Rendered:
    """Build, validate (R4B models) and serialise the output Bundle.

    A validation failure means this code built something wrong, so it raises
    RuntimeError, with PHI-free issue text and no chained input values.
    """
    stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    text = generation.text.strip() or EMPTY_TEXT
    payload = item.payload
    base = _fhir_id(job_id)
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": f"{base}-report",
        "meta": {
            "source": _meta_source(generation),
            # meta.tag for consumers that filter on tags; meta.security is where
            # HL7's AI-transparency guidance puts the same label.
            "tag": [AI_ASSERTED],
            "security": [AI_ASSERTED],
        },
        "status": "preliminary",
        "category": [RADIOLOGY],
        "code": payload.get("code") or FALLBACK_CODE,
    }
    if payload.get("subject"):
        report["subject"] = payload["subject"]
    based_on = _refs(payload.get("service_requests"))
    if based_on:
        report["basedOn"] = based_on
    report["issued"] = stamp
    studies = _refs(payload.get("imaging_studies"))
    if studies:
        report["imagingStudy"] = studies
    report["conclusion"] = text
    report["presentedForm"] = [
        {
            "contentType": "text/plain;charset=utf-8",
            "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
            "title": TITLE,
            "creation": stamp,
        }
    ]
    bundle = {
        "resourceType": "Bundle",
        "id": base,
        "type": "collection",
        "timestamp": stamp,
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid5(_JOB_NS, job_id)}", "resource": report}],
    }
    _validate(bundle)
    return Rendered(
        body=json.dumps(bundle, ensure_ascii=False).encode("utf-8"), media_type=MEDIA_TYPE
    )


def _validate(bundle: dict[str, Any]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        issues = validation_issues(exc, bundle, "Bundle")
        detail = "; ".join(f"{i.location}: {i.diagnostics}" for i in issues)
        raise RuntimeError(f"rendered Bundle is not valid FHIR: {detail}") from None


def _fhir_id(job_id: str) -> str:
    """The job id when it is a legal FHIR id with room for a suffix, else a hash of it."""
    if re.fullmatch(r"[A-Za-z0-9\-.]{1,57}", job_id):
        return job_id
    return hashlib.sha256(job_id.encode("utf-8")).hexdigest()[:32]


def _meta_source(generation: Generation) -> str:
    parts = (generation.backend_id or "unknown", generation.model or "unknown")
    return "sluicegate/" + "/".join(quote(p, safe="-._~") for p in parts)


def _refs(described: Any) -> list[dict[str, str]]:
    """References from payload descriptions; entries without one are dropped."""
    refs: list[dict[str, str]] = []
    for d in described if isinstance(described, list) else []:
        ref = d.get("reference") if isinstance(d, dict) else None
        if isinstance(ref, str) and ref and {"reference": ref} not in refs:
            refs.append({"reference": ref})
    return refs
