"""Deliver step: tell a channel's webhook receiver that a job ended.

A delivery row is written in the same transaction that ends the job, so no
notification is lost; the relay loop sends due rows with retries and backoff
and dead-letters them after ``max_attempts`` (replayable from the CLI and
API). Requests are signed per the Standard Webhooks specification
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC>``).
The body names the job and where to fetch its result — never the result
itself, so no patient data travels to a receiver that has not authenticated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import random
import time
from datetime import timedelta

import httpx
import structlog
from sqlmodel import Session, col, select

from sluicegate.core.config import WebhookConfig
from sluicegate.core.db import transaction
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import Job, WebhookDelivery, utcnow

log = structlog.get_logger("sluicegate.webhooks")

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


def enqueue(session: Session, runtime: Runtime, job: Job) -> None:
    """Owe the channel's receiver a notice of ``job``'s end (inside the caller's transaction)."""
    channel = runtime.settings.adapters.get(job.channel)
    hook = channel.webhook if channel else None
    if hook is None or job.status not in hook.events:
        return
    session.add(
        WebhookDelivery(
            job_id=job.id,
            channel=job.channel,
            event=f"job.{job.status}",
            url=hook.url,
            next_attempt_at=utcnow(),
        )
    )


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


def _backoff_s(hook: WebhookConfig, attempt: int) -> float:
    ceiling = min(hook.backoff_max_s, hook.backoff_s * math.pow(2, attempt - 1))
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
        _record(runtime, delivery_id, None, f"{type(exc).__name__}: {exc}", hook=hook)
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
            hook=hook,
            dead=gone,
        )


def _record(
    runtime: Runtime,
    delivery_id: str,
    status_code: int | None,
    error: str | None,
    *,
    hook: WebhookConfig | None = None,
    delivered: bool = False,
    dead: bool = False,
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
        elif dead or hook is None or delivery.attempts >= hook.max_attempts:
            delivery.status = DEAD
            delivery.next_attempt_at = None
            log.warning(
                "webhook.dead_lettered",
                delivery_id=delivery_id,
                attempts=delivery.attempts,
                error=error,
            )
        else:
            delay = _backoff_s(hook, delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            log.info(
                "webhook.retry_scheduled",
                delivery_id=delivery_id,
                delay_s=round(delay, 2),
                error=error,
            )


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
