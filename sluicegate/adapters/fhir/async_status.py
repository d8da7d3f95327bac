"""The FHIR asynchronous request pattern's status endpoint.

A request sent with ``Prefer: respond-async`` gets ``202`` and a
``Content-Location`` of ``/fhir/r4/_async/{token}``. Polling it answers
``202`` with ``X-Progress`` while any of its jobs is still queued or running,
then ``200`` with a ``batch-response`` Bundle: one entry per job, ``201
Created`` with the Location of the DiagnosticReport it produced, or an error
status with an OperationOutcome. The token names the jobs and carries a keyed
MAC, so it needs no table and cannot be forged to reach other jobs.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlmodel import Session, col, select

from sluicegate.adapters.fhir.outcome import operation_outcome
from sluicegate.core.crypto import Sealer
from sluicegate.core.interfaces import Issue
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import Job, JobStatus, PublishedResource

_PURPOSE = "fhir-async-status"
_MAC_CHARS = 32


class UnknownStatus(LookupError):
    """The token is malformed, forged, or names jobs that do not exist."""


def status_token(sealer: Sealer, job_ids: list[str]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(job_ids).encode()).decode().rstrip("=")
    return f"{payload}.{sealer.token(_PURPOSE, payload)[:_MAC_CHARS]}"


def job_ids_of(sealer: Sealer, token: str) -> list[str]:
    payload, _, mac = token.partition(".")
    if not payload or mac != sealer.token(_PURPOSE, payload)[:_MAC_CHARS]:
        raise UnknownStatus(token)
    try:
        ids = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        raise UnknownStatus(token) from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise UnknownStatus(token)
    return ids


def poll(runtime: Runtime, tenant: str, token: str) -> tuple[int, dict[str, Any], str | None]:
    """(HTTP status, body, X-Progress) for a status poll."""
    ids = job_ids_of(runtime.sealer, token)
    with Session(runtime.engine) as session:
        jobs = {j.id: j for j in session.exec(select(Job).where(col(Job.id).in_(ids))).all()}
        reports = {
            p.job_id: p.resource_id
            for p in session.exec(
                select(PublishedResource).where(
                    col(PublishedResource.job_id).in_(ids),
                    PublishedResource.resource_type == "DiagnosticReport",
                )
            ).all()
        }
    if len(jobs) != len(ids) or any(j.tenant != tenant for j in jobs.values()):
        raise UnknownStatus(token)
    done = [j for j in jobs.values() if JobStatus(j.status).terminal]
    if len(done) < len(ids):
        progress = f"{len(done)} of {len(ids)} jobs finished"
        message = f"in progress: {progress}"
        return 202, operation_outcome([Issue("information", "informational", message)]), progress
    entries = [_entry(jobs[i], reports.get(i)) for i in ids]
    return 200, {"resourceType": "Bundle", "type": "batch-response", "entry": entries}, None


def _entry(job: Job, report_id: str | None) -> dict[str, Any]:
    if job.status == JobStatus.SUCCEEDED and report_id is not None:
        return {
            "response": {
                "status": "201 Created",
                "location": f"DiagnosticReport/{report_id}/_history/1",
            }
        }
    issue = Issue("error", "exception", f"job {job.id} ended {job.status}: {job.last_error}")
    return {
        "response": {"status": "500 Internal Server Error", "outcome": operation_outcome([issue])}
    }
