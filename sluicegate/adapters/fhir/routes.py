"""FHIR R4 REST interactions under ``/fhir/r4`` (docs/fhir.md, "REST interactions").

Everything accepted becomes asynchronous work followed through ``/jobs/{id}``;
every error is an OperationOutcome and nothing is stored for rejected input.
Validation is CPU-bound (a 50 MB Bundle takes seconds), so it runs in a worker
thread and never stalls the event loop. Route order matters: the fixed paths
(``/metadata``, ``/$validate``, ``/Bundle``) are declared before the ``/{type}``
patterns that would match them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sluicegate.adapters.fhir.async_status import UnknownStatus, poll, status_token
from sluicegate.adapters.fhir.capability import WORK_TYPES, capability_statement
from sluicegate.adapters.fhir.conditional import keyed, parse_condition
from sluicegate.adapters.fhir.negotiate import negotiate, wants_async
from sluicegate.adapters.fhir.outcome import operation_outcome
from sluicegate.adapters.fhir.parse import parse_document
from sluicegate.adapters.fhir.transaction import (
    accepted_issues,
    async_issues,
    bundle_kind,
    plan_batch,
    plan_transaction,
    response_bundle,
)
from sluicegate.adapters.fhir.validate import check_media_type, load_json, validate_body
from sluicegate.adapters.fhir.wrapping import relocate, unwrap_parameters, wrap
from sluicegate.core.http import BodyTooLarge, read_body, runtime_of, submit
from sluicegate.core.ingest import Accepted
from sluicegate.core.interfaces import InvalidInput, Issue, WorkItem

if TYPE_CHECKING:
    from sluicegate.adapters.fhir import FhirAdapter

FHIR_JSON = "application/fhir+json"
P = ParamSpec("P")
T = TypeVar("T")


def outcome_response(issues: list[Issue], status: int) -> JSONResponse:
    return JSONResponse(operation_outcome(issues), status_code=status, media_type=FHIR_JSON)


def fhir_errors(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Turn the refusals a handler raises into OperationOutcome responses."""

    @functools.wraps(handler)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except BodyTooLarge as exc:
            return outcome_response([Issue("error", "too-costly", str(exc))], 413)
        except InvalidInput as exc:
            return outcome_response(exc.issues, exc.status)

    return wrapped


def build_router(adapter: FhirAdapter, name: str, tenant: str) -> APIRouter:
    router = APIRouter(prefix="/fhir/r4", tags=["fhir"])
    errors: dict[int | str, dict[str, Any]] = {s: {} for s in (400, 404, 406, 413, 415, 422)}

    @router.get("/metadata", summary="The CapabilityStatement of this server")
    @fhir_errors
    async def metadata(request: Request) -> Response:
        negotiate(request)
        base = str(request.base_url).rstrip("/") + "/fhir/r4"
        return JSONResponse(capability_statement(base), media_type=FHIR_JSON)

    @router.get("/_async/{token}", summary="Status of a request sent with Prefer: respond-async")
    async def async_status(token: str, request: Request) -> Response:
        try:
            status, body, progress = poll(runtime_of(request), tenant, token)
        except UnknownStatus:
            return outcome_response([Issue("error", "not-found", "unknown status location")], 404)
        response = JSONResponse(body, status_code=status, media_type=FHIR_JSON)
        if progress is not None:
            response.headers["X-Progress"] = progress
        return response

    @router.post("/$validate", summary="Validate a resource (or Parameters)", responses=errors)
    @fhir_errors
    async def validate_any(request: Request) -> Response:
        return await _validate(request, None)

    @router.post("/{rtype}/$validate", summary="Validate a resource of a type", responses=errors)
    @fhir_errors
    async def validate_type(rtype: str, request: Request) -> Response:
        return await _validate(request, rtype)

    @router.post("", summary="Process a transaction or batch Bundle", responses=errors)
    @fhir_errors
    async def post_base(request: Request) -> Response:
        body, content_type = await _read(request)
        doc = await _cpu(len(body), _load, body, content_type)
        kind = bundle_kind(doc)
        if kind is None:
            raise _not_for_base(doc)

        def parse(data: bytes) -> list[WorkItem]:
            return adapter.parse(data, content_type, tenant=tenant, channel=name)

        planner = plan_transaction if kind == "transaction" else plan_batch
        plan = await _cpu(len(body), planner, doc, parse)
        accepted = await submit(request, name, plan.items) if plan.items else []
        if accepted and wants_async(request):
            return _accepted(async_issues(plan, accepted), accepted, request)
        return JSONResponse(response_bundle(plan, accepted), media_type=FHIR_JSON)

    @router.post(
        "/Bundle",
        status_code=202,
        summary="Submit a Bundle with radiology work; answers 202 + Content-Location",
        responses=errors,
    )
    @fhir_errors
    async def post_bundle(request: Request) -> Response:
        body, content_type = await _read(request)
        doc = await _cpu(len(body), _load, body, content_type)
        if bundle_kind(doc) is not None:
            raise _refuse(422, "not-supported", _USE_BASE, "Bundle.type")
        # The JSON is read once: parse_document is parse_bundle_with_issues after load_json.
        items, notes = await _cpu(len(body), parse_document, doc, tenant=tenant, channel=name)
        accepted = await submit(request, name, items)
        return _accepted([*accepted_issues(accepted), *notes], accepted, request)

    @router.post(
        "/{rtype}",
        status_code=202,
        summary="Create one DiagnosticReport, ImagingStudy or ServiceRequest (as work)",
        responses=errors,
    )
    @fhir_errors
    async def post_resource(rtype: str, request: Request) -> Response:
        if rtype not in WORK_TYPES:
            raise _refuse(404, "not-supported", _CREATE_TYPES)
        body, content_type = await _read(request)
        resource = await _cpu(len(body), _load, body, content_type)
        if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
            raise _refuse(400, "invalid", "The body's resourceType does not match the URL.")
        try:
            items = await _cpu(
                len(body), adapter.parse, wrap(resource), content_type, tenant=tenant, channel=name
            )
        except InvalidInput as exc:
            raise InvalidInput([relocate(i, rtype) for i in exc.issues], exc.status) from None
        condition = request.headers.get("if-none-exist")
        if condition is not None:
            criteria = parse_condition(condition, "If-None-Exist")
            items = [keyed(item, rtype, criteria) for item in items]
        accepted = await submit(request, name, items)
        if condition is not None and accepted and not any(a.created for a in accepted):
            return _matched(accepted)
        return _accepted(accepted_issues(accepted), accepted, request)

    # Registered last, so any router mounted earlier keeps its own methods.
    @router.api_route("", methods=["PUT", "DELETE", "PATCH"], include_in_schema=False)
    @router.api_route("/{path:path}", methods=["PUT", "DELETE", "PATCH"], include_in_schema=False)
    async def unsupported(request: Request) -> Response:
        message = "Update, patch and delete are not supported; see /fhir/r4/metadata."
        return outcome_response([Issue("error", "not-supported", message)], 405)

    return router


_USE_BASE = "Post transaction and batch Bundles to the base URL /fhir/r4, not to /Bundle."
_CREATE_TYPES = (
    "Create is supported for DiagnosticReport, ImagingStudy and ServiceRequest here, "
    "for Bundle at /fhir/r4/Bundle; see /fhir/r4/metadata."
)


INLINE_BYTES = 64 * 1024


async def _cpu(size: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run parse/validate work for a body of ``size`` bytes.

    Small bodies run inline: a thread hop costs more than their parse (up to a
    GIL switch interval, 5 ms, under load). Large ones go to a thread so the
    event loop keeps serving other requests meanwhile.
    """
    if size <= INLINE_BYTES:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _read(request: Request) -> tuple[bytes, str | None]:
    negotiate(request)
    return await read_body(request), request.headers.get("content-type")


def _load(body: bytes, content_type: str | None) -> Any:
    """The JSON document, refused exactly as ``POST /Bundle`` refuses it."""
    check_media_type(content_type)
    return load_json(body)


async def _validate(request: Request, rtype: str | None) -> Response:
    """``$validate``: "All OK" when valid; 200 with the errors when not, 400/415 when
    the body could not be validated at all (validate_body decides)."""
    body, content_type = await _read(request)
    body, notes = unwrap_parameters(body, rtype)
    status, issues = await asyncio.to_thread(validate_body, body, content_type, rtype)
    if any(i.severity in ("error", "fatal") for i in issues):
        return outcome_response([*issues, *notes], status)
    return outcome_response([Issue("information", "informational", "All OK"), *notes, *issues], 200)


def _accepted(issues: list[Issue], accepted: list[Accepted], request: Request) -> JSONResponse:
    """202 and where to follow the work: with ``Prefer: respond-async`` the FHIR async
    status endpoint covering every job, otherwise the first job's ``/jobs/{id}``."""
    response = outcome_response(issues, 202)
    if wants_async(request):
        token = status_token(runtime_of(request).sealer, [a.job_id for a in accepted])
        response.headers["Content-Location"] = f"/fhir/r4/_async/{token}"
    else:
        response.headers["Content-Location"] = f"/jobs/{accepted[0].job_id}"
    return response


def _matched(accepted: list[Accepted]) -> JSONResponse:
    """A conditional create that matched: 200 with the existing job, nothing created."""
    text = f"a resource matching If-None-Exist was created before, as job {accepted[0].job_id}"
    response = outcome_response([Issue("information", "informational", text)], 200)
    response.headers["Location"] = response.headers["Content-Location"] = (
        f"/jobs/{accepted[0].job_id}"
    )
    return response


def _not_for_base(doc: Any) -> InvalidInput:
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        message = (
            "Only transaction and batch Bundles are processed at the base URL; post "
            "collection, message and document Bundles to /fhir/r4/Bundle."
        )
        return _refuse(422, "not-supported", message, "Bundle.type")
    message = "Expected a transaction or batch Bundle; post other Bundles to /fhir/r4/Bundle."
    return _refuse(400, "structure", message)


def _refuse(status: int, code: str, message: str, location: str | None = None) -> InvalidInput:
    return InvalidInput([Issue("error", code, message, location)], status=status)
