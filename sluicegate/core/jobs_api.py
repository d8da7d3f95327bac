"""Job status and result endpoints: how senders learn what became of their input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session, select

from sluicegate.core.http import runtime_of
from sluicegate.core.pipeline import result_aad
from sluicegate.core.problems import problem
from sluicegate.core.tables import Job, JobStatus, Result

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
        job = session.get(Job, job_id)
    if job is None:
        return problem(404, "Job not found", f"no job with id {job_id!r}")
    return JSONResponse(job_view(job))


@router.get("/jobs/{job_id}/result", summary="The rendered output of a succeeded job")
def get_result(job_id: str, request: Request) -> Response:
    runtime = runtime_of(request)
    with Session(runtime.engine) as session:
        job = session.get(Job, job_id)
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
    body = runtime.sealer.open(result.sealed_body, result_aad(job_id))
    return Response(body, media_type=result.media_type)
