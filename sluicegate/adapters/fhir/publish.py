"""What a finished job publishes for FHIR read and search.

The DiagnosticReport and its Provenance are published as standalone
resources: references that only resolved inside the result Bundle are
rewritten (``DiagnosticReport/<id>`` for the report; the generating Devices
become contained resources of the Provenance). Search values: the report's
``based-on`` orders, its ``subject``/``patient`` and the patient's identifiers
(``subject:identifier``, with and without system); the Provenance's ``target``.
"""

from __future__ import annotations

import json
from typing import Any

from sluicegate.adapters.fhir.provenance import with_devices_contained
from sluicegate.core.interfaces import Publication, Rendered, WorkItem

Json = dict[str, Any]


def publications(item: WorkItem, rendered: Rendered) -> list[Publication]:
    bundle: Json = json.loads(rendered.body)
    by_url = {e.get("fullUrl"): e["resource"] for e in bundle.get("entry", []) if "resource" in e}
    report_url, report = _first(bundle, "DiagnosticReport")
    if report is None:
        return []
    report_ref = f"DiagnosticReport/{report['id']}"
    published = [
        Publication("DiagnosticReport", report["id"], _dump(report), _report_search(item, report))
    ]
    _, provenance = _first(bundle, "Provenance")
    if provenance is not None:
        standalone = _standalone_provenance(provenance, report_url, report_ref, by_url)
        published.append(
            Publication("Provenance", provenance["id"], _dump(standalone), {"target": [report_ref]})
        )
    return published


def _first(bundle: Json, rtype: str) -> tuple[str | None, Json | None]:
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == rtype:
            return entry.get("fullUrl"), resource
    return None, None


def _report_search(item: WorkItem, report: Json) -> dict[str, list[str]]:
    payload = item.payload
    based_on = [r["reference"] for r in report.get("basedOn", []) if "reference" in r]
    based_on += [
        sr["reference"] for sr in payload.get("service_requests", []) if sr.get("reference")
    ]
    subject = [report["subject"]["reference"]] if "reference" in report.get("subject", {}) else []
    pairs: list[str] = list(payload.get("patient_identifiers", []))
    values = [pair.split("|", 1)[1] for pair in pairs]
    return {
        "based-on": sorted(set(based_on)),
        "subject": subject,
        "subject:identifier": sorted(set(pairs + values)),
    }


def _standalone_provenance(
    provenance: Json, report_url: str | None, report_ref: str, by_url: dict[Any, Json]
) -> Json:
    copy = with_devices_contained(provenance, by_url)
    for target in copy.get("target", []):
        if target.get("reference") == report_url:
            target["reference"] = report_ref
    return copy


def _dump(resource: Json) -> bytes:
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode()
