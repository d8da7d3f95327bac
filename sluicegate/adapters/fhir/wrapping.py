"""One resource in: wrapped into a Bundle for create, taken out of Parameters for $validate."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sluicegate.core.interfaces import InvalidInput, Issue

_WRAP_NS = uuid.UUID("0b6f3c2e-8a41-4d5e-9f07-6c1d2e3f4a5b")  # fixed: stable fullUrls


def wrap(resource: dict[str, Any]) -> bytes:
    """A single resource as the collection Bundle parse_bundle reads.

    The fullUrl is derived from the content, so posting it again finds the same job.
    """
    canonical = json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    full_url = f"urn:uuid:{uuid.uuid5(_WRAP_NS, canonical)}"
    entry = {"fullUrl": full_url, "resource": resource}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [entry]}
    return json.dumps(bundle, ensure_ascii=False).encode("utf-8")


def relocate(issue: Issue, rtype: str) -> Issue:
    """An issue located in the wrapping Bundle, located in the posted resource instead."""
    location = issue.location or ""
    for prefix in ("Bundle.entry[0].resource", "Bundle.entry[0]", "Bundle.entry", "Bundle"):
        if location.startswith(prefix):
            location = rtype + location[len(prefix) :]
            break
    return Issue(issue.severity, issue.code, issue.diagnostics, location or None)


def unwrap_parameters(body: bytes, rtype: str | None) -> tuple[bytes, list[Issue]]:
    """The resource a ``Parameters`` body carries in ``resource``, plus notes on
    the parameters we do not honour; any other body is returned as it is."""
    doc = _peek(body)
    if rtype == "Parameters" or not isinstance(doc, dict):
        return body, []
    if doc.get("resourceType") != "Parameters":
        return body, []
    params = [p for p in doc.get("parameter") or [] if isinstance(p, dict)]
    found = [p["resource"] for p in params if p.get("name") == "resource" and "resource" in p]
    if len(found) != 1 or not isinstance(found[0], dict):
        message = "Parameters must carry exactly one resource in parameter 'resource'."
        raise InvalidInput([Issue("error", "required", message, "Parameters.parameter")], 400)
    notes = [
        Issue("warning", "not-supported", f"Parameter '{n}' is ignored: {why}")
        for n, why in _IGNORED.items()
        if any(p.get("name") == n for p in params)
    ]
    return json.dumps(found[0], ensure_ascii=False).encode("utf-8"), notes


_IGNORED = {
    "mode": "content is validated as it is, whatever the intended interaction.",
    "profile": "only the base R4 specification is checked, not profiles.",
}


def _peek(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return None
