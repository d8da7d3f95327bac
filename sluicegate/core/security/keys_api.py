"""Key management over HTTP for the ``admin`` role, within the admin's own tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sluicegate.core.http import runtime_of
from sluicegate.core.problems import problem
from sluicegate.core.security import keys
from sluicegate.core.security.auth import tenant_filter
from sluicegate.core.tables import ApiKey

router = APIRouter(prefix="/keys", tags=["keys"])


class NewKey(BaseModel):
    roles: list[str]
    name: str = ""
    allow_from: list[str] = []
    channels: list[str] = []


def key_view(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "name": row.name,
        "roles": row.roles.split(","),
        "allow_from": [c for c in row.allow_from.split(",") if c],
        "channels": [c for c in row.channels.split(",") if c],
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@router.get("", summary="API keys of the caller's tenant (never the keys themselves)")
def list_keys(request: Request) -> JSONResponse:
    rows = keys.list_keys(runtime_of(request).engine, tenant_filter(request))
    return JSONResponse([key_view(r) for r in rows])


@router.post("", summary="Create a key in the caller's tenant; the key is shown only now")
def create_key(body: NewKey, request: Request) -> Response:
    runtime = runtime_of(request)
    tenant = tenant_filter(request) or keys.DEFAULT_TENANT
    try:
        row, key = keys.create(
            runtime.engine,
            runtime.sealer,
            tenant,
            body.roles,
            body.name,
            body.allow_from,
            body.channels,
        )
    except ValueError as exc:
        return problem(422, "Invalid key request", str(exc))
    return JSONResponse({**key_view(row), "key": key}, status_code=201)


@router.delete("/{key_id}", summary="Revoke a key of the caller's tenant")
def revoke_key(key_id: str, request: Request) -> Response:
    if not keys.revoke(runtime_of(request).engine, key_id, tenant_filter(request)):
        return problem(404, "Key not found", "no live key with this id in your tenant")
    cache = getattr(request.app.state, "key_cache", None)
    if cache is not None:
        cache.clear()  # this process stops honouring the key at once
    return Response(status_code=204)
