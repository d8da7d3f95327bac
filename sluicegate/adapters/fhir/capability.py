"""The CapabilityStatement served at ``GET /fhir/r4/metadata``.

It lists exactly what :mod:`sluicegate.adapters.fhir.routes` and
:mod:`sluicegate.adapters.fhir.read` implement: accepted resources become
asynchronous work (followed through ``/jobs/{id}``), and only what Sluicegate
produced — draft DiagnosticReports and their Provenance — can be read and
searched back. Keep them in step when an interaction is added.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

FHIR_VERSION = "4.0.1"
# When this statement last changed; CapabilityStatement.date is required.
STATEMENT_DATE = "2026-11-28"
VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
WORK_TYPES = ("DiagnosticReport", "ImagingStudy", "ServiceRequest")

_REST_DOC = (
    "Radiology work in, draft reports out, asynchronously. Accepted resources are not "
    "stored as FHIR resources: each becomes a job (202 Accepted, Content-Location "
    "/jobs/{id}); poll /jobs/{id} and fetch the draft DiagnosticReport (status "
    "preliminary) from /jobs/{id}/result. JSON only: XML (_format=xml, "
    "application/fhir+xml) is answered with 415. Prefer: respond-async is honoured "
    "everywhere: 202 with a status location /fhir/r4/_async/{token} (202 while running, "
    "then 200 with a batch-response Bundle). Produced DiagnosticReports and Provenance "
    "can be read and searched (no history); inputs are not stored as FHIR resources."
)
_BUNDLE_DOC = (
    "create: a collection, message or document Bundle holding radiology work (a radiology "
    "DiagnosticReport, or an ImagingStudy / imaging ServiceRequest carrying findings). "
    "Transaction and batch Bundles go to the base URL instead."
)
_TRANSACTION_DOC = (
    "All-or-nothing: any invalid entry rejects the whole Bundle and nothing is stored. "
    "Entries must be POST or PUT. Answers a transaction-response Bundle; entries that "
    "became jobs have status 202 Accepted and location /jobs/{id}."
)
_BATCH_DOC = (
    "Entries are independent: invalid entries get their own 4xx status and outcome, "
    "valid ones are accepted. Answers a batch-response Bundle."
)
_SEARCH_DOC = (
    "Search produced reports by based-on, subject / patient, subject:identifier "
    "(system|value or value) and _lastUpdated (eq, gt, ge, lt, le). Unknown parameters "
    "are ignored and reported in an outcome entry."
)
_VALIDATE_DOC = (
    "Validates a resource (or a Parameters resource wrapping it in 'resource') against "
    "the base R4 specification; profiles are not supported. Also at /$validate."
)


def capability_statement(base_url: str) -> dict[str, Any]:
    """The statement for this server instance, whose FHIR base is ``base_url``."""
    return {
        "resourceType": "CapabilityStatement",
        "id": "sluicegate",
        "name": "SluicegateFhirR4",
        "title": "Sluicegate FHIR R4 radiology intake",
        "status": "active",
        "experimental": False,
        "date": STATEMENT_DATE,
        "publisher": "Sluicegate",
        "description": "Intake of radiology work for AI-drafted, preliminary reports.",
        "kind": "instance",
        "software": {"name": "Sluicegate", "version": _version()},
        "implementation": {"description": "Sluicegate FHIR R4 adapter", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": _REST_DOC,
                "resource": [
                    _bundle(),
                    *(_work_type(t) for t in WORK_TYPES),
                    _provenance(),
                ],
                "interaction": [
                    {"code": "transaction", "documentation": _TRANSACTION_DOC},
                    {"code": "batch", "documentation": _BATCH_DOC},
                ],
                "operation": [_validate_operation()],
            }
        ],
    }


def _bundle() -> dict[str, Any]:
    return {
        "type": "Bundle",
        "interaction": [{"code": "create", "documentation": _BUNDLE_DOC}],
        "operation": [_validate_operation()],
    }


def _work_type(rtype: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": rtype,
        "interaction": [
            {
                "code": "create",
                "documentation": f"A single {rtype} carrying radiology work; 202 Accepted.",
            }
        ],
        "operation": [_validate_operation()],
        "conditionalCreate": True,  # identifier=[system]|value only; see adapters/fhir/conditional
    }
    if rtype == "DiagnosticReport":
        entry["interaction"] += [
            {"code": "read", "documentation": "Draft reports Sluicegate produced."},
            {"code": "search-type", "documentation": _SEARCH_DOC},
        ]
        entry["searchParam"] = [
            _param("based-on", "reference"),
            _param("subject", "reference"),
            _param("patient", "reference"),
            _param("_lastUpdated", "date"),
        ]
    return entry


def _provenance() -> dict[str, Any]:
    return {
        "type": "Provenance",
        "interaction": [
            {
                "code": "read",
                "documentation": "Provenance of a produced report; the model "
                "and gateway Devices are contained.",
            },
            {"code": "search-type"},
        ],
        "searchParam": [_param("target", "reference"), _param("_lastUpdated", "date")],
    }


def _param(name: str, kind: str) -> dict[str, str]:
    return {"name": name, "type": kind}


def _validate_operation() -> dict[str, Any]:
    return {"name": "validate", "definition": VALIDATE, "documentation": _VALIDATE_DOC}


def _version() -> str:
    try:
        return version("sluicegate")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "unknown"
