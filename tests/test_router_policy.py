"""The router's privacy invariants, one test each, plus deadline, limits and batching.

Routing is pure logic over the Backend protocol, so these use small in-test
backends that record exactly what they received.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sluicegate.core.config import (
    BackendConfig,
    InferenceConfig,
    PipelineConfig,
    PolicyConfig,
    Settings,
)
from sluicegate.core.config_loader import ConfigError, load_settings
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Clearance,
    Generation,
    GenerationRequest,
    Sensitivity,
    Zone,
)
from sluicegate.inference.policy import Policy, PolicyError
from sluicegate.inference.router import BackendLimits, PolicyRouter, build_router
from sluicegate.inference.streams import GenerationStream
from sluicegate.inference.triton import TritonBackend
from tests.triton_fixture import LocalTriton

T = TypeVar("T")
INPUTS = {"findings": "[PATIENT-1] has a 4 mm nodule."}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class Recorder:
    """A backend that records requests, fails when told, and can be slow."""

    id: str
    zone: Zone
    model: str = "m"
    down: bool = False
    delay_s: float = 0.0
    received: list[GenerationRequest] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    break_after: int | None = None  # stream: fail after this many deltas

    async def generate(self, request: GenerationRequest) -> Generation:
        self.received.append(request)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.down:
                raise BackendUnavailable(f"{self.id} down")
            return Generation(
                text=f"from {self.id}", backend_id=self.id, model=self.model, zone=self.zone,
                latency_s=0.0,
            )  # fmt: skip
        finally:
            self.in_flight -= 1

    def stream(self, request: GenerationRequest) -> GenerationStream:
        async def produce(out: GenerationStream) -> AsyncGenerator[str, None]:
            self.received.append(request)
            if self.down:
                raise BackendUnavailable(f"{self.id} down")
            for i, word in enumerate(("from ", self.id)):
                if self.break_after is not None and i >= self.break_after:
                    raise BackendUnavailable(f"{self.id} stream cut")
                yield word
            out.generation = Generation(
                text=f"from {self.id}", backend_id=self.id, model=self.model, zone=self.zone,
                latency_s=0.0,
            )  # fmt: skip

        return GenerationStream(produce)

    async def health(self) -> bool:
        return not self.down

    async def aclose(self) -> None:
        return None


def req(
    sensitivity: str = Sensitivity.DEIDENTIFIED,
    *,
    cleared: bool = True,
    channel: str = "fhir",
    task: str = "radiology_report",
    inputs: dict[str, str] | None = None,
) -> GenerationRequest:
    data = dict(inputs or INPUTS)
    return GenerationRequest(
        job_id="j",
        task=task,
        sensitivity=sensitivity,  # type: ignore[arg-type]
        inputs=data,
        channel=channel,
        clearance=Clearance.for_inputs(data) if cleared else None,
    )


def fleet() -> tuple[Recorder, Recorder, Recorder, Recorder]:
    return (
        Recorder("deepseek", Zone.CLOUD),
        Recorder("cloud-b", Zone.CLOUD),
        Recorder("triton-a", Zone.ONPREM),
        Recorder("triton-b", Zone.ONPREM),
    )


def policy(**data: Any) -> PolicyConfig:
    return PolicyConfig.model_validate(data)


# ------------------------------------------------------------ the invariants


@pytest.mark.parametrize("sensitivity", ["phi", "pii", "mystery"])
def test_sensitive_work_never_reaches_cloud_even_if_config_or_clearance_says_so(
    sensitivity: str,
) -> None:
    cloud, cloud_b, a, b = fleet()
    # Even a (forged) clearance and a deidentified-only cloud rule do not help.
    router = PolicyRouter(
        [cloud, cloud_b, a, b], policy=policy(rules=[{"deidentified": ["deepseek"]}])
    )
    result = run(router.generate(req(sensitivity, cleared=True)))
    assert result.zone == Zone.ONPREM and result.backend_id == "triton-a"
    assert cloud.received == [] and cloud_b.received == []
    if sensitivity == "mystery":
        assert "unknown sensitivity treated as phi" in result.route_reason


def test_cloud_gets_only_requests_whose_clearance_covers_the_inputs() -> None:
    cloud, _, a, _ = fleet()
    router = PolicyRouter([cloud, a])
    assert run(router.generate(req(cleared=False))).backend_id == "triton-a"
    # A clearance for other text (inputs edited after the guard) is no clearance.
    stale = req()
    edited = GenerationRequest(**{**stale.__dict__, "inputs": {"findings": "edited"}})
    assert run(router.generate(edited)).backend_id == "triton-a"
    assert cloud.received == []
    ok = run(router.generate(req()))
    assert ok.backend_id == "deepseek" and "deepseek (cloud)" in ok.route_reason
    assert [r.clearance.covers(r.inputs) for r in cloud.received if r.clearance] == [True]


def test_cloud_listed_for_phi_is_a_config_error_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"rules\[0\]\.phi: 'deepseek' is a cloud backend"):
        Policy({"deepseek": Zone.CLOUD}, policy(rules=[{"phi": ["deepseek"]}]))
    config = tmp_path / "c.yaml"
    config.write_text(
        "inference:\n"
        "  backends:\n"
        "    local: {}\n"
        "    deepseek: {zone: cloud, factory: x.y:Z}\n"
        "  policy:\n"
        "    rules:\n"
        "      - channel: '*'\n"
        "        pii: [local, deepseek]\n"
    )
    with pytest.raises(ConfigError, match="'deepseek' is a cloud backend; pii work may only"):
        load_settings(config)
    with pytest.raises(PolicyError, match="unknown backend 'nope'"):
        Policy({"a": Zone.ONPREM}, policy(rules=[{"public": ["nope"]}]))


def test_channel_with_cloud_never_stays_onprem_even_when_cleared() -> None:
    cloud, _, a, _ = fleet()
    router = PolicyRouter([cloud, a], policy=policy(channels={"finance-*": {"cloud": "never"}}))
    result = run(router.generate(req(channel="finance-bank1")))
    assert result.backend_id == "triton-a" and "channel forbids cloud" in result.route_reason
    assert cloud.received == []
    assert router.cloud_eligible("radiology_report", "finance-bank1") is False
    assert router.cloud_eligible("radiology_report", "fhir") is True


def test_fallback_stays_in_the_zone_of_the_first_backend() -> None:
    cloud, cloud_b, a, b = fleet()
    a.down = True
    mixed = policy(rules=[{"deidentified": ["triton-a", "deepseek", "triton-b"]}])
    router = PolicyRouter([cloud, cloud_b, a, b], policy=mixed)
    result = run(router.generate(req()))
    assert result.backend_id == "triton-b" and "fallback stays onprem" in result.route_reason
    assert cloud.received == []
    # And from the cloud side: cloud down falls to the other cloud, never on-prem.
    cloud.down = True
    router = PolicyRouter([cloud, cloud_b, a, b])
    assert run(router.generate(req())).backend_id == "cloud-b"
    cloud_b.down = True
    with pytest.raises(BackendUnavailable, match="no backend available"):
        run(router.generate(req()))
    assert len(b.received) == 1  # only from the first router


def test_all_onprem_down_sensitive_work_raises_unavailable_never_cloud() -> None:
    cloud, cloud_b, a, b = fleet()
    a.down = b.down = True
    router = PolicyRouter([cloud, cloud_b, a, b])
    for _ in range(3):  # the pipeline retries until its deadline; each retry fails closed
        with pytest.raises(BackendUnavailable, match="sensitive work waits"):
            run(router.generate(req("phi", cleared=False)))
    assert cloud.received == [] and cloud_b.received == []


def test_default_policy_deepseek_only_when_key_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    without = Settings(home=str(tmp_path))
    assert list(without.inference.backends) == ["local-triton"]
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test")
    with_key = Settings(home=str(tmp_path))
    ds = with_key.inference.backends["deepseek"]
    assert ds.zone == "cloud" and ds.factory == "sluicegate.inference.deepseek:DeepSeekBackend"
    zones = {k: Zone(v.zone) for k, v in with_key.inference.backends.items()}
    default = Policy(zones)
    assert default.cloud_eligible("radiology_report", "fhir") is True
    cleared = default.plan(req())
    assert cleared.backend_ids == ("deepseek",) and cleared.zone == Zone.CLOUD
    for other in (req(cleared=False), req("phi"), req("public", cleared=False)):
        assert default.plan(other).backend_ids == ("local-triton",)
    assert Policy({"local-triton": Zone.ONPREM}).cloud_eligible("x", "y") is False


def test_route_reason_names_rule_and_backend_without_content() -> None:
    _, _, a, b = fleet()
    a.down = True
    router = PolicyRouter(
        [a, b], policy=policy(rules=[{"task": "radio*", "phi": ["triton-a", "triton-b"]}])
    )
    result = run(router.generate(req("phi", inputs={"findings": "Zebulon Quillfeather"})))
    assert result.route_reason == "rule 0 for phi; triton-b (onprem); after 1 unavailable"
    assert "Zebulon" not in result.route_reason


# ----------------------------------------------- breaker, deadline, limits


def test_open_breaker_skips_backend_and_half_open_probe_recovers() -> None:
    _, _, a, b = fleet()
    a.down = True
    limits = {"triton-a": BackendLimits(breaker_failures=2, breaker_reset_s=0.2)}
    router = PolicyRouter([a, b], limits=limits)
    for _ in range(2):
        run(router.generate(req("phi")))
    assert router.breaker_states() == {"triton-a": "open", "triton-b": "closed"}
    result = run(router.generate(req("phi")))
    assert len(a.received) == 2 and result.backend_id == "triton-b"  # skipped while open
    a.down = False

    async def wait_half_open() -> None:
        while router.breaker_states()["triton-a"] != "half_open":
            await asyncio.sleep(0.02)

    run(asyncio.wait_for(wait_half_open(), 10))
    assert run(router.generate(req("phi"))).backend_id == "triton-a"
    assert router.breaker_states()["triton-a"] == "closed"


def test_deadline_bounds_the_whole_request() -> None:
    slow = Recorder("slow", Zone.ONPREM, delay_s=30)
    router = PolicyRouter([slow], deadline_s=0.2)

    async def go() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(BackendUnavailable, match=r"deadline of 0\.2s"):
            await router.generate(req("phi"))
        return loop.time() - start

    assert run(go()) < 10
    assert router.breaker_states()["slow"] == "closed"  # one failure of five


def test_generate_many_keeps_order_and_bounds_concurrency_per_backend() -> None:
    cloud = Recorder("deepseek", Zone.CLOUD, delay_s=0.05)
    local = Recorder("triton-a", Zone.ONPREM, delay_s=0.05)
    router = PolicyRouter(
        [cloud, local],
        limits={"deepseek": BackendLimits(max_concurrency=3)},
    )
    requests = [req(inputs={"findings": f"item {i}"}) for i in range(12)]
    requests += [req("phi", inputs={"findings": f"phi {i}"}) for i in range(12)]
    results = run(router.generate_many(requests, concurrency=24))
    assert [r.backend_id for r in results if isinstance(r, Generation)] == (
        ["deepseek"] * 12 + ["triton-a"] * 12
    )
    assert cloud.peak == 3  # cloud concurrency bounded
    assert local.peak > 3  # on-prem gets the whole batch at once for dynamic batching
    assert [r.inputs["findings"] for r in local.received] == [f"phi {i}" for i in range(12)]


def test_generate_many_reports_failures_per_item() -> None:
    a = Recorder("triton-a", Zone.ONPREM)
    router = PolicyRouter([a])
    a.down = True
    results = run(router.generate_many([req("phi"), req("phi")], concurrency=1))
    assert all(isinstance(r, BackendUnavailable) for r in results)


def test_build_router_applies_config(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "home": str(tmp_path),
            "inference": {
                "backends": {
                    "local": {"breaker_failures": 2, "max_concurrency": 4},
                    "remote": {"zone": "cloud", "url": "http://127.0.0.1:9"},
                },
                "policy": {"rules": [{"deidentified": ["local", "remote"]}]},
                "deadline_s": 7,
            },
        }
    )
    capped = Settings(
        home=str(tmp_path),
        pipeline=PipelineConfig(lease_s=61),
        inference=InferenceConfig(deadline_s=500),
    )
    assert build_router(capped).deadline_s == 61  # type: ignore[attr-defined]
    router = build_router(settings)
    assert isinstance(router, PolicyRouter)
    assert router.deadline_s == 7 and router.cache is not None
    assert router.cloud_eligible("any", "any") is False  # on-prem listed first
    assert router.breaker_states() == {"local": "closed", "remote": "closed"}
    assert not (tmp_path / "keys").exists()  # no key made until something is cached
    assert BackendConfig().max_concurrency == 16


# ------------------------------------------------------------------ streaming


async def collect(stream: GenerationStream) -> str:
    return "".join([delta async for delta in stream])


def test_stream_follows_the_policy_and_sets_route_reason() -> None:
    cloud, _, a, b = fleet()
    a.down = True
    router = PolicyRouter([cloud, a, b])

    async def go() -> None:
        phi = router.stream(req("phi"))
        assert await collect(phi) == "from triton-b"
        assert phi.generation is not None and phi.generation.backend_id == "triton-b"
        assert phi.generation.route_reason.endswith("triton-b (onprem)")
        cleared = router.stream(req())
        assert await collect(cleared) == "from deepseek"
        assert [r.sensitivity for r in cloud.received] == ["deidentified"]

    run(go())


def test_stream_falls_back_only_before_the_first_delta() -> None:
    _, _, a, b = fleet()
    a.break_after = 0  # fails before any delta: fall back to b
    router = PolicyRouter([a, b])

    async def go() -> None:
        assert await collect(router.stream(req("phi"))) == "from triton-b"
        a.break_after = 1  # fails after one delta: the caller must see the failure
        with pytest.raises(BackendUnavailable, match="stream cut"):
            await collect(router.stream(req("phi")))
        assert len(b.received) == 1

    run(go())


def test_stream_of_sensitive_work_never_falls_to_cloud() -> None:
    cloud, _, a, _ = fleet()
    a.down = True
    router = PolicyRouter([cloud, a])
    with pytest.raises(BackendUnavailable, match="sensitive work waits"):
        run(collect(router.stream(req("pii"))))
    assert cloud.received == []


def test_stream_closed_early_by_the_caller_is_not_a_backend_failure() -> None:
    a = Recorder("triton-a", Zone.ONPREM)
    router = PolicyRouter([a], limits={"triton-a": BackendLimits(breaker_failures=1)})

    async def go() -> None:
        for _ in range(3):
            stream = router.stream(req("phi"))
            assert await stream.__anext__() == "from "
            await stream.aclose()
        assert router.breaker_states() == {"triton-a": "closed"}

    run(go())


def test_waiting_for_a_busy_backend_past_the_deadline_does_not_trip_its_breaker() -> None:
    slow = Recorder("slow", Zone.ONPREM, delay_s=0.5)
    router = PolicyRouter(
        [slow],
        limits={"slow": BackendLimits(breaker_failures=1, max_concurrency=1)},
        deadline_s=5,
    )

    async def go() -> None:
        first = asyncio.create_task(router.generate(req("phi")))
        await asyncio.sleep(0.05)
        router.deadline_s = 0.1  # the second request times out waiting for the slot
        with pytest.raises(BackendUnavailable, match="deadline"):
            await router.generate(req("phi"))
        assert (await first).backend_id == "slow"

    run(go())
    assert router.breaker_states() == {"slow": "closed"} and len(slow.received) == 1


# -------------------------------------------------------------------- metrics


def sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_attempts_breakers_and_cost_reach_the_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    from sluicegate.core import metrics

    # Label values are capped per process; a long test session must not push ours out.
    monkeypatch.setattr(metrics, "bounded", metrics._Bounded())
    calls = "sluicegate_inference_requests_total"
    down = Recorder("m-down", Zone.ONPREM, down=True)
    up = Recorder("m-up", Zone.ONPREM)
    router = PolicyRouter(
        [down, up],
        limits={"m-down": BackendLimits(breaker_failures=1)},
        cost_of=lambda generation: 0.25,
    )
    before_err = sample(calls, backend="m-down", zone="onprem", outcome="error")
    before_ok = sample(calls, backend="m-up", zone="onprem", outcome="ok")
    before_cost = sample("sluicegate_inference_cost_total", backend="m-up", zone="onprem")
    run(router.generate(req("phi")))  # m-down fails (breaker opens), m-up answers
    run(router.generate(req("phi")))  # m-down skipped: breaker open
    assert sample(calls, backend="m-down", zone="onprem", outcome="error") == before_err + 1
    assert sample(calls, backend="m-down", zone="onprem", outcome="breaker_open") >= 1
    assert sample(calls, backend="m-up", zone="onprem", outcome="ok") == before_ok + 2
    assert sample("sluicegate_breaker_state", backend="m-down") == 2.0  # open
    assert sample(
        "sluicegate_inference_cost_total", backend="m-up", zone="onprem"
    ) == pytest.approx(before_cost + 0.5)


def test_one_router_serves_successive_event_loops() -> None:
    """A semaphore binds to one loop; the router must survive ``asyncio.run`` twice."""
    busy = Recorder("busy", Zone.ONPREM, delay_s=0.02)
    router = PolicyRouter([busy], limits={"busy": BackendLimits(max_concurrency=2)})
    for _ in range(2):
        results = run(router.generate_many([req("phi") for _ in range(6)], concurrency=6))
        assert all(isinstance(r, Generation) for r in results)
    assert busy.peak == 2


# ------------------------------------------------- with the real local Triton


def test_batch_and_stream_through_the_real_local_triton(local_triton: LocalTriton) -> None:
    """The router over a real TritonBackend: a batch of sensitive items, then a stream."""
    triton = TritonBackend("local-triton", local_triton.backend_config(max_tokens=8))
    decoupled = TritonBackend(
        "local-triton-stream",
        local_triton.backend_config(model=local_triton.decoupled_model, max_tokens=8),
    )
    cloud = Recorder("deepseek", Zone.CLOUD)

    async def go() -> None:
        router = PolicyRouter(
            [cloud, triton, decoupled],
            policy=policy(rules=[{"phi": ["local-triton-stream"]}]),
            limits={"local-triton": BackendLimits(max_concurrency=4)},
        )
        try:
            items = [
                req("pii", inputs={"findings": f"Nodule {i} mm in the right lower lobe."})
                for i in range(4)
            ]
            results = await router.generate_many(items, concurrency=4)
            assert [r.backend_id for r in results if isinstance(r, Generation)] == [
                "local-triton"
            ] * 4, results
            assert all(isinstance(r, Generation) and r.completion_tokens for r in results)
            stream = router.stream(req("phi"))
            text = "".join([delta async for delta in stream])
            assert stream.generation is not None and stream.generation.text == text.strip()
            assert stream.generation.route_reason.endswith("local-triton-stream (onprem)")
            assert cloud.received == []
        finally:
            await router.aclose()

    run(go())
