"""Deliver step: tell a channel's webhook receiver that a job ended.

A delivery row is written in the same transaction that ends the job, so no
notification is lost; the relay loop sends due rows with retries and backoff
and dead-letters them after ``max_attempts`` (replayable from the CLI and
API). Requests are signed per the Standard Webhooks specification
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC>``).
The body names the job and where to fetch its result — never the result
itself, so no patient data travels to a receiver that has not authenticated.

The same rows carry write-backs (event ``writeback``): for a channel whose
adapter has a write-back policy, a succeeded job owes its result to the
sender's own system. Core opens the result and hands it to the adapter's
``write_back``, which does the protocol work; the Location it returns is
recorded on the job. Retries follow the adapter's policy, not the webhook's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy import Connection, Table, bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from sluicegate.core import audit, db, metrics
from sluicegate.core.config import WebhookConfig
from sluicegate.core.db import transaction
from sluicegate.core.ingest import open_item
from sluicegate.core.interfaces import DeliveryFailed, WriteBackPolicy
from sluicegate.core.runtime import Runtime
from sluicegate.core.security import callbacks
from sluicegate.core.tables import (
    Job,
    JobStatus,
    Result,
    WebhookDelivery,
    WorkItemRow,
    new_id,
    utcnow,
)

log = structlog.get_logger("sluicegate.webhooks")

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
WRITEBACK = "writeback"
SEND_CONCURRENCY = 16  # webhook requests in flight per relay round
DELIVERY_PAGE = 50  # due deliveries attempted per relay round
DELIVERY_CLAIM_S = 300.0  # a round's claim on its deliveries; longer than any send


@dataclass(frozen=True)
class Retry:
    """How often and how patiently one kind of delivery is retried."""

    max_attempts: int | None  # None: until the receiver answers
    backoff_s: float
    backoff_max_s: float
    schedule_s: tuple[float, ...] = ()  # fixed delays per retry, when configured


def enqueue(session: Session, runtime: Runtime, job: Job, adapter: str | None = None) -> None:
    """Owe the channel its notices of ``job``'s end (inside the caller's transaction).

    ``adapter`` (the job's adapter, when the caller knows it) saves a lookup.
    """
    if adapter is None and job.status == JobStatus.SUCCEEDED:
        row = session.get(WorkItemRow, job.work_item_id)
        adapter = row.adapter if row else None
    rows = owed(runtime, job.id, job.channel, job.status, adapter)
    for values in rows:
        session.add(WebhookDelivery(**values))
    if rows:
        db.notify_relay(session.connection())


def owed(
    runtime: Runtime, job_id: str, channel: str, status: str, adapter: str | None
) -> list[dict[str, Any]]:
    """The delivery rows a job that ended with ``status`` owes (webhook, write-back)."""
    rows: list[dict[str, Any]] = []
    cfg = runtime.settings.adapters.get(channel)
    hook = cfg.webhook if cfg else None
    now = utcnow()
    if hook is not None and status in hook.events:
        rows.append(_delivery_row(job_id, channel, f"job.{status}", hook.url, now))
    policy = _writeback_policy(runtime, adapter) if adapter else None
    if status == JobStatus.SUCCEEDED and policy is not None:
        rows.append(_delivery_row(job_id, channel, WRITEBACK, policy.target, now))
    return rows


def _delivery_row(job_id: str, channel: str, event: str, url: str, now: Any) -> dict[str, Any]:
    return {
        "id": new_id(),
        "job_id": job_id,
        "channel": channel,
        "event": event,
        "url": url,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }


def insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Write delivery rows from :func:`owed` on the caller's connection and transaction."""
    if rows:
        conn.execute(insert(WebhookDelivery.__table__), rows)  # type: ignore[attr-defined]
        db.notify_relay(conn)


def _writeback_adapter(runtime: Runtime, adapter_name: str) -> Any:
    """The loaded adapter, or None when it is gone from config (rows outlive config)."""
    return runtime.adapters.get(adapter_name)


def _writeback_policy(runtime: Runtime, adapter_name: str) -> WriteBackPolicy | None:
    adapter = _writeback_adapter(runtime, adapter_name)
    get_policy = getattr(adapter, "write_back_policy", None)
    policy = get_policy() if get_policy is not None else None
    return policy if isinstance(policy, WriteBackPolicy) else None


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks signature header value for one request."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def body_for(delivery: _DeliveryLike, job: _JobLike) -> bytes:
    data = {
        "type": delivery.event,
        "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
        "data": {
            "job_id": job.id,
            "status": job.status,
            "channel": job.channel,
            "task": job.task,
            "job_url": f"/jobs/{job.id}",
            "result_url": f"/jobs/{job.id}/result" if job.status == "succeeded" else None,
            "attempts": job.attempts,
        },
    }
    return json.dumps(data, separators=(",", ":")).encode()


def _retry_of(policy: WebhookConfig | WriteBackPolicy) -> Retry:
    schedule = getattr(policy, "retry_schedule_h", None)
    if schedule:
        delays = tuple(hours * 3600.0 for hours in schedule)
        return Retry(len(delays) + 1, delays[0], max(delays), delays)
    return Retry(policy.max_attempts, policy.backoff_s, policy.backoff_max_s)


def _backoff_s(retry: Retry, attempt: int) -> float:
    if retry.schedule_s:
        return retry.schedule_s[min(attempt, len(retry.schedule_s)) - 1]
    # the exponent is capped: an unlimited delivery reaches attempt 1,000+ in weeks
    ceiling = min(retry.backoff_max_s, retry.backoff_s * math.pow(2, min(attempt - 1, 60)))
    return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class DueDelivery:
    """A delivery claimed for this round, with what its request needs of its job."""

    id: str
    job_id: str
    channel: str
    event: str
    url: str


@dataclass(frozen=True)
class JobState:
    """The job a delivery is about, as it stood when the delivery was claimed."""

    id: str
    status: str
    channel: str
    task: str
    attempts: int
    work_item_id: str


class _DeliveryLike(Protocol):
    @property
    def event(self) -> str: ...


class _JobLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def attempts(self) -> int: ...


_DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
_JOBS: Table = Job.__table__  # type: ignore[attr-defined]
# One statement claims a page of due deliveries (rows another relay is claiming
# are skipped): pushing ``next_attempt_at`` out by DELIVERY_CLAIM_S makes other
# relays pass them by until this round records them, or until the claim runs
# out (a relay that died mid-round).
_CLAIM = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.id.in_(
            sa_select(_DELIVERIES.c.id)
            .where(_DELIVERIES.c.status == PENDING)
            .where(_DELIVERIES.c.next_attempt_at <= bindparam("now"))
            .order_by(_DELIVERIES.c.next_attempt_at)
            .limit(bindparam("page"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(next_attempt_at=bindparam("claimed_until"))
    .returning(
        _DELIVERIES.c.id,
        _DELIVERIES.c.job_id,
        _DELIVERIES.c.channel,
        _DELIVERIES.c.event,
        _DELIVERIES.c.url,
        _DELIVERIES.c.created_at,
    )
)
_JOB_COLUMNS = (
    _JOBS.c.status.label("job_status"),
    _JOBS.c.channel.label("job_channel"),
    _JOBS.c.task.label("job_task"),
    _JOBS.c.attempts.label("job_attempts"),
    _JOBS.c.work_item_id.label("job_work_item_id"),
)
# PostgreSQL returns each claimed row with its job's columns (UPDATE ... FROM);
# SQLite's RETURNING cannot name the FROM table, so it reads the jobs after.
_CLAIM_WITH_JOBS = _CLAIM.where(_JOBS.c.id == _DELIVERIES.c.job_id).returning(*_JOB_COLUMNS)
_JOBS_OF = sa_select(_JOBS.c.id, *_JOB_COLUMNS).where(
    _JOBS.c.id.in_(bindparam("job_ids", expanding=True))
)


def _claim_due(runtime: Runtime, limit: int) -> list[tuple[DueDelivery, JobState]]:
    """Claim up to ``limit`` due deliveries for this round, in the order they were owed."""
    now = utcnow()
    values = {"now": now, "page": limit, "claimed_until": now + timedelta(seconds=DELIVERY_CLAIM_S)}
    if runtime.engine.dialect.name == "postgresql":
        # One statement is atomic: autocommit saves the BEGIN and COMMIT round trips.
        with runtime.engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            rows = auto.execute(_CLAIM_WITH_JOBS, values).all()
        pairs = [(r, r) for r in rows]
    else:  # SQLite: its BEGIN IMMEDIATE (db.make_engine) needs a real transaction
        with runtime.engine.begin() as conn:
            claimed = conn.execute(_CLAIM, values).all()
            job_ids = sorted({r.job_id for r in claimed})
            jobs = (
                {j.id: j for j in conn.execute(_JOBS_OF, {"job_ids": job_ids})} if claimed else {}
            )
        pairs = [(r, jobs[r.job_id]) for r in claimed if r.job_id in jobs]
    pairs.sort(key=lambda pair: (pair[0].created_at, pair[0].id))
    return [
        (
            DueDelivery(d.id, d.job_id, d.channel, d.event, d.url),
            JobState(
                d.job_id,
                j.job_status,
                j.job_channel,
                j.job_task,
                j.job_attempts,
                j.job_work_item_id,
            ),
        )
        for d, j in pairs
    ]


def deliver_due(runtime: Runtime, limit: int = DELIVERY_PAGE) -> int:
    """Send every due delivery once; returns how many were attempted.

    One statement claims the due rows and reads their jobs; webhook requests
    go out concurrently on pooled keep-alive clients; their outcomes are
    written in one transaction (one audit head lock for the batch).
    Write-backs keep their own path: each is adapter protocol work with its
    own policy.
    """
    due = _claim_due(runtime, limit)
    outcomes: list[_Outcome] = []
    sends: list[Future[_Outcome]] = []
    for delivery, job in due:
        if delivery.event == WRITEBACK:
            _attempt_writeback(runtime, delivery, job)
            continue
        ready = _prepare(runtime, delivery, job)
        if isinstance(ready, _Outcome):
            outcomes.append(ready)
        elif len(due) == 1:
            outcomes.append(ready())
        else:
            sends.append(_sender_pool().submit(ready))
    outcomes.extend(future.result() for future in sends)
    if outcomes:
        _record_many(runtime, outcomes)
    return len(due)


def _prepare(
    runtime: Runtime, delivery: DueDelivery, job: JobState
) -> _Outcome | Callable[[], _Outcome]:
    """The signed request for one webhook delivery, or its outcome when it cannot go."""
    channel = runtime.settings.adapters.get(delivery.channel)
    hook = channel.webhook if channel else None
    if hook is None:
        return _Outcome(delivery.id, None, "channel no longer has a webhook configured", dead=True)
    body = body_for(delivery, job)
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(hook.secret, delivery.id, timestamp, body),
        "webhook-key-id": hook.key_id,
        "user-agent": "sluicegate-webhooks",
    }
    private = runtime.settings.security.callback_private_addresses == "allow"
    allow_private = hook.allow_private if hook.allow_private is not None else private
    retry = _retry_of(hook)
    try:
        target = callbacks.check(delivery.url, hook.allowed_urls or [hook.url], allow_private)
    except callbacks.UnsafeCallback as exc:
        return _Outcome(delivery.id, None, f"refused: {exc}", dead=True)
    except OSError as exc:  # name does not resolve (yet): retry like a network error
        return _Outcome(delivery.id, None, f"resolve: {type(exc).__name__}", retry=retry)

    def send() -> _Outcome:
        try:
            response = _client(hook.timeout_s, target.server_name).post(
                target.url,
                content=body,
                headers={**headers, "host": target.host_header},
                extensions={"sni_hostname": target.server_name},
            )
        except httpx.HTTPError as exc:
            return _Outcome(delivery.id, None, f"{type(exc).__name__}: {exc}", retry=retry)
        if 200 <= response.status_code < 300:
            return _Outcome(delivery.id, response.status_code, None, delivered=True, webhook=True)
        return _Outcome(
            delivery.id,
            response.status_code,
            f"receiver answered {response.status_code}",
            retry=retry,
            dead=response.status_code == 410,  # the receiver asked us to stop
        )

    return send


_pool_lock = threading.Lock()
_pool_state: dict[str, Any] = {}


def _process_local() -> dict[str, Any]:
    """This process's pooled clients and sender threads (reset after a fork)."""
    if _pool_state.get("pid") != os.getpid():
        _pool_state.clear()
        _pool_state.update(pid=os.getpid(), clients={}, executor=None)
    return _pool_state


def _client(timeout_s: float, server_name: str | None) -> httpx.Client:
    """A keep-alive client per (timeout, TLS server name).

    Building a client builds an SSL context (milliseconds of CPU); reusing
    one per process keeps connections warm. Requests go to pinned addresses,
    so pooled connections are keyed by address: one client per server name
    keeps a TLS session made for one host from serving another on the same IP.
    """
    with _pool_lock:
        clients: dict[tuple[float, str | None], httpx.Client] = _process_local()["clients"]
        client = clients.get((timeout_s, server_name))
        if client is None:
            # A redirect could point anywhere: never followed.
            client = httpx.Client(timeout=timeout_s, follow_redirects=False)
            clients[(timeout_s, server_name)] = client
        return client


def _sender_pool() -> ThreadPoolExecutor:
    with _pool_lock:
        state = _process_local()
        if state["executor"] is None:
            state["executor"] = ThreadPoolExecutor(SEND_CONCURRENCY, "webhook-send")
        executor: ThreadPoolExecutor = state["executor"]
        return executor


def _attempt_writeback(runtime: Runtime, delivery: DueDelivery, job: JobState) -> None:
    """Hand the job's result to its adapter's ``write_back`` and record the outcome."""
    with Session(runtime.engine) as session:
        row = session.get(WorkItemRow, job.work_item_id)
        result = session.exec(select(Result).where(Result.job_id == job.id)).first()
    adapter = _writeback_adapter(runtime, row.adapter) if row else None
    policy = _writeback_policy(runtime, row.adapter) if row else None
    if row is None or result is None or adapter is None or policy is None:
        error = "channel no longer has write-back configured" if result else "job has no result"
        _record(runtime, delivery.id, None, error, dead=True)
        return
    from sluicegate.core.pipeline import result_aad  # pipeline imports this module

    body = runtime.sealer.open(result.sealed_body, result_aad(job.id))
    item = open_item(runtime.sealer, row)
    retry = _retry_of(policy)
    try:
        location = adapter.write_back(body, result.media_type, item, job.id)
    except DeliveryFailed as exc:
        _record(
            runtime,
            delivery.id,
            exc.status_code,
            str(exc)[:1000],
            retry=retry,
            dead=not exc.retryable,
            not_before_s=exc.retry_after_s,
        )
        return
    except Exception as exc:  # an adapter bug: keep the row visible and retried, not lost
        log.exception("writeback.crashed", delivery_id=delivery.id, job_id=job.id)
        _record(runtime, delivery.id, None, f"internal error: {type(exc).__name__}", retry=retry)
        return
    _record(runtime, delivery.id, None, None, delivered=True, location=location)


@dataclass(frozen=True)
class _Outcome:
    """What one attempt came to, to be written down."""

    delivery_id: str
    status_code: int | None
    error: str | None
    retry: Retry | None = None
    delivered: bool = False
    dead: bool = False
    not_before_s: float | None = None
    location: str | None = None
    webhook: bool = False  # a webhook (not a write-back): delivered ones take the fast path


def _record(
    runtime: Runtime,
    delivery_id: str,
    status_code: int | None,
    error: str | None,
    *,
    retry: Retry | None = None,
    delivered: bool = False,
    dead: bool = False,
    not_before_s: float | None = None,
    location: str | None = None,
) -> None:
    outcome = _Outcome(
        delivery_id, status_code, error, retry, delivered, dead, not_before_s, location
    )
    _record_many(runtime, [outcome])


def _record_many(runtime: Runtime, outcomes: Sequence[_Outcome]) -> None:
    """Write the outcomes of a round in one transaction, their audit events in one append.

    Delivered webhooks, the bulk of a busy round, are marked with one UPDATE
    per status code (SQL Core); the rest go through the ORM one row each.
    """
    fast = [o for o in outcomes if o.delivered and o.webhook]
    with transaction(runtime.engine) as session:
        events: dict[str, list[tuple[str, str | None, dict[str, Any]]]] = {}
        if fast:
            _mark_delivered(session.connection(), fast, events)
        ids = [o.delivery_id for o in outcomes if not (o.delivered and o.webhook)]
        rows = (
            session.exec(select(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids))).all()
            if ids
            else []
        )
        found = {row.id: row for row in rows}
        tenants = _tenants(session.connection(), {r.job_id for r in rows})
        for outcome in outcomes:
            delivery = found.get(outcome.delivery_id)
            if delivery is None:
                continue
            event = _apply(session, delivery, outcome)
            tenant = tenants.get(delivery.job_id)
            if event is not None and tenant is not None:
                events.setdefault(tenant, []).append(event)
        session.flush()
        for tenant, tenant_events in events.items():
            audit.append(session.connection(), tenant, tenant_events)


def _tenants(conn: Connection, job_ids: set[str]) -> dict[str, str]:
    if not job_ids:
        return {}
    jobs = Job.__table__  # type: ignore[attr-defined]
    found = conn.execute(select(jobs.c.id, jobs.c.tenant).where(jobs.c.id.in_(job_ids))).all()
    return {job_id: tenant for job_id, tenant in found}


def _mark_delivered(
    conn: Connection,
    outcomes: Sequence[_Outcome],
    events: dict[str, list[tuple[str, str | None, dict[str, Any]]]],
) -> None:
    """Mark delivered webhooks (one UPDATE per status code) and owe their audit events."""
    table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    now = utcnow()
    by_code: dict[int | None, list[str]] = {}
    for outcome in outcomes:
        by_code.setdefault(outcome.status_code, []).append(outcome.delivery_id)
    marked: list[Any] = []
    for code, ids in by_code.items():
        marked += conn.execute(
            update(table)
            .where(table.c.id.in_(ids))
            .values(
                status=DELIVERED,
                attempts=table.c.attempts + 1,
                last_status_code=code,
                last_error=None,
                updated_at=now,
                next_attempt_at=None,
            )
            .returning(table.c.id, table.c.job_id, table.c.event, table.c.attempts)
        ).all()
    tenants = _tenants(conn, {row.job_id for row in marked})
    codes = {o.delivery_id: o.status_code for o in outcomes}
    order = {o.delivery_id: n for n, o in enumerate(outcomes)}
    for row in sorted(marked, key=lambda r: order[r.id]):  # the chain in the round's order
        metrics.webhook_delivery(metrics.delivery_kind(row.event), "delivered")
        tenant = tenants.get(row.job_id)
        if tenant is not None:
            data = {
                "via": "webhook",
                "delivery_id": row.id,
                "attempt": row.attempts,
                "status_code": codes[row.id],
            }
            events.setdefault(tenant, []).append(("delivered", row.job_id, data))


def _apply(
    session: Session, delivery: WebhookDelivery, outcome: _Outcome
) -> tuple[str, str | None, dict[str, Any]] | None:
    """Update one delivery row; returns the audit event it owes, if any."""
    now = utcnow()
    retry, error = outcome.retry, outcome.error
    delivery.attempts += 1
    delivery.last_status_code = outcome.status_code
    delivery.last_error = error
    delivery.updated_at = now
    kind = metrics.delivery_kind(delivery.event)
    if outcome.delivered:
        delivery.status = DELIVERED
        delivery.next_attempt_at = None
        metrics.webhook_delivery(kind, "delivered")
        if delivery.event == WRITEBACK:
            return _written_back(session, delivery.job_id, outcome.location)
        return _delivery_event(delivery, "delivered")
    limit = retry.max_attempts if retry is not None else None
    exhausted = limit is not None and delivery.attempts >= limit
    if outcome.dead or retry is None or exhausted:
        delivery.status = DEAD
        metrics.webhook_delivery(kind, "dead")
        delivery.next_attempt_at = None
        log.warning(
            "webhook.dead_lettered",
            delivery_id=delivery.id,
            kind=delivery.event,
            attempts=delivery.attempts,
            error=error,
        )
        return _delivery_event(delivery, "delivery_dead")
    delay = max(_backoff_s(retry, delivery.attempts), outcome.not_before_s or 0.0)
    metrics.webhook_delivery(kind, "retry")
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    log.info(
        "webhook.retry_scheduled",
        delivery_id=delivery.id,
        kind=delivery.event,
        delay_s=round(delay, 2),
        error=error,
    )
    return None


def _delivery_event(delivery: WebhookDelivery, kind: str) -> tuple[str, str | None, dict[str, Any]]:
    data = {
        "via": "webhook" if delivery.event != WRITEBACK else "write_back",
        "delivery_id": delivery.id,
        "attempt": delivery.attempts,
        "status_code": delivery.last_status_code,
    }
    return kind, delivery.job_id, data


def _written_back(
    session: Session, job_id: str, location: str | None
) -> tuple[str, str | None, dict[str, Any]] | None:
    """Record on the job (and the audit trail) where the sender's system filed it."""
    job = session.get(Job, job_id)
    if job is None:
        return None
    job.external_location = location[:2048] if location else None
    return "written_back", job.id, {"location": job.external_location}


def replay(runtime: Runtime, delivery_id: str | None = None) -> int:
    """Put one dead-lettered delivery (or all of them) back in the queue."""
    with transaction(runtime.engine) as session:
        query = select(WebhookDelivery).where(WebhookDelivery.status == DEAD)
        if delivery_id is not None:
            query = query.where(WebhookDelivery.id == delivery_id)
        rows = session.exec(query).all()
        for delivery in rows:
            delivery.status = PENDING
            delivery.attempts = 0
            delivery.next_attempt_at = utcnow()
        return len(rows)
