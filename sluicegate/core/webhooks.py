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
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlmodel import Session, col, select

from sluicegate.core import audit
from sluicegate.core.config import WebhookConfig
from sluicegate.core.db import transaction
from sluicegate.core.ingest import open_item
from sluicegate.core.interfaces import DeliveryFailed, WriteBackPolicy
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import Job, JobStatus, Result, WebhookDelivery, WorkItemRow, utcnow

log = structlog.get_logger("sluicegate.webhooks")

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
WRITEBACK = "writeback"


@dataclass(frozen=True)
class Retry:
    """How often and how patiently one kind of delivery is retried."""

    max_attempts: int
    backoff_s: float
    backoff_max_s: float


def enqueue(session: Session, runtime: Runtime, job: Job) -> None:
    """Owe the channel its notices of ``job``'s end (inside the caller's transaction)."""
    channel = runtime.settings.adapters.get(job.channel)
    hook = channel.webhook if channel else None
    if hook is not None and job.status in hook.events:
        session.add(
            WebhookDelivery(
                job_id=job.id,
                channel=job.channel,
                event=f"job.{job.status}",
                url=hook.url,
                next_attempt_at=utcnow(),
            )
        )
    if job.status == JobStatus.SUCCEEDED:
        _enqueue_writeback(session, runtime, job)


def _enqueue_writeback(session: Session, runtime: Runtime, job: Job) -> None:
    row = session.get(WorkItemRow, job.work_item_id)
    policy = _writeback_policy(runtime, row.adapter) if row else None
    if policy is None:
        return
    session.add(
        WebhookDelivery(
            job_id=job.id,
            channel=job.channel,
            event=WRITEBACK,
            url=policy.target,
            next_attempt_at=utcnow(),
        )
    )


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


def body_for(delivery: WebhookDelivery, job: Job) -> bytes:
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
    return Retry(policy.max_attempts, policy.backoff_s, policy.backoff_max_s)


def _backoff_s(retry: Retry, attempt: int) -> float:
    ceiling = min(retry.backoff_max_s, retry.backoff_s * math.pow(2, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def deliver_due(runtime: Runtime, limit: int = 50) -> int:
    """Send every due delivery once; returns how many were attempted."""
    now = utcnow()
    with Session(runtime.engine) as session:
        due = session.exec(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == PENDING)
            .where(col(WebhookDelivery.next_attempt_at) <= now)
            .order_by(col(WebhookDelivery.next_attempt_at))
            .limit(limit)
        ).all()
    for delivery_id in due:
        _attempt(runtime, delivery_id)
    return len(due)


def _attempt(runtime: Runtime, delivery_id: str) -> None:
    with Session(runtime.engine) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        job = session.get(Job, delivery.job_id) if delivery else None
    if delivery is None or job is None or delivery.status != PENDING:
        return
    if delivery.event == WRITEBACK:
        _attempt_writeback(runtime, delivery, job)
        return
    channel = runtime.settings.adapters.get(delivery.channel)
    hook = channel.webhook if channel else None
    if hook is None:
        _record(runtime, delivery_id, None, "channel no longer has a webhook configured", dead=True)
        return
    body = body_for(delivery, job)
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(hook.secret, delivery.id, timestamp, body),
        "user-agent": "sluicegate-webhooks",
    }
    try:
        response = httpx.post(hook.url, content=body, headers=headers, timeout=hook.timeout_s)
    except httpx.HTTPError as exc:
        _record(runtime, delivery_id, None, f"{type(exc).__name__}: {exc}", retry=_retry_of(hook))
        return
    if 200 <= response.status_code < 300:
        _record(runtime, delivery_id, response.status_code, None, delivered=True)
    else:
        gone = response.status_code == 410  # the receiver asked us to stop
        _record(
            runtime,
            delivery_id,
            response.status_code,
            f"receiver answered {response.status_code}",
            retry=_retry_of(hook),
            dead=gone,
        )


def _attempt_writeback(runtime: Runtime, delivery: WebhookDelivery, job: Job) -> None:
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
    with transaction(runtime.engine) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return
        now = utcnow()
        delivery.attempts += 1
        delivery.last_status_code = status_code
        delivery.last_error = error
        delivery.updated_at = now
        if delivered:
            delivery.status = DELIVERED
            delivery.next_attempt_at = None
            if delivery.event == WRITEBACK:
                _written_back(session, delivery.job_id, location)
        elif dead or retry is None or delivery.attempts >= retry.max_attempts:
            delivery.status = DEAD
            delivery.next_attempt_at = None
            log.warning(
                "webhook.dead_lettered",
                delivery_id=delivery_id,
                kind=delivery.event,
                attempts=delivery.attempts,
                error=error,
            )
        else:
            delay = max(_backoff_s(retry, delivery.attempts), not_before_s or 0.0)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            log.info(
                "webhook.retry_scheduled",
                delivery_id=delivery_id,
                kind=delivery.event,
                delay_s=round(delay, 2),
                error=error,
            )


def _written_back(session: Session, job_id: str, location: str | None) -> None:
    """Record on the job (and the audit trail) where the sender's system filed it."""
    job = session.get(Job, job_id)
    if job is None:
        return
    job.external_location = location[:2048] if location else None
    audit.record(session, job.tenant, "written_back", job.id, location=job.external_location)


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
