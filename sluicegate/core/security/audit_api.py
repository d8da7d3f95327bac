"""Audit trail over HTTP for the ``audit`` role: export and verify one's own tenant."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session

from sluicegate.core import audit
from sluicegate.core.http import runtime_of
from sluicegate.core.security.auth import tenant_filter

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/events", summary="Export audit events as JSON Lines or FHIR AuditEvents")
def export_events(
    request: Request,
    job_id: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    format: str = "jsonl",
) -> Response:
    with Session(runtime_of(request).engine) as session:
        rows = audit.export_rows(
            session,
            tenant_filter(request),
            job_id=job_id,
            channel=channel,
            since=since,
            until=until,
        )
    if format == "fhir":
        entries = [{"resource": audit.fhir_audit_event(e)} for e in rows]
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
        return JSONResponse(bundle, media_type="application/fhir+json")
    lines = "".join(json.dumps(audit.event_view(e), separators=(",", ":")) + "\n" for e in rows)
    return Response(lines, media_type="application/x-ndjson")


@router.get("/verify", summary="Verify the caller's tenant chain(s)")
def verify(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    tenant = tenant_filter(request)
    with Session(runtime.engine) as session:
        names = [tenant] if tenant is not None else audit.tenants(session)
        verdicts = [audit.verify(session, name, runtime.sealer) for name in names]
    return JSONResponse(
        {
            "ok": all(v.ok for v in verdicts),
            "tenants": [
                {
                    "tenant": v.tenant,
                    "ok": v.ok,
                    "events": v.events,
                    "first_bad_seq": v.first_bad_seq,
                    "reason": v.reason,
                }
                for v in verdicts
            ],
        }
    )
