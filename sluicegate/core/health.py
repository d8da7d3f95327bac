"""Liveness and readiness: is the process up, and can it do its work right now?"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from kombu import Connection
from sqlalchemy import text

from sluicegate.core.runtime import Runtime

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 5.0


@router.get("/healthz", summary="Process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _database_ok(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _broker_ok(runtime: Runtime) -> None:
    with Connection(runtime.settings.broker_url, connect_timeout=CHECK_TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)


async def _check(fn: Any, runtime: Runtime) -> dict[str, Any]:
    try:
        await asyncio.wait_for(asyncio.to_thread(fn, runtime), CHECK_TIMEOUT_S + 1)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True}


@router.get("/readyz", summary="Database, broker and inference backends reachable")
async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, Any] = {
        "database": await _check(_database_ok, runtime),
        "broker": await _check(_broker_ok, runtime),
    }
    try:
        backends = await asyncio.wait_for(runtime.router().health(), CHECK_TIMEOUT_S + 1)
        for backend_id, ok in backends.items():
            checks[f"backend:{backend_id}"] = {"ok": ok}
    except Exception as exc:
        checks["backends"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    ready = all(check["ok"] for check in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
