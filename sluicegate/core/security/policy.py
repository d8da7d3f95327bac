"""The role each route needs, in one table, so no route is unprotected by accident.

Core routes are listed by method and path template. Routes an adapter mounts
are classified by method (writes ingest, reads read results) without the
adapter having to know about roles. Anything else has no declared role and
is refused (default deny).
"""

from __future__ import annotations

from typing import Final

from sluicegate.core.config import SecurityConfig

PUBLIC: Final = "public"

CORE_ROUTES: Final[dict[tuple[str, str], str]] = {
    ("GET", "/jobs/{job_id}"): "read_results",
    ("GET", "/jobs/{job_id}/result"): "read_results",
    ("GET", "/jobs/{job_id}/audit"): "audit",
    ("GET", "/audit/events"): "audit",
    ("GET", "/audit/verify"): "audit",
    ("GET", "/webhooks/deliveries"): "admin",
    ("POST", "/webhooks/deliveries/{delivery_id}/replay"): "admin",
    ("GET", "/keys"): "admin",
    ("POST", "/keys"): "admin",
    ("DELETE", "/keys/{key_id}"): "admin",
}

_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_READS: Final = frozenset({"GET", "HEAD"})


def required_role(
    cfg: SecurityConfig, method: str, path: str, *, adapter_route: bool
) -> str | None:
    """PUBLIC, a role name, or None when the route declares nothing (refuse it)."""
    if path in cfg.public_paths:
        return PUBLIC
    if path == "/metrics":
        return cfg.metrics_role
    lookup = "GET" if method == "HEAD" else method
    role = CORE_ROUTES.get((lookup, path))
    if role is not None:
        return role
    if adapter_route:
        if method in _WRITES:
            return "ingest"
        if method in _READS:
            return "read_results"
    return None
