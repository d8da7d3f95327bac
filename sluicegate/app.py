"""FastAPI app factory: core routes plus each enabled adapter's routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from sluicegate.core import health, jobs_api, metrics_api, webhooks_api
from sluicegate.core.config import Settings
from sluicegate.core.problems import problem
from sluicegate.core.relay import Relay
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.security import audit_api, auth, config_audit, keys_api

log = structlog.get_logger("sluicegate.app")


def create_app(settings: Settings, *, run_relay: bool | None = None) -> FastAPI:
    """Build the API. ``run_relay`` defaults to ``relay.embedded`` from config."""
    runtime = build_runtime(settings)
    with_relay = settings.relay.embedded if run_relay is None else run_relay

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(config_audit.record_config, runtime, "api")
        relay = Relay(runtime) if with_relay else None
        app.state.relay = relay
        if relay is not None:
            relay.start()
        try:
            yield
        finally:
            if relay is not None:
                relay.stop()
            await runtime.aclose()

    app = FastAPI(
        title="Sluicegate",
        summary="Privacy-routing integration gateway for healthcare and finance",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.relay = None
    app.include_router(health.router)
    app.include_router(jobs_api.router)
    app.include_router(webhooks_api.router)
    app.include_router(metrics_api.router)
    app.add_middleware(metrics_api.RequestMetrics)  # latency per adapter and route template
    app.include_router(audit_api.router)
    app.include_router(keys_api.router)
    _mount_adapters(app, runtime)
    _install_error_handlers(app)
    auth.install(app)  # every route above, adapters' included, needs its declared role
    return app


def _mount_adapters(app: FastAPI, runtime: Runtime) -> None:
    for name, adapter in runtime.adapters.items():
        api_router = getattr(adapter, "api_router", None)
        if api_router is not None:
            before = len(app.router.routes)
            app.include_router(api_router(name, runtime.settings.adapters[name].tenant))
            auth.mark_adapter_routes(app, before, name)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, "HTTP error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return problem(422, "Invalid request", "request failed validation", errors=errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("api.unhandled", path=request.url.path, error=type(exc).__name__)
        return problem(500, "Internal error", "the gateway failed; the event was logged")
