"""FHIR read and search of what Sluicegate produced, for HIS systems that poll.

``GET /fhir/r4/{DiagnosticReport|Provenance}/{id}`` and searches by
``based-on``, ``subject``, ``subject:identifier``, ``target`` and
``_lastUpdated`` (prefixes eq, gt, ge, lt, le). Values are matched through the
keyed hashes core keeps (:mod:`sluicegate.core.publications`), so a search by
MRN works although no MRN is stored in plaintext. Unknown parameters are
ignored, as FHIR's default lenient handling allows, and reported in an
``outcome`` entry of the searchset.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sluicegate.adapters.fhir.outcome import operation_outcome
from sluicegate.core import publications
from sluicegate.core.http import runtime_of
from sluicegate.core.interfaces import Issue

FHIR_JSON = "application/fhir+json"
READABLE = ("DiagnosticReport", "Provenance")
SEARCH_PARAMS: dict[str, frozenset[str]] = {
    "DiagnosticReport": frozenset({"based-on", "subject", "subject:identifier", "patient"}),
    "Provenance": frozenset({"target"}),
}
RESULT_PARAMS = frozenset({"_lastUpdated", "_count", "_format"})
MAX_COUNT = 500


class BadSearch(ValueError):
    """A search parameter value we cannot interpret (400 with an OperationOutcome)."""


def _outcome(status: int, code: str, message: str) -> JSONResponse:
    issue = Issue("error", code, message)
    return JSONResponse(operation_outcome([issue]), status_code=status, media_type=FHIR_JSON)


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _with_meta(found: publications.Found) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads(found.body)
    resource.setdefault("meta", {})["lastUpdated"] = _instant(found.last_updated)
    resource["meta"]["versionId"] = "1"
    return resource


def parse_last_updated(values: list[str]) -> tuple[datetime | None, datetime | None]:
    """``_lastUpdated`` values → (inclusive lower bound, exclusive upper bound)."""
    lower: datetime | None = None
    upper: datetime | None = None
    for raw in values:
        prefix, text = (
            (raw[:2], raw[2:]) if raw[:2] in {"eq", "gt", "ge", "lt", "le"} else ("eq", raw)
        )
        start, end = _period_of(text)
        if prefix in ("ge", "eq"):
            lower = max(lower, start) if lower else start
        if prefix == "gt":
            lower = max(lower, end) if lower else end
        if prefix in ("le", "eq"):
            upper = min(upper, end) if upper else end
        if prefix == "lt":
            upper = min(upper, start) if upper else start
    return lower, upper


def _period_of(text: str) -> tuple[datetime, datetime]:
    """The instant range a FHIR date/dateTime value stands for."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day, day + timedelta(days=1)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadSearch(
            f"_lastUpdated value is not a FHIR date or dateTime: {text[:40]!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, moment + timedelta(seconds=1)


def build_read_router(tenant: str) -> APIRouter:
    router = APIRouter(prefix="/fhir/r4", tags=["fhir"])

    @router.get("/{resource_type}/{resource_id}", summary="Read a produced resource")
    def read(resource_type: str, resource_id: str, request: Request) -> JSONResponse:
        if resource_type not in READABLE:
            return _outcome(404, "not-supported", f"{resource_type} is not readable here")
        runtime = runtime_of(request)
        found = publications.read(
            runtime.engine, runtime.sealer, tenant, resource_type, resource_id
        )
        if found is None:
            return _outcome(404, "not-found", f"{resource_type}/{resource_id} is not known")
        response = JSONResponse(_with_meta(found), media_type=FHIR_JSON)
        response.headers["ETag"] = 'W/"1"'
        response.headers["Last-Modified"] = found.last_updated.strftime("%a, %d %b %Y %H:%M:%S GMT")
        return response

    @router.get("/{resource_type}", summary="Search produced resources")
    def search(resource_type: str, request: Request) -> JSONResponse:
        if resource_type not in SEARCH_PARAMS:
            return _outcome(404, "not-supported", f"search on {resource_type} is not supported")
        query = request.query_params
        supported = SEARCH_PARAMS[resource_type]
        equals = {p: query.getlist(p) for p in supported if p in query}
        if "patient" in equals:  # DiagnosticReport's patient is its subject
            equals.setdefault("subject", []).extend(equals.pop("patient"))
        ignored = sorted(set(query) - supported - RESULT_PARAMS)
        try:
            after, before = parse_last_updated(query.getlist("_lastUpdated"))
            count = min(int(query.get("_count", "100")), MAX_COUNT)
        except (BadSearch, ValueError) as exc:
            return _outcome(400, "invalid", str(exc))
        runtime = runtime_of(request)
        found = publications.search(
            runtime.engine,
            runtime.sealer,
            tenant,
            resource_type,
            equals=equals,
            updated_after=after,
            updated_before=before,
            limit=max(count, 0),
        )
        base = str(request.base_url).rstrip("/") + "/fhir/r4"
        return JSONResponse(_searchset(base, request, found, ignored), media_type=FHIR_JSON)

    return router


def _searchset(
    base: str, request: Request, found: list[publications.Found], ignored: list[str]
) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/{f.resource_type}/{f.resource_id}",
            "resource": _with_meta(f),
            "search": {"mode": "match"},
        }
        for f in found
    ]
    if ignored:
        note = Issue(
            "warning",
            "not-supported",
            "ignored unsupported search parameters: " + ", ".join(ignored),
        )
        entries.append({"resource": operation_outcome([note]), "search": {"mode": "outcome"}})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": entries,
    }
