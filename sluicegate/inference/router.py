"""Which backend may see which work: the privacy policy, enforced fail-closed.

PHI and PII go only to on-prem backends. If every on-prem backend is down the
request fails with :class:`BackendUnavailable` (the pipeline retries later);
it is never moved to the cloud. De-identified and public work may use the cloud
after the on-prem backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sluicegate.core.config import Settings
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Generation,
    GenerationRequest,
    Router,
    Sensitivity,
    Zone,
)
from sluicegate.core.registry import load_object

_SENSITIVE = frozenset({Sensitivity.PHI, Sensitivity.PII})


@runtime_checkable
class Backend(Protocol):
    """What the router needs of a backend, e.g. :class:`.triton.TritonBackend`."""

    id: str
    zone: Zone
    model: str

    async def generate(self, request: GenerationRequest) -> Generation: ...

    async def health(self) -> bool: ...

    async def aclose(self) -> None: ...


def is_sensitive(sensitivity: str) -> bool:
    """PHI/PII, or anything unrecognised: an unknown label is treated as sensitive."""
    try:
        return Sensitivity(sensitivity) in _SENSITIVE
    except ValueError:
        return True


class PolicyRouter:
    """Tries the backends a request is allowed to reach, in config order."""

    def __init__(self, backends: Sequence[Backend]) -> None:
        ids = [b.id for b in backends]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate backend ids: {ids}")
        self.backends: tuple[Backend, ...] = tuple(backends)

    def candidates(self, request: GenerationRequest) -> list[Backend]:
        """Allowed backends, in the order to try them."""
        onprem = [b for b in self.backends if b.zone == Zone.ONPREM]
        if is_sensitive(request.sensitivity):
            return onprem
        return onprem + [b for b in self.backends if b.zone == Zone.CLOUD]

    def cloud_eligible(self, task: str, channel: str) -> bool:
        """Cleared de-identified work may use the cloud when a cloud backend exists."""
        return any(b.zone == Zone.CLOUD for b in self.backends)

    async def generate(self, request: GenerationRequest) -> Generation:
        """First answer from an allowed backend; fall through only on BackendUnavailable."""
        sensitive = is_sensitive(request.sensitivity)
        failures: list[str] = []
        for backend in self.candidates(request):
            if sensitive and backend.zone != Zone.ONPREM:  # belt and braces: never relax
                raise RuntimeError(f"policy violation: sensitive work routed to {backend.id!r}")
            try:
                return await backend.generate(request)
            except BackendUnavailable as exc:
                failures.append(f"{backend.id}: {exc}")
        tried = "; ".join(failures) or "none configured"
        if sensitive:
            raise BackendUnavailable(
                f"no on-prem backend available; sensitive work waits (tried: {tried})"
            )
        raise BackendUnavailable(f"no backend available (tried: {tried})")

    async def health(self) -> dict[str, bool]:
        """Each backend's health, checked concurrently; an error counts as down."""

        async def check(backend: Backend) -> bool:
            try:
                return bool(await backend.health())
            except Exception:
                return False

        results = await asyncio.gather(*(check(b) for b in self.backends))
        return {b.id: ok for b, ok in zip(self.backends, results, strict=True)}

    async def aclose(self) -> None:
        """Close every backend, even if one fails to close."""
        results = await asyncio.gather(*(b.aclose() for b in self.backends), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]


def build_backends(settings: Settings) -> list[Backend]:
    """Instantiate ``settings.inference.backends`` through their factory paths."""
    backends: list[Backend] = []
    for backend_id, cfg in settings.inference.backends.items():
        factory = load_object(cfg.factory)
        backend = factory(backend_id, cfg)
        if not isinstance(backend, Backend):
            raise TypeError(f"{cfg.factory} did not build a backend for {backend_id!r}")
        if backend.zone != Zone(cfg.zone):
            # The config is the policy's source of truth; a disagreeing class is a bug.
            raise ValueError(
                f"backend {backend_id!r} reports zone {backend.zone!s} but is "
                f"configured as {cfg.zone!r}"
            )
        backends.append(backend)
    return backends


def build_router(settings: Settings) -> Router:
    """The default router factory named by ``inference.router`` in config."""
    return PolicyRouter(build_backends(settings))
