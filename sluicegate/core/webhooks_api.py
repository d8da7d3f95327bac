"""Webhook delivery state over HTTP: list deliveries, replay dead-lettered ones."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session, col, select

from sluicegate.core import webhooks
from sluicegate.core.http import runtime_of
from sluicegate.core.problems import problem
from sluicegate.core.security.auth import tenant_filter
from sluicegate.core.tables import Job, WebhookDelivery

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def delivery_view(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "job_id": d.job_id,
        "channel": d.channel,
        "event": d.event,
        "status": d.status,
        "attempts": d.attempts,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
    }


@router.get("/deliveries", summary="Webhook deliveries, newest first")
def list_deliveries(request: Request, status: str | None = None, limit: int = 100) -> Response:
    query = select(WebhookDelivery).order_by(col(WebhookDelivery.created_at).desc())
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    tenant = tenant_filter(request)
    if tenant is not None:
        query = query.where(
            col(WebhookDelivery.job_id).in_(select(Job.id).where(Job.tenant == tenant))
        )
    with Session(runtime_of(request).engine) as session:
        rows = session.exec(query.limit(min(max(limit, 1), 1000))).all()
    return JSONResponse([delivery_view(d) for d in rows])


@router.post("/deliveries/{delivery_id}/replay", summary="Re-send a dead-lettered delivery")
def replay_delivery(delivery_id: str, request: Request) -> Response:
    runtime = runtime_of(request)
    with Session(runtime.engine) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        job = session.get(Job, delivery.job_id) if delivery is not None else None
    tenant = tenant_filter(request)
    if delivery is None or (tenant is not None and (job is None or job.tenant != tenant)):
        return problem(404, "Delivery not found", f"no webhook delivery {delivery_id!r}")
    if delivery.status != webhooks.DEAD:
        return problem(
            409,
            "Not dead-lettered",
            f"delivery is {delivery.status}; only dead deliveries are replayed",
        )
    webhooks.replay(runtime, delivery_id)
    relay = getattr(request.app.state, "relay", None)
    if relay is not None:
        relay.nudge()
    return JSONResponse({"id": delivery_id, "status": webhooks.PENDING}, status_code=202)
