"""Transform and transmit steps: what a worker does with one job.

``execute`` is idempotent by job id. It claims the job in a short transaction
(queued → running, lease set), runs the steps outside any transaction
(classify, protect, generate through the router, verify, restore, render), then
finishes in another short transaction that only succeeds if this worker
still holds the job. A duplicate delivery finds the job running or finished
and does nothing; a worker that outlived its lease cannot write a second
result (``results.job_id`` is unique as well). The claim and the success are
written by :mod:`.claims`, for one job here or for a batch (:mod:`.batch`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import structlog
from sqlmodel import Session, col, select

from sluicegate.core import audit, claims, metrics, privacy, protect, webhooks
from sluicegate.core.claims import Attempt, Claim, Success, succeed_many
from sluicegate.core.claims import result_aad as result_aad  # where callers look for it
from sluicegate.core.db import transaction
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Generation,
    GenerationFailed,
    Publication,
    Rendered,
    WorkItem,
    Zone,
)
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import Job, JobStatus, OutboxMessage, utcnow

log = structlog.get_logger("sluicegate.pipeline")


def backoff_s(runtime: Runtime, attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    cfg = runtime.settings.pipeline
    ceiling = min(cfg.retry_backoff_max_s, cfg.retry_backoff_s * math.pow(2, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _lock_job(session: Session, job_id: str) -> Job | None:
    return session.execute(
        select(Job).where(Job.id == job_id).with_for_update()
    ).scalar_one_or_none()


def claim(runtime: Runtime, job_id: str) -> Claim | None:
    """queued → running, or None when there is nothing for this delivery to do."""
    claimed = claim_many(runtime, [job_id])[0]
    return claimed if isinstance(claimed, Claim) else None


def claim_many(runtime: Runtime, job_ids: Sequence[str]) -> list[Claim | str]:
    """Claim each job (one transaction for all); a str says what happened instead."""
    out: list[Claim | str] = []
    for started in claims.start_many(runtime, job_ids):
        if started is None:
            out.append("skipped")
            continue
        try:
            item = started.open(runtime.sealer)
        except Exception as exc:  # unreadable (a key gone from config): end it, visibly
            metrics.job_error(started.task, "internal")
            error = f"internal error: work item cannot be opened ({type(exc).__name__})"
            out.append(_fail(runtime, started.attempt, error))
            continue
        complete = getattr(runtime.adapters.get(started.adapter), "complete_item", None)
        if complete is not None:
            try:
                item = complete(item)
            except Exception as exc:  # a bug or a stored item it cannot read: end it, visibly
                metrics.job_error(started.task, "internal")
                error = f"internal error: work item cannot be completed ({type(exc).__name__})"
                out.append(_fail(runtime, started.attempt, error))
                continue
        a = started.attempt
        out.append(Claim(a.job_id, a.attempt, a.tenant, item, started.adapter))
    return out


def execute(runtime: Runtime, job_id: str) -> str:
    """Run one delivery of a job; returns what happened (for logs and tests)."""
    claimed = claim_many(runtime, [job_id])[0]
    if not isinstance(claimed, Claim):
        log.info("job.skipped", job_id=job_id)
        return claimed
    log.info("job.started", job_id=job_id, attempt=claimed.attempt)
    return finish(runtime, claimed, lambda: _transform(runtime, claimed))


Work = Callable[[], tuple[Generation, Rendered, list[Publication]]]


def finish(runtime: Runtime, claimed: Claim, work: Work) -> str:
    """Run a claimed job's remaining steps and end the attempt by what they came to."""
    ended = run_steps(runtime, claimed, work)
    return ended if isinstance(ended, str) else succeed_many(runtime, [ended])[0]


def run_steps(runtime: Runtime, claimed: Claim, work: Work) -> Success | str:
    """Run the remaining steps: a success to store, or the attempt ended by what they raised."""
    task = claimed.item.task
    try:
        generation, rendered, published = work()
    except BackendUnavailable as exc:
        timed_out = "deadline" in str(exc) or "timed out" in str(exc)
        metrics.job_error(task, "backend_timeout" if timed_out else "backend_unavailable")
        return _retry_or_fail(runtime, claimed, str(exc))
    except GenerationFailed as exc:
        metrics.job_error(
            task, "payment_required" if "HTTP 402" in str(exc) else "backend_rejected"
        )
        return _fail(runtime, claimed, f"generation failed: {exc}")
    except Exception as exc:  # a bug must end the job visibly, never hang it
        log.exception("job.crashed", job_id=claimed.job_id)
        metrics.job_error(task, "internal")
        return _fail(runtime, claimed, f"internal error: {type(exc).__name__}")
    return Success(claimed, generation, rendered, published)


def _transform(runtime: Runtime, claimed: Claim) -> tuple[Generation, Rendered, list[Publication]]:
    """classify → protect → generate (→ verify, once more) → restore → render → publish."""
    prepared = prepare(runtime, claimed)
    generation = runtime.run(runtime.router().generate(prepared.request))
    return complete(runtime, claimed, prepared, generation)


def prepare(runtime: Runtime, claimed: Claim) -> protect.Prepared:
    """classify → protect: the request this job may send, and its vault if de-identified."""
    item = claimed.item
    sensitivity, reasons = privacy.classify(item)
    _record(runtime, claimed, "classified", sensitivity=sensitivity.value, reasons=reasons)
    if runtime.router().cloud_eligible(item.task, item.channel):
        _flush(runtime, claimed)  # protect writes its own events (and the vault) next
    return protect.prepare(runtime, claimed.job_id, claimed.tenant, item, sensitivity)


def complete(
    runtime: Runtime, claimed: Claim, prepared: protect.Prepared, generation: Generation
) -> tuple[Generation, Rendered, list[Publication]]:
    """A model's answer → restore → verify (one regeneration) → render → publish."""
    item = claimed.item
    adapter = runtime.adapter(claimed.adapter)
    generation = _answered(runtime, claimed, prepared, generation)
    problems = _verify(adapter, item, generation)
    if problems:
        # One regeneration; if the draft is still wrong the adapter's render flags it.
        _record(runtime, claimed, "verification_failed", problems=len(problems), regenerate=True)
        generation = _generate(runtime, claimed, prepared)
        problems = _verify(adapter, item, generation)
        if problems:
            _record(runtime, claimed, "verification_failed", problems=len(problems), flagged=True)
    rendered = adapter.render(item, generation, claimed.job_id)
    publish = getattr(adapter, "publications", None)
    published = list(publish(item, rendered, claimed.job_id)) if publish else []
    return generation, rendered, published


def _generate(runtime: Runtime, claimed: Claim, prepared: protect.Prepared) -> Generation:
    generation = runtime.run(runtime.router().generate(prepared.request))
    return _answered(runtime, claimed, prepared, generation)


def _answered(
    runtime: Runtime, claimed: Claim, prepared: protect.Prepared, generation: Generation
) -> Generation:
    """Put the call on record (routed, model_call sealed), then re-identify on-prem."""
    request = prepared.request
    _record(
        runtime,
        claimed,
        "routed",
        backend=generation.backend_id,
        zone=generation.zone.value,
        sensitivity=prepared.request.sensitivity.value,
        cleared=prepared.request.clearance is not None,
        reason=generation.route_reason,
        from_cache=generation.from_cache,
    )
    # The full call on record, sealed: parameters and text exactly as sent and
    # received (de-identified text for the cloud, before re-identification).
    call = {"task": request.task, "inputs": request.inputs, "max_tokens": request.max_tokens}
    _record(
        runtime,
        claimed,
        "model_call",
        backend=generation.backend_id,
        zone=generation.zone.value,
        model=generation.model,
        model_version=generation.model_version,
        latency_ms=round(generation.latency_s * 1000),
        finish_reason=generation.finish_reason,
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=generation.completion_tokens,
        prompt_cache_hit_tokens=generation.prompt_cache_hit_tokens,
        from_cache=generation.from_cache,
        payload=audit.sealed_payload(
            runtime.sealer, {"request": call, "response": generation.text}
        ),
    )
    if generation.zone != Zone.ONPREM or prepared.vault is not None:
        _flush(runtime, claimed)  # a call that left the building is on record at once
    return protect.restore(runtime, claimed.job_id, claimed.tenant, generation, prepared.vault)


def _verify(adapter: object, item: WorkItem, generation: Generation) -> list[str]:
    """The adapter's own check of a draft (e.g. every number grounded in the facts)."""
    verify = getattr(adapter, "verify", None)
    return list(verify(item, generation)) if verify is not None else []


def _record(runtime: Runtime, claimed: Claim, kind: str, **data: object) -> None:
    """Owe an audit event of this attempt; written with the attempt's next transaction."""
    claimed.pending.append((kind, claimed.job_id, dict(data)))


def _flush(runtime: Runtime, claimed: Claim) -> None:
    """Write the events owed so far in their own transaction."""
    if claimed.pending:
        with transaction(runtime.engine) as session:
            _write_pending(session, claimed)


def _write_pending(
    session: Session, claimed: Attempt, *last: tuple[str, str | None, dict[str, Any]]
) -> None:
    """Append the owed events (then ``last``) to the chain in the caller's transaction."""
    events = [*claimed.pending, *last]
    claimed.pending.clear()
    if events:
        session.flush()
        audit.append(session.connection(), claimed.tenant, events)


def _still_ours(session: Session, claimed: Attempt) -> Job | None:
    job = _lock_job(session, claimed.job_id)
    if job is None or job.status != JobStatus.RUNNING or job.attempts != claimed.attempt:
        return None
    return job


def _succeed(
    runtime: Runtime,
    claimed: Claim,
    generation: Generation,
    rendered: Rendered,
    published: Sequence[Publication] = (),
) -> str:
    return succeed_many(runtime, [Success(claimed, generation, rendered, published)])[0]


def _retry_or_fail(runtime: Runtime, claimed: Attempt, error: str) -> str:
    with transaction(runtime.engine) as session:
        job = _still_ours(session, claimed)
        _write_pending(session, claimed)
        if job is None:
            return "discarded"
        if job.attempts >= job.max_attempts:
            return _end(
                runtime,
                session,
                job,
                JobStatus.FAILED,
                f"gave up after {job.attempts} attempts; last error: {error}",
            )
        delay = backoff_s(runtime, job.attempts)
        now = utcnow()
        job.status = JobStatus.QUEUED
        job.last_error = error
        job.updated_at = now
        job.not_before = job.due_at = now + timedelta(seconds=delay)
        audit.record(
            session,
            job.tenant,
            "retry_scheduled",
            job.id,
            attempt=job.attempts,
            delay_s=round(delay, 3),
            error=error,
        )
    log.warning("job.retry_scheduled", job_id=claimed.job_id, delay_s=round(delay, 3), error=error)
    return "retrying"


def _fail(runtime: Runtime, claimed: Attempt, error: str) -> str:
    with transaction(runtime.engine) as session:
        job = _still_ours(session, claimed)
        _write_pending(session, claimed)
        if job is None:
            return "discarded"
        return _end(runtime, session, job, JobStatus.FAILED, error)


def _end(runtime: Runtime, session: Session, job: Job, status: JobStatus, error: str) -> str:
    now = utcnow()
    job.status = status
    job.last_error = error
    job.finished_at = job.updated_at = now
    job.due_at = job.not_before = None
    audit.record(session, job.tenant, status.value, job.id, attempts=job.attempts, error=error)
    webhooks.enqueue(session, runtime, job)
    metrics.job_finished(job.task, "none", status.value, metrics.since(job.created_at))
    log.warning("job.ended", job_id=job.id, status=status.value, error=error)
    return status.value


def sweep(runtime: Runtime, limit: int = 100) -> int:
    """Re-queue jobs whose deadline passed; returns how many were touched.

    A queued job past its deadline lost its message (or finished its retry
    backoff): publish it again. A running job past its lease lost its worker:
    queue it again, or dead-letter it when it has had all its attempts.
    """
    now = utcnow()
    touched = 0
    with transaction(runtime.engine) as session:
        query = (
            select(Job)
            .where(col(Job.status).in_([JobStatus.QUEUED, JobStatus.RUNNING]))
            .where(col(Job.due_at) <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        for job in session.execute(query).scalars():
            touched += 1
            if job.status == JobStatus.RUNNING:
                lost = f"worker lost during attempt {job.attempts} (lease expired)"
                metrics.job_error(job.task, "worker_lost")
                if job.attempts >= job.max_attempts:
                    _end(runtime, session, job, JobStatus.DEAD, lost)
                    continue
                job.status = JobStatus.QUEUED
                job.last_error = lost
                audit.record(session, job.tenant, "requeued", job.id, reason=lost)
            job.updated_at = now
            job.due_at = now + timedelta(seconds=runtime.settings.pipeline.lease_s)
            waiting = session.execute(
                select(col(OutboxMessage.id)).where(
                    OutboxMessage.job_id == job.id,
                    col(OutboxMessage.published_at).is_(None),
                )
            ).first()
            if waiting is None:  # the broker may be down: one waiting message is enough
                session.add(OutboxMessage(job_id=job.id))
    return touched
