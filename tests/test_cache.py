"""Response cache: cleared de-identified prompts only, sealed, TTL and LRU bounded."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace

from sluicegate.core.crypto import Sealer
from sluicegate.core.interfaces import Generation, Sensitivity, Zone
from sluicegate.inference.cache import ResponseCache, cache_key, cacheable
from sluicegate.inference.router import PolicyRouter
from tests.test_router_policy import Recorder, req


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sealer() -> Sealer:
    return Sealer({"k1": os.urandom(32)}, "k1")


GEN = Generation(
    text="IMPRESSION: [PATIENT-1] nodule.", backend_id="deepseek", model="m", zone=Zone.CLOUD,
    latency_s=1.5, prompt_tokens=10, completion_tokens=5, prompt_cache_hit_tokens=4,
)  # fmt: skip


def test_only_cleared_deidentified_requests_are_cacheable() -> None:
    assert cacheable(req())
    assert not cacheable(req(cleared=False))
    assert not cacheable(req(Sensitivity.PHI))  # even with a clearance attached
    assert not cacheable(req(Sensitivity.PII))
    assert not cacheable(req("mystery"))
    assert not cacheable(req(Sensitivity.PUBLIC))


def test_key_covers_backend_model_params_and_inputs() -> None:
    base = cache_key("deepseek", "m", req())
    assert base == cache_key("deepseek", "m", req())
    assert base != cache_key("other", "m", req())
    assert base != cache_key("deepseek", "m2", req())
    assert base != cache_key("deepseek", "m", replace(req(), max_tokens=9))
    assert base != cache_key("deepseek", "m", req(task="other"))
    assert base != cache_key("deepseek", "m", req(inputs={"findings": "other"}))


def test_round_trip_is_sealed_and_expires() -> None:
    clock = Clock()
    cache = ResponseCache(sealer(), ttl_s=60, clock=clock)
    cache.put("k", GEN)
    (blob,) = cache.sealed_values()
    assert b"IMPRESSION" not in blob and b"nodule" not in blob
    hit = cache.get("k")
    assert hit == replace(GEN, from_cache=True)
    clock.now = 60
    assert cache.get("k") is None and len(cache) == 0


def test_lru_bound() -> None:
    cache = ResponseCache(sealer(), max_entries=2)
    for key in ("a", "b"):
        cache.put(key, GEN)
    assert cache.get("a") is not None  # a is now most recent
    cache.put("c", GEN)
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None


def test_entry_cannot_be_moved_under_another_key() -> None:
    cache = ResponseCache(sealer())
    cache.put("a", GEN)
    cache._entries["b"] = cache._entries["a"]  # simulate tampering
    assert cache.get("b") is None


def test_router_caches_cleared_work_and_never_phi() -> None:
    cloud = Recorder("deepseek", Zone.CLOUD)
    local = Recorder("local", Zone.ONPREM)
    cache = ResponseCache(sealer())
    router = PolicyRouter([cloud, local], cache=cache)

    async def go() -> None:
        first = await router.generate(req())
        second = await router.generate(req())
        assert not first.from_cache and second.from_cache
        assert "cache hit" in second.route_reason and second.backend_id == "deepseek"
        assert len(cloud.received) == 1
        for _ in range(2):
            phi = await router.generate(req(Sensitivity.PHI, inputs={"findings": "Zebulon"}))
            assert not phi.from_cache
        assert len(local.received) == 2 and len(cache) == 1
        uncleared = await router.generate(req(cleared=False))
        assert not uncleared.from_cache and len(cache) == 1

    asyncio.run(go())
    assert all(b"Zebulon" not in blob for blob in cache.sealed_values())


def test_sealer_is_made_on_first_use_only() -> None:
    calls: list[int] = []

    def make() -> Sealer:
        calls.append(1)
        return sealer()

    cache = ResponseCache(make)
    assert calls == []
    cache.put("x", GEN)
    cache.put("y", GEN)
    assert calls == [1]


def test_streamed_answers_are_cached_too_and_phi_streams_are_not() -> None:
    cloud = Recorder("deepseek", Zone.CLOUD)
    local = Recorder("local", Zone.ONPREM)
    cache = ResponseCache(sealer())
    router = PolicyRouter([cloud, local], cache=cache)

    async def text(sensitivity: str) -> tuple[str, bool]:
        stream = router.stream(req(sensitivity))
        body = "".join([d async for d in stream])
        assert stream.generation is not None
        return body, stream.generation.from_cache

    async def go() -> None:
        assert await text(Sensitivity.DEIDENTIFIED) == ("from deepseek", False)
        assert await text(Sensitivity.DEIDENTIFIED) == ("from deepseek", True)
        assert len(cloud.received) == 1
        assert await text(Sensitivity.PHI) == ("from local", False)
        assert await text(Sensitivity.PHI) == ("from local", False)
        assert len(cache) == 1

    asyncio.run(go())
