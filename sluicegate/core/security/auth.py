"""Authentication and authorisation for every HTTP route, installed once on the app.

A pure ASGI middleware matches the request against the app's route table
itself, so it knows the route (and the role it needs, from
:mod:`sluicegate.core.security.policy`) before any handler runs; adapter
routers are covered without any change to the adapters. Keys arrive as
``Authorization: Bearer <key>`` or ``X-API-Key``. Failures are answered 401
(no or bad key) or 403 (wrong role, or an adapter of another tenant; reads
answer 404 there so ids cannot be probed), and each one is audited.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import structlog
from fastapi import FastAPI, Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from sluicegate.core import audit
from sluicegate.core.db import transaction
from sluicegate.core.problems import problem
from sluicegate.core.runtime import Runtime
from sluicegate.core.security import keys, policy
from sluicegate.core.security.keys import Principal

log = structlog.get_logger("sluicegate.auth")

SECURITY_TENANT = "_security"
"""Audit chain for events with no tenant yet (unknown keys)."""


def principal_of(request: Request) -> Principal | None:
    """The caller, or None when auth is disabled (then nothing is filtered by tenant)."""
    value: Principal | None = getattr(request.state, "principal", None)
    return value


def tenant_filter(request: Request) -> str | None:
    principal = principal_of(request)
    return principal.tenant if principal is not None else None


def presented_key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


@dataclass(frozen=True)
class RouteInfo:
    """One concrete route of the app: its template, methods and the route object."""

    path: str
    methods: frozenset[str]
    regex: re.Pattern[str]
    route: Any


def _contexts(routes: Sequence[Any]) -> list[tuple[str, frozenset[str], Any]]:
    """Flatten included routers (FastAPI versions differ in how they keep them)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: include_router copies routes flat
        return [
            (r.path, frozenset(getattr(r, "methods", None) or ()), r)
            for r in routes
            if hasattr(r, "path")
        ]
    return [
        (ctx.path, frozenset(ctx.methods or ()), ctx.original_route)
        for ctx in iter_route_contexts(routes)
        if ctx.path
    ]


def route_table(app: FastAPI) -> list[RouteInfo]:
    """Every route, in matching order (cached until routes are added)."""
    cached: tuple[int, list[RouteInfo]] | None = getattr(app.state, "route_table", None)
    if cached is not None and cached[0] == len(app.router.routes):
        return cached[1]
    table = [
        RouteInfo(path, methods, compile_path(path)[0], route)
        for path, methods, route in _contexts(app.router.routes)
    ]
    app.state.route_table = (len(app.router.routes), table)
    return table


def mark_adapter_routes(app: FastAPI, before: int, adapter: str) -> None:
    """Remember which routes an adapter just mounted (and so whose tenant they serve)."""
    owners = adapter_routes(app)
    app.state.adapter_routes = owners
    for _, _, route in _contexts(app.router.routes[before:]):
        owners[id(route)] = adapter


def adapter_routes(app: FastAPI) -> dict[int, str]:
    owners: dict[int, str] = getattr(app.state, "adapter_routes", {})
    return owners


@dataclass(frozen=True)
class Refusal:
    """Why a request is turned away, and the audit event that says so."""

    status: int
    detail: str
    reason: str


def authorize(
    principal: Principal,
    role: str | None,
    client: str | None,
    method: str,
    channel: tuple[str, str] | None,
) -> Refusal | None:
    """None when ``principal`` may use a route needing ``role``; else why not.

    ``channel`` is (name, tenant) of the adapter whose route this is, if any.
    """
    if not principal.may_connect_from(client):
        return Refusal(403, "this key is not valid from this address", "source_address")
    if role is None:
        return Refusal(403, "this key may not use this route", "no_role_declared")
    if role != "any" and not principal.has(role):
        return Refusal(403, "this key may not use this route", "missing_role")
    if channel is not None:
        name, tenant = channel
        reason = "other_tenant" if tenant != principal.tenant else "other_channel"
        if tenant != principal.tenant or not principal.may_use(name):
            if method in ("GET", "HEAD"):  # resources the key may not see look absent
                return Refusal(404, "no such resource", reason)
            return Refusal(403, "this key may not use this channel", reason)
    return None


class AuthMiddleware:
    """Pure ASGI: authenticate, authorise, then hand on with the principal in scope."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.bootstrap = os.environ.get(keys.BOOTSTRAP_ENV) or None
        runtime: Runtime = fastapi_app.state.runtime
        self.cache = keys.KeyCache(runtime.settings.security.key_cache_s)
        fastapi_app.state.key_cache = self.cache  # revocations through the API clear it
        self.limiter = RefusalLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = self.fastapi_app.state.runtime
        cfg = runtime.settings.security
        if scope["type"] != "http" or cfg.auth == "disabled":
            await self.app(scope, receive, send)
            return
        route, path = self._match(scope)
        method = scope["method"]
        owner = adapter_routes(self.fastapi_app).get(id(route)) if route is not None else None
        role = (
            policy.required_role(cfg, method, path, adapter_route=owner is not None)
            if route is not None
            else "any"  # unknown path: authenticate, then let the router answer 404/405
        )
        if role == policy.PUBLIC:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        key = presented_key(headers)
        principal = await self._resolve(runtime, key) if key else None
        client = scope.get("client")
        where = {"method": method, "path": path, "client": client[0] if client else None}
        if principal is None:
            reason = "unknown_key" if key else "missing_key"
            await self._audit(runtime, SECURITY_TENANT, "auth_failed", reason=reason, **where)
            response = problem(
                401, "Unauthorized", "a valid API key is required", refused_by="auth"
            )
            response.headers["www-authenticate"] = 'Bearer realm="sluicegate"'
            await response(scope, receive, send)
            return
        adapter = runtime.settings.adapters.get(owner) if owner is not None else None
        channel = (owner, adapter.tenant) if owner is not None and adapter is not None else None
        refusal = authorize(principal, role, where["client"], method, channel)
        if refusal is not None:
            await self._audit(
                runtime,
                principal.tenant,
                "access_denied",
                reason=refusal.reason,
                key_id=principal.key_id,
                role=role,
                **where,
            )
            title = "Not found" if refusal.status == 404 else "Forbidden"
            response = problem(refusal.status, title, refusal.detail, refused_by="auth")
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _resolve(self, runtime: Runtime, key: str) -> Principal | None:
        digest = keys.key_hash(runtime.sealer, key)
        hit, principal = self.cache.get(digest)
        if not hit:
            principal = await anyio.to_thread.run_sync(
                keys.resolve, runtime.engine, runtime.sealer, key, self.bootstrap
            )
            self.cache.put(digest, principal)
        return principal

    def _match(self, scope: Scope) -> tuple[Any, str]:
        """The route the router will pick: first template and method that fit."""
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        for info in route_table(self.fastapi_app):
            if info.regex.match(scope["path"]) and (
                method in info.methods or scope["method"] in info.methods
            ):
                return info.route, info.path
        return None, scope["path"]

    async def _audit(self, runtime: Runtime, tenant: str, type_: str, **data: Any) -> None:
        """Record a refusal; a flood from one client is summarised, not written row by row."""
        log.warning("auth.refused", kind=type_, reason=data.get("reason"), path=data.get("path"))
        suppressed = self.limiter.admit(str(data.get("client")))
        if suppressed is None:
            return

        def write() -> None:
            with transaction(runtime.engine) as session:
                extra = {"suppressed_before": suppressed} if suppressed else {}
                audit.record(session, tenant, type_, None, **data, **extra)

        await anyio.to_thread.run_sync(write)


class RefusalLimiter:
    """At most ``per_minute`` refusal events per client a minute; counts the rest.

    A client hammering the API with bad keys must not turn every request into
    a locked write on the audit chain; the next admitted event carries the
    count of the ones left out, so the record stays complete in number.
    """

    def __init__(self, per_minute: int = 30) -> None:
        self.per_minute = per_minute
        self._windows: dict[str, tuple[float, int, int]] = {}  # start, admitted, dropped

    def admit(self, client: str) -> int | None:
        """None to skip this event, else how many were skipped before it."""
        now = time.monotonic()
        start, admitted, dropped = self._windows.get(client, (now, 0, 0))
        if now - start >= 60:
            start, admitted = now, 0
        if admitted >= self.per_minute:
            self._windows[client] = (start, admitted, dropped + 1)
            return None
        if len(self._windows) > 10_000:
            self._windows.clear()
        self._windows[client] = (start, admitted + 1, 0)
        return dropped


def install(app: FastAPI) -> None:
    """Put the auth middleware in front of every route of ``app``."""
    app.add_middleware(AuthMiddleware, fastapi_app=app)
