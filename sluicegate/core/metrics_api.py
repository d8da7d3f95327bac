"""``GET /metrics`` for Prometheus, and the middleware that times every request.

The middleware labels a request with its route *template* (``/jobs/{job_id}``),
never the raw path, and with the first tag of the route (the adapter, or the
core area: ``jobs``, ``health``, ``webhooks``). Requests no route matched are
counted under ``<unmatched>`` so that scanners probing random paths cannot
create new series.
"""

from __future__ import annotations

import time
from ipaddress import ip_address
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluicegate.core import metrics
from sluicegate.core.http import runtime_of
from sluicegate.core.problems import problem

router = APIRouter(tags=["metrics"])

METRICS_PATH = "/metrics"
UNMATCHED = "<unmatched>"


def client_allowed(host: str | None, allow_from: list[Any]) -> bool:
    """Whether a client address falls in one of the configured networks."""
    if not host:
        return False
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in allow_from)


@router.get(METRICS_PATH, include_in_schema=False)
def metrics_endpoint(request: Request) -> Response:
    runtime = runtime_of(request)
    config = runtime.settings.metrics
    if not config.enabled:
        return problem(404, "Not found", "metrics are disabled (metrics.enabled)")
    host = request.client.host if request.client else None
    if not client_allowed(host, list(config.allow_from)):
        return problem(403, "Forbidden", "this address may not read metrics (metrics.allow_from)")
    body = generate_latest(metrics.registry(runtime.engine))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def route_labels(scope: Scope) -> tuple[str, str]:
    """(adapter, route template) of a handled request, bounded by the app's routes."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return "none", UNMATCHED
    tags = getattr(route, "tags", None) or []
    return (str(tags[0]) if tags else "core"), str(template)


class RequestMetrics:
    """Pure ASGI middleware: one histogram observation per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            adapter, template = route_labels(scope)
            if template != METRICS_PATH:
                metrics.observe_request(
                    adapter, template, scope["method"], status, time.perf_counter() - start
                )
