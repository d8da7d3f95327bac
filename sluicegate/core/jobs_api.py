"""Job status and result endpoints: how senders learn what became of their input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session, select

from sluicegate.core import audit
from sluicegate.core.audit import event_view
from sluicegate.core.db import transaction
from sluicegate.core.http import runtime_of
from sluicegate.core.pipeline import result_aad
from sluicegate.core.problems import problem
from sluicegate.core.security.auth import principal_of
from sluicegate.core.tables import Job, JobStatus, Result, WorkItemRow

router = APIRouter(tags=["jobs"])


def _ts(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def job_view(job: Job) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "task": job.task,
        "channel": job.channel,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "created_at": _ts(job.created_at),
        "updated_at": _ts(job.updated_at),
        "started_at": _ts(job.started_at),
        "finished_at": _ts(job.finished_at),
    }
    if job.status == JobStatus.SUCCEEDED:
        view["result"] = f"/jobs/{job.id}/result"
    if job.external_location:
        view["external_location"] = job.external_location  # where write-back filed it
    return view


@router.get("/jobs/{job_id}", summary="Status of one job")
def get_job(job_id: str, request: Request) -> Response:
    with Session(runtime_of(request).engine) as session:
        job = visible_job(session, request, job_id)
    if job is None:
        return problem(404, "Job not found", f"no job with id {job_id!r}")
    return JSONResponse(job_view(job))


def visible_job(session: Session, request: Request, job_id: str) -> Job | None:
    """The job if the caller may see it (its tenant and channel); else it looks absent (404)."""
    job = session.get(Job, job_id)
    principal = principal_of(request)
    if job is None or (
        principal is not None
        and (job.tenant != principal.tenant or not principal.may_use(job.channel))
    ):
        return None
    return job


@router.get("/jobs/{job_id}/audit", summary="The audit trail of one job")
def get_job_audit(job_id: str, request: Request, reveal: bool = False) -> Response:
    """``?reveal=true`` opens sealed payloads (model calls); the reveal is itself audited."""
    runtime = runtime_of(request)
    with Session(runtime.engine) as session:
        job = visible_job(session, request, job_id)
        if job is None:
            return problem(404, "Job not found", f"no job with id {job_id!r}")
        # Its own events and its bulk batch's one (linked by index, not by text).
        events = audit.job_trail(session, job.tenant, job_id)
    views = [event_view(e) for e in events]
    if reveal:
        principal = principal_of(request)
        who = principal.key_id if principal is not None else None
        with transaction(runtime.engine) as session:
            audit.record(session, job.tenant, "payload_revealed", job_id, key_id=who)
        views = [{**v, "data": audit.reveal(runtime.sealer, v["data"])} for v in views]
    return JSONResponse({"job_id": job_id, "events": views})


@router.get("/jobs/{job_id}/result", summary="The rendered output of a succeeded job")
def get_result(job_id: str, request: Request, format: str | None = None) -> Response:
    """``?format=`` asks the job's adapter for another rendering (its ``render_as``)."""
    runtime = runtime_of(request)
    with Session(runtime.engine) as session:
        job = visible_job(session, request, job_id)
        if job is None:
            return problem(404, "Job not found", f"no job with id {job_id!r}")
        if job.status != JobStatus.SUCCEEDED:
            return problem(
                409,
                "No result",
                f"job is {job.status}; a result exists only once it succeeded",
                job_status=job.status,
                last_error=job.last_error,
            )
        result = session.exec(select(Result).where(Result.job_id == job_id)).one()
        item = session.get(WorkItemRow, job.work_item_id)
    body = runtime.sealer.open(result.sealed_body, result_aad(job_id))
    if format is None:
        return Response(body, media_type=result.media_type)
    adapter = runtime.adapters.get(item.adapter) if item is not None else None
    render_as = getattr(adapter, "render_as", None)
    rendered = render_as(format, body, result.media_type) if render_as is not None else None
    if rendered is None:
        return problem(406, "Format not available", f"no {format!r} rendering of this result")
    return Response(rendered.body, media_type=rendered.media_type)
