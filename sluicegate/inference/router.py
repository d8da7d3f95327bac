"""Which backend may see which work: the privacy policy, enforced fail-closed.

The :class:`~sluicegate.inference.policy.Policy` decides the candidates; this
module calls them with a circuit breaker, a concurrency limit per backend and
one deadline per request. PHI and PII go only to on-prem backends. If every
allowed backend is down the request fails with :class:`BackendUnavailable`
(the pipeline retries later); it is never moved to another trust zone. Cleared
de-identified answers may be served from the sealed response cache.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from sluicegate.core import metrics
from sluicegate.core.config import PolicyConfig, Settings
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Generation,
    GenerationFailed,
    GenerationRequest,
    Router,
    Zone,
)
from sluicegate.core.registry import load_object
from sluicegate.inference.breaker import BreakerState, CircuitBreaker
from sluicegate.inference.cache import ResponseCache, cache_key, cacheable
from sluicegate.inference.cost import call_cost
from sluicegate.inference.policy import Plan, Policy, is_cleared, is_sensitive
from sluicegate.inference.streams import GenerationStream

__all__ = ["Backend", "BackendLimits", "PolicyRouter", "build_router", "is_sensitive"]


@runtime_checkable
class Backend(Protocol):
    """What the router needs of a backend, e.g. :class:`.triton.TritonBackend`.

    Retryable failures raise :class:`BackendUnavailable` (the router tries the
    next backend of the same zone and counts a breaker failure); permanent ones
    raise :class:`GenerationFailed` (no fallback: another backend would fail too).
    Backends that stream also offer ``stream(request) -> GenerationStream``
    (see :mod:`.streams`); :meth:`PolicyRouter.stream` uses it when present.
    """

    id: str
    zone: Zone
    model: str

    async def generate(self, request: GenerationRequest) -> Generation: ...

    async def health(self) -> bool: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class BackendLimits:
    """Breaker and concurrency settings for one backend (from ``BackendConfig``)."""

    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    max_concurrency: int = 16


class _Slot:
    """A backend with its breaker and concurrency gate."""

    __slots__ = ("_gates", "backend", "breaker", "limit")

    def __init__(self, backend: Backend, limits: BackendLimits) -> None:
        self.backend = backend
        self.breaker = CircuitBreaker(
            limits.breaker_failures,
            limits.breaker_reset_s,
            on_change=lambda state: metrics.breaker_state(backend.id, state.value),
        )
        self.limit = limits.max_concurrency
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def gate(self) -> asyncio.Semaphore:
        """The concurrency gate of the running loop (a semaphore is bound to one loop,
        and a router may outlive a loop, e.g. across ``asyncio.run`` calls)."""
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.limit)
        return gate

    def record(self, outcome: str, seconds: float = 0.0) -> None:
        """One unanswered attempt, counted right after this step (see :func:`_after`)."""
        _after(self.emit, outcome, seconds, None, None)

    def emit(
        self, outcome: str, seconds: float, result: Generation | None, cost: float | None
    ) -> None:
        """One attempt on this backend, for metrics (bounded labels, no content)."""
        metrics.inference_call(
            self.backend.id,
            self.backend.zone.value,
            outcome,
            seconds,
            result.prompt_tokens if result else None,
            result.completion_tokens if result else None,
            cost,
        )


def _after(fn: Callable[..., object], *args: object) -> None:
    """Run bookkeeping (metrics) right after this step, off the request's latency path."""
    try:
        asyncio.get_running_loop().call_soon(fn, *args)
    except RuntimeError:  # no running loop: do it now
        fn(*args)


def _outcome(exc: BaseException) -> str:
    """The metrics outcome for a failed attempt (bounded set; see core.metrics)."""
    text = str(exc)
    if isinstance(exc, GenerationFailed):
        return "payment_required" if "HTTP 402" in text else "rejected"
    if isinstance(exc, BackendUnavailable):
        if "HTTP 429" in text:
            return "rate_limited"
        return "timeout" if "within" in text or "timed out" in text else "error"
    if isinstance(exc, (TimeoutError, asyncio.CancelledError)):
        return "timeout"
    return "error"


@dataclass(frozen=True)
class _Route:
    """What the router decided about one request before calling anything."""

    sensitive: bool
    cleared: bool
    plan: Plan
    use_cache: bool


def _where(slot: _Slot) -> str:
    return f"{slot.backend.id} ({slot.backend.zone})"


def _unavailable(sensitive: bool, failures: list[str], reason: str) -> BackendUnavailable:
    tried = "; ".join(failures) or "none configured"
    if sensitive:
        return BackendUnavailable(
            f"no on-prem backend available; sensitive work waits (tried: {tried})"
        )
    return BackendUnavailable(f"no backend available (tried: {tried}; {reason})")


class PolicyRouter:
    """Tries the backends the policy allows, in order, within one trust zone."""

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        policy: PolicyConfig | None = None,
        limits: Mapping[str, BackendLimits] | None = None,
        deadline_s: float = 120.0,
        cache: ResponseCache | None = None,
        batch_concurrency: int = 32,
        cost_of: Callable[[Generation], float | None] | None = None,
    ) -> None:
        ids = [b.id for b in backends]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate backend ids: {ids}")
        self.backends: tuple[Backend, ...] = tuple(backends)
        self.policy = Policy({b.id: Zone(b.zone) for b in backends}, policy)
        limits = limits or {}
        self._slots = {b.id: _Slot(b, limits.get(b.id, BackendLimits())) for b in backends}
        self.deadline_s = deadline_s
        self.cache = cache
        self.batch_concurrency = batch_concurrency
        self._cost_of = cost_of or (lambda _generation: None)

    def cloud_eligible(self, task: str, channel: str) -> bool:
        return self.policy.cloud_eligible(task, channel)

    def _answered(self, slot: _Slot, seconds: float, result: Generation | None) -> None:
        """An answered attempt: metrics with usage and cost (run via :func:`_after`)."""
        cost = self._cost_of(result) if result is not None else None
        slot.emit("ok", seconds, result, cost)

    def breaker_states(self) -> dict[str, str]:
        """Each backend's breaker state (closed, open, half_open), by backend id."""
        return {bid: slot.breaker.state.value for bid, slot in self._slots.items()}

    async def generate(self, request: GenerationRequest) -> Generation:
        """First answer from an allowed backend, within ``deadline_s`` overall."""
        try:
            async with asyncio.timeout(self.deadline_s):
                return await self._generate(request)
        except TimeoutError:
            raise BackendUnavailable(
                f"request deadline of {self.deadline_s:g}s passed before any backend answered"
            ) from None

    def _route(self, request: GenerationRequest) -> _Route:
        cleared = is_cleared(request)  # the digest is computed once per request
        return _Route(
            sensitive=is_sensitive(request.sensitivity),
            cleared=cleared,
            plan=self.policy.plan(request, cleared),
            use_cache=self.cache is not None and cacheable(request, cleared),
        )

    def _open(self, route: _Route, backend_id: str) -> _Slot:
        """The slot to call; refuses (never relaxes) a cloud backend for uncleared work."""
        slot = self._slots[backend_id]
        if slot.backend.zone != Zone.ONPREM and (route.sensitive or not route.cleared):
            # Belt and braces: the policy already excludes this.
            raise RuntimeError(f"policy violation: uncleared work routed to {backend_id!r}")
        return slot

    def _cached(
        self, route: _Route, slot: _Slot, request: GenerationRequest
    ) -> tuple[str, Generation | None]:
        """The cache key ("" when not cacheable) and a hit, marked with its route."""
        if self.cache is None or not route.use_cache:
            return "", None
        key = cache_key(slot.backend.id, slot.backend.model, request)
        hit = self.cache.get(key)
        _after(metrics.cache_lookup, hit is not None)
        if hit is not None:
            slot.record("cached")
            reason = f"{route.plan.reason}; {slot.backend.id}: cache hit"
            hit = replace(hit, latency_s=0.0, route_reason=reason)
        return key, hit

    async def _generate(self, request: GenerationRequest) -> Generation:
        route = self._route(request)
        failures: list[str] = []
        for backend_id in route.plan.backend_ids:
            slot = self._open(route, backend_id)
            key, hit = self._cached(route, slot, request)
            if hit is not None:
                return hit
            if slot.breaker.state == BreakerState.OPEN:
                slot.record("breaker_open")
                failures.append(f"{backend_id}: circuit open")
                continue
            async with slot.gate:
                if not slot.breaker.allow():  # another request took the half-open probe
                    slot.record("breaker_open")
                    failures.append(f"{backend_id}: circuit open")
                    continue
                started = time.perf_counter()
                try:
                    result = await slot.backend.generate(request)
                except BackendUnavailable as exc:
                    slot.breaker.failure()
                    slot.record(_outcome(exc), time.perf_counter() - started)
                    failures.append(f"{backend_id}: {exc}")
                    continue
                except GenerationFailed as exc:
                    slot.breaker.success()  # it answered; the request is at fault
                    slot.record(_outcome(exc), time.perf_counter() - started)
                    raise
                except BaseException as exc:
                    slot.breaker.failure()  # crashed, or cut off by the deadline
                    slot.record(_outcome(exc), time.perf_counter() - started)
                    raise
                slot.breaker.success()
            _after(self._answered, slot, time.perf_counter() - started, result)
            skipped = f"; after {len(failures)} unavailable" if failures else ""
            result = replace(result, route_reason=f"{route.plan.reason}; {_where(slot)}{skipped}")
            if self.cache is not None and key:
                self.cache.put(key, result)
            return result
        raise _unavailable(route.sensitive, failures, route.plan.reason)

    def stream(self, request: GenerationRequest) -> GenerationStream:
        """Text deltas from the first allowed backend, by the same policy as :meth:`generate`.

        Fallback to the next backend of the zone happens only before the first
        delta (nothing handed out can be taken back). A cache hit arrives as a
        single delta. ``.generation`` is set, with its route reason, once the
        stream has ended cleanly. The caller bounds the stream's duration.
        """
        return GenerationStream(lambda out: self._stream(request, out))

    async def _stream(
        self, request: GenerationRequest, out: GenerationStream
    ) -> AsyncGenerator[str, None]:
        route = self._route(request)
        failures: list[str] = []
        for backend_id in route.plan.backend_ids:
            slot = self._open(route, backend_id)
            key, hit = self._cached(route, slot, request)
            if hit is not None:
                out.generation = hit
                yield hit.text
                return
            opener = getattr(slot.backend, "stream", None)
            if opener is None:
                failures.append(f"{backend_id}: cannot stream")
                continue
            if slot.breaker.state == BreakerState.OPEN:
                slot.record("breaker_open")
                failures.append(f"{backend_id}: circuit open")
                continue
            async with slot.gate:
                if not slot.breaker.allow():
                    slot.record("breaker_open")
                    failures.append(f"{backend_id}: circuit open")
                    continue
                inner: GenerationStream = opener(request)
                handed_out = False
                started = time.perf_counter()
                try:
                    async for delta in inner:
                        handed_out = True
                        yield delta
                except BackendUnavailable as exc:
                    slot.breaker.failure()
                    slot.record(_outcome(exc), time.perf_counter() - started)
                    if handed_out:
                        raise
                    failures.append(f"{backend_id}: {exc}")
                    continue
                except GeneratorExit:
                    slot.breaker.success()  # our caller stopped reading
                    raise
                except GenerationFailed as exc:
                    slot.breaker.success()  # it answered; the request is at fault
                    slot.record(_outcome(exc), time.perf_counter() - started)
                    raise
                except BaseException as exc:
                    slot.breaker.failure()
                    slot.record(_outcome(exc), time.perf_counter() - started)
                    raise
                finally:
                    await inner.aclose()
                slot.breaker.success()
            _after(self._answered, slot, time.perf_counter() - started, inner.generation)
            if inner.generation is not None:
                out.generation = replace(
                    inner.generation, route_reason=f"{route.plan.reason}; {_where(slot)}"
                )
                if self.cache is not None and key:
                    self.cache.put(key, out.generation)
            return
        raise _unavailable(route.sensitive, failures, route.plan.reason)

    async def generate_many(
        self, requests: Iterable[GenerationRequest], *, concurrency: int | None = None
    ) -> list[Generation | Exception]:
        """Submit many requests at once so Triton's dynamic batcher can group them.

        At most ``concurrency`` are in flight overall; each backend's own
        ``max_concurrency`` still bounds what reaches it (the cloud included).
        Results come back in request order; a failed item yields its exception.
        """
        gate = asyncio.Semaphore(concurrency or self.batch_concurrency)

        async def one(request: GenerationRequest) -> Generation | Exception:
            async with gate:
                try:
                    return await self.generate(request)
                except Exception as exc:  # reported per item, not for the batch
                    return exc

        return list(await asyncio.gather(*(one(r) for r in requests)))

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
    inference = settings.inference
    cache = None
    if inference.cache.enabled:
        from sluicegate.core.crypto import sealer_from_settings

        # The sealer (and any key file) is made on the first cacheable request.
        cache = ResponseCache(
            lambda: sealer_from_settings(settings),
            inference.cache.ttl_s,
            inference.cache.max_entries,
        )
    limits = {
        bid: BackendLimits(cfg.breaker_failures, cfg.breaker_reset_s, cfg.max_concurrency)
        for bid, cfg in inference.backends.items()
    }
    return PolicyRouter(
        build_backends(settings),
        policy=inference.policy,
        limits=limits,
        # Past the lease the job is presumed lost and re-queued: never wait longer.
        deadline_s=min(inference.deadline_s, settings.pipeline.lease_s),
        cache=cache,
        batch_concurrency=inference.batch_concurrency,
        cost_of=lambda generation: call_cost(inference, generation, datetime.now(UTC)),
    )
