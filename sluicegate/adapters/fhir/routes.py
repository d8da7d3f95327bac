"""FHIR R4 HTTP interactions: bundle ingress with the asynchronous request pattern.

Every error is an OperationOutcome; nothing is stored for rejected input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sluicegate.adapters.fhir.outcome import operation_outcome
from sluicegate.core.http import BodyTooLarge, read_body, submit
from sluicegate.core.interfaces import InvalidInput, Issue

if TYPE_CHECKING:
    from sluicegate.adapters.fhir import FhirAdapter

FHIR_JSON = "application/fhir+json"


def outcome_response(issues: list[Issue], status: int) -> JSONResponse:
    return JSONResponse(operation_outcome(issues), status_code=status, media_type=FHIR_JSON)


def build_router(adapter: FhirAdapter, name: str, tenant: str) -> APIRouter:
    router = APIRouter(prefix="/fhir/r4", tags=["fhir"])

    @router.post(
        "/Bundle",
        status_code=202,
        summary="Submit a Bundle with radiology work; answers 202 + Content-Location",
        responses={400: {}, 413: {}, 415: {}, 422: {}},
    )
    async def post_bundle(request: Request) -> JSONResponse:
        try:
            body = await read_body(request)
            items = adapter.parse(
                body, request.headers.get("content-type"), tenant=tenant, channel=name
            )
        except BodyTooLarge as exc:
            return outcome_response([Issue("error", "too-costly", str(exc))], 413)
        except InvalidInput as exc:
            return outcome_response(exc.issues, exc.status)
        accepted = await submit(request, name, items)
        locations = [f"/jobs/{a.job_id}" for a in accepted]
        issues = [
            Issue(
                "information",
                "informational",
                f"accepted as job {a.job_id}"
                + ("" if a.created else " (same content was accepted before)"),
            )
            for a in accepted
        ]
        response = outcome_response(issues, 202)
        response.headers["Content-Location"] = locations[0]
        return response

    return router
