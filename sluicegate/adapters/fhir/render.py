"""A finished generation as a FHIR R4 collection Bundle: a draft DiagnosticReport
first, then its Provenance and the two Devices that Provenance names.

The report is ``preliminary`` and labelled AI-asserted (``AIAST``), because a
radiologist still has to sign it; ids and ``urn:uuid:`` fullUrls derive from the
job id, so rendering the same job twice yields the same resource identities.
References between the entries use those fullUrls; references to the input's
resources are kept as the parser found them (see :func:`portable_ref`).
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
from sluicegate.adapters.fhir.provenance import (
    gateway_device,
    instant,
    model_device,
    portable_ref,
    provenance,
)
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
# Entry kind -> resource id suffix; the report comes first (consumers read entry[0]).
KINDS = {"report": "-report", "provenance": "-prov", "model": "-model", "gateway": "-gateway"}


def render_report(
    item: WorkItem, generation: Generation, job_id: str, *, now: datetime | None = None
) -> Rendered:
    """Build, validate (R4B models) and serialise the output Bundle.

    A validation failure means this code built something wrong, so it raises
    RuntimeError, with PHI-free issue text and no chained input values.
    """
    moment = now or datetime.now(UTC)
    stamp = instant(moment)
    base = _fhir_id(job_id)
    ids = {kind: base + suffix for kind, suffix in KINDS.items()}
    urls = {kind: _full_url(job_id, kind) for kind in KINDS}
    resources = {
        "report": _report(item, generation, ids["report"], stamp),
        "provenance": provenance(
            item,
            generation,
            ids["provenance"],
            target=urls["report"],
            author=urls["model"],
            assembler=urls["gateway"],
            now=moment,
        ),
        "model": model_device(generation, ids["model"]),
        "gateway": gateway_device(ids["gateway"]),
    }
    bundle = {
        "resourceType": "Bundle",
        "id": base,
        "type": "collection",
        "timestamp": stamp,
        "entry": [{"fullUrl": urls[kind], "resource": res} for kind, res in resources.items()],
    }
    _validate(bundle)
    return Rendered(
        body=json.dumps(bundle, ensure_ascii=False).encode("utf-8"), media_type=MEDIA_TYPE
    )


def _report(item: WorkItem, generation: Generation, rid: str, stamp: str) -> dict[str, Any]:
    text = generation.text.strip() or EMPTY_TEXT
    payload = item.payload
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": rid,
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
    subject = payload.get("subject")
    if isinstance(subject, dict):
        ref = portable_ref(subject, "Patient" if payload.get("patient") else None)
        if ref:
            report["subject"] = ref
    based_on = _refs(payload.get("service_requests"), "ServiceRequest")
    if based_on:
        report["basedOn"] = based_on
    report["issued"] = stamp
    studies = _refs(payload.get("imaging_studies"), "ImagingStudy")
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
    return report


_models_checked: list[bool] = []  # set once this process has validated a Bundle in full


def _validate(bundle: dict[str, Any]) -> None:
    """R4B model validation of the first Bundle a process renders, then a cheap check.

    Full validation costs ~2 ms, half a worker's CPU per job. The Bundle's
    structure is this module's code (validated in full by the tests for every
    shape it makes, and here once per process, which also catches a library
    upgrade that disagrees); what varies per job is the model's text (any
    non-empty text is a valid FHIR ``string``; it is base64-encoded in
    ``presentedForm``), names from config and the backend, ids derived from
    the job id, and codes and references copied from an input that passed the
    same R4B validation at ingest. The per-job check catches what those could
    still get wrong: an empty string, object or list, or a null.
    """
    if _models_checked:
        problem = _empty_element(bundle, "Bundle")
        if problem is not None:
            raise RuntimeError(f"rendered Bundle is not valid FHIR: {problem} is empty")
        return
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        issues = validation_issues(exc, bundle, "Bundle")
        detail = "; ".join(f"{i.location}: {i.diagnostics}" for i in issues)
        raise RuntimeError(f"rendered Bundle is not valid FHIR: {detail}") from None
    _models_checked.append(True)


def _empty_element(value: Any, path: str) -> str | None:
    """The path of the first element FHIR forbids as empty (or null), else None."""
    if isinstance(value, dict):
        if not value:
            return path
        for key, child in value.items():
            found = _empty_element(child, f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        if not value:
            return path
        for n, child in enumerate(value):
            found = _empty_element(child, f"{path}[{n}]")
            if found is not None:
                return found
        return None
    if value is None or value == "":
        return path
    return None


def _fhir_id(job_id: str) -> str:
    """The job id when it is a legal FHIR id with room for a suffix, else a hash of it."""
    room = 64 - max(map(len, KINDS.values()))
    if re.fullmatch(rf"[A-Za-z0-9\-.]{{1,{room}}}", job_id):
        return job_id
    return hashlib.sha256(job_id.encode("utf-8")).hexdigest()[:32]


def _full_url(job_id: str, kind: str) -> str:
    """Stable per job and kind; the report keeps the job's own UUID, as before."""
    name = job_id if kind == "report" else f"{job_id}#{kind}"
    return f"urn:uuid:{uuid.uuid5(_JOB_NS, name)}"


def _meta_source(generation: Generation) -> str:
    parts = (generation.backend_id or "unknown", generation.model or "unknown")
    return "sluicegate/" + "/".join(quote(p, safe="-._~") for p in parts)


def _refs(described: Any, rtype: str) -> list[dict[str, Any]]:
    """Portable references from payload descriptions; entries without one are dropped."""
    refs: list[dict[str, Any]] = []
    for d in described if isinstance(described, list) else []:
        ref = (
            portable_ref({"reference": d.get("reference")}, rtype) if isinstance(d, dict) else None
        )
        if ref and ref not in refs:
            refs.append(ref)
    return refs
