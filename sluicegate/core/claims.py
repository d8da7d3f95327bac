"""The database side of an attempt, for one job or a batch: claim, then store successes.

A worker's cost per job was dominated by ORM round trips: a session, a
locked read, flushes per row, an audit head lock per transaction. Here a
batch is claimed in ONE transaction (jobs locked in id order, one UPDATE, one
audit append for their ``started`` events) and its successes are stored in
ONE transaction (results, publications, webhook rows, one UPDATE, one audit
append). Each job is still judged on its own under the lock: one that is not
queued (a duplicate delivery) is not claimed, and a success whose job is no
longer held by this attempt (its lease expired, another worker took it) is
discarded, never stored — so a batch changes the cost, not the guarantees.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Table, func, insert, select, update

from sluicegate.core import audit, metrics, publications, webhooks
from sluicegate.core.crypto import Sealer
from sluicegate.core.ingest import work_item_aad
from sluicegate.core.interfaces import Generation, Publication, Rendered, WorkItem
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import Job, JobStatus, Result, WorkItemRow, new_id, utcnow

log = structlog.get_logger("sluicegate.pipeline")

Event = tuple[str, str | None, dict[str, Any]]


@dataclass(frozen=True)
class Attempt:
    """One attempt at a job, as its database rows know it."""

    job_id: str
    attempt: int
    tenant: str
    # Audit events of this attempt not yet written: they go into the next
    # transaction (the one that ends the attempt), so an on-prem job appends to
    # the chain once, not six times. They are written at once before another
    # step's own transaction and when a model call left the building.
    pending: list[Event] = field(default_factory=list, kw_only=True)


@dataclass(frozen=True)
class Claim(Attempt):
    item: WorkItem
    adapter: str


@dataclass(frozen=True)
class Started:
    """A job claimed for this attempt whose sealed work item is still to be opened."""

    attempt: Attempt
    task: str
    adapter: str
    item_id: str
    sealed: bytes

    def open(self, sealer: Sealer) -> WorkItem:
        """The work item (raises when it cannot be opened, e.g. its key is gone)."""
        opened = sealer.open(self.sealed, work_item_aad(self.item_id))
        return WorkItem(**json.loads(opened))


@dataclass(frozen=True)
class Success:
    """A job whose steps all went well, waiting to be stored."""

    claimed: Claim
    generation: Generation
    rendered: Rendered
    published: Sequence[Publication] = ()


def result_aad(job_id: str) -> bytes:
    return f"results:{job_id}".encode()


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def start_many(runtime: Runtime, job_ids: Sequence[str]) -> list[Started | None]:
    """queued → running for each job that is claimable now (None for the others), in order.

    "started" is written with the claim, at the time it happens: an attempt
    whose worker dies still has its start on record (a regulator's question is
    "who touched this, when"). The attempt's later events are batched.
    """
    jobs, items = _table(Job), _table(WorkItemRow)
    now = utcnow()
    with runtime.engine.begin() as conn:
        rows = conn.execute(
            select(
                jobs.c.id,
                jobs.c.tenant,
                jobs.c.task,
                jobs.c.status,
                jobs.c.attempts,
                jobs.c.not_before,
                items.c.id.label("item_id"),
                items.c.sealed,
                items.c.adapter,
            )
            .join(items, items.c.id == jobs.c.work_item_id)
            .where(jobs.c.id.in_(set(job_ids)))
            .order_by(jobs.c.id)  # one lock order for every worker: no deadlocks
            .with_for_update(of=jobs)
        ).all()
        ready: dict[str, Any] = {r.id: r for r in rows if _claimable(r, now)}
        if not ready:
            return [None] * len(job_ids)
        lease = timedelta(seconds=runtime.settings.pipeline.lease_s)
        conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(list(ready)))
            .values(
                status=JobStatus.RUNNING.value,
                attempts=jobs.c.attempts + 1,
                started_at=func.coalesce(jobs.c.started_at, now),
                updated_at=now,
                due_at=now + lease,
                not_before=None,
            )
        )
        events: dict[str, list[Event]] = {}
        for r in ready.values():
            events.setdefault(r.tenant, []).append(("started", r.id, {"attempt": r.attempts + 1}))
        for tenant, tenant_events in events.items():
            audit.append(conn, tenant, tenant_events)
    out: list[Started | None] = []
    for job_id in job_ids:
        r = ready.pop(job_id, None)  # a job named twice in a batch runs once
        if r is None:
            out.append(None)
            continue
        attempt = Attempt(r.id, r.attempts + 1, r.tenant)
        out.append(Started(attempt, r.task, r.adapter, r.item_id, r.sealed))
    return out


def _claimable(row: Any, now: Any) -> bool:
    if row.status != JobStatus.QUEUED:
        return False  # running elsewhere or finished: a duplicate delivery
    # not_before in the future: an early duplicate of a retry still in backoff
    return row.not_before is None or row.not_before <= now


def succeed_many(runtime: Runtime, done: Sequence[Success]) -> list[str]:
    """Store every success in one transaction; returns each job's outcome, in order.

    If the shared transaction fails, each success is stored in a transaction
    of its own, so that one bad row costs only its own job.
    """
    if not done:
        return []
    try:
        outcomes = _store(runtime, done)
    except Exception as exc:
        if len(done) == 1:
            raise  # the task fails visibly; the job's lease brings it back
        log.warning("batch.store_failed_one_by_one", jobs=len(done), error=type(exc).__name__)
        return [_store_alone(runtime, one) for one in done]
    for success, outcome in zip(done, outcomes, strict=True):
        success.claimed.pending.clear()
        if outcome == JobStatus.SUCCEEDED.value:
            log.info(
                "job.succeeded",
                job_id=success.claimed.job_id,
                backend=success.generation.backend_id,
            )
        else:
            log.warning("job.lost_ownership", job_id=success.claimed.job_id)
    return outcomes


def _store_alone(runtime: Runtime, success: Success) -> str:
    """One success in its own transaction; if even that fails, the job is left
    running: its lease expires and the sweeper queues it again, as for a lost worker."""
    try:
        return succeed_many(runtime, [success])[0]
    except Exception as exc:  # no traceback: SQL errors quote their parameters
        log.error("job.store_failed", job_id=success.claimed.job_id, error=type(exc).__name__)
        return "store_failed"


def _store(runtime: Runtime, done: Sequence[Success]) -> list[str]:
    jobs = _table(Job)
    now = utcnow()
    with runtime.engine.begin() as conn:
        held: dict[str, Any] = {
            r.id: r
            for r in conn.execute(
                select(jobs.c.id, jobs.c.status, jobs.c.attempts, jobs.c.channel, jobs.c.created_at)
                .where(jobs.c.id.in_({s.claimed.job_id for s in done}))
                .order_by(jobs.c.id)
                .with_for_update()
            ).all()
        }
        ours: list[tuple[Success, Any]] = []
        events: dict[str, list[Event]] = {}
        for s in done:
            row = held.pop(s.claimed.job_id, None)  # a job twice in one batch is stored once
            tenant_events = events.setdefault(s.claimed.tenant, [])
            tenant_events.extend(s.claimed.pending)
            if row is None or row.status != JobStatus.RUNNING or row.attempts != s.claimed.attempt:
                continue  # this attempt lost the job: its events stay on record, nothing else
            ours.append((s, row))
            succeeded = {
                "media_type": s.rendered.media_type,
                "published": [f"{p.resource_type}/{p.resource_id}" for p in s.published],
            }
            tenant_events.append(("succeeded", s.claimed.job_id, succeeded))
        if ours:
            _write_successes(conn, runtime, ours, now)
        for tenant, tenant_events in events.items():
            audit.append(conn, tenant, tenant_events)
    stored = {id(s) for s, _ in ours}
    for s, held_row in ours:
        task, zone = s.claimed.item.task, s.generation.zone.value
        metrics.job_finished(task, zone, "succeeded", metrics.since(held_row.created_at))
    return [JobStatus.SUCCEEDED.value if id(s) in stored else "discarded" for s in done]


def _write_successes(
    conn: Connection, runtime: Runtime, ours: Sequence[tuple[Success, Any]], now: Any
) -> None:
    sealer = runtime.sealer
    conn.execute(
        insert(_table(Result)),
        [
            _result_row(sealer.seal(s.rendered.body, result_aad(s.claimed.job_id)), s, now)
            for s, _ in ours
        ],
    )
    jobs = _table(Job)
    conn.execute(
        update(jobs)
        .where(jobs.c.id.in_([s.claimed.job_id for s, _ in ours]))
        .values(
            status=JobStatus.SUCCEEDED.value,
            finished_at=now,
            updated_at=now,
            due_at=None,
            last_error=None,
        )
    )
    publications.insert_many(
        conn, sealer, [(s.claimed.tenant, s.claimed.job_id, s.published) for s, _ in ours], now
    )
    deliveries: list[dict[str, Any]] = []
    for s, row in ours:
        deliveries += webhooks.owed(
            runtime, s.claimed.job_id, row.channel, JobStatus.SUCCEEDED, s.claimed.adapter
        )
    webhooks.insert_rows(conn, deliveries)


def _result_row(sealed: bytes, s: Success, now: Any) -> dict[str, Any]:
    g = s.generation
    return {
        "id": new_id(),
        "job_id": s.claimed.job_id,
        "media_type": s.rendered.media_type,
        "sealed_body": sealed,
        "backend_id": g.backend_id,
        "model": g.model,
        "zone": g.zone.value,
        "finish_reason": g.finish_reason,
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": g.completion_tokens,
        "latency_ms": round(g.latency_s * 1000),
        "model_version": g.model_version or None,
        "prompt_cache_hit_tokens": g.prompt_cache_hit_tokens,
        "prompt_cache_miss_tokens": g.prompt_cache_miss_tokens,
        "from_cache": g.from_cache,
        "created_at": now,
    }
