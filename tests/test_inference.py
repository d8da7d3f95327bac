"""Inference layer: prompts, the privacy routing policy, and Triton error mapping.

The router tests use tiny in-test backends (the policy is pure logic); the
error-mapping tests use real sockets and, for "wrong model", the real local
Triton from ``triton_fixture``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

from sluicegate.core.config import BackendConfig, InferenceConfig, Settings
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Generation,
    GenerationFailed,
    GenerationRequest,
    Sensitivity,
    Zone,
)
from sluicegate.core.registry import PluginError
from sluicegate.inference.prompts import (
    Message,
    build_messages,
    format_chat,
    known_tasks,
    stop_sequences,
    strip_think,
)
from sluicegate.inference.router import PolicyRouter, build_router
from sluicegate.inference.triton import TritonBackend, split_url
from tests.triton_fixture import LocalTriton

T = TypeVar("T")

# Distinctive "PHI" that must never show up in an error message.
PATIENT = "Zebulon Quillfeather"
FINDINGS = f"Patient {PATIENT}, MRN 99887766: 4 mm nodule in the right upper lobe."
RADIOLOGY = {
    "procedure": "CT chest without contrast",
    "modality": "CT",
    "clinical_history": "Chronic cough.",
    "findings": FINDINGS,
}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def request(
    sensitivity: Sensitivity | str = Sensitivity.PHI, task: str = "radiology_report"
) -> GenerationRequest:
    return GenerationRequest(
        job_id="job-1",
        task=task,
        sensitivity=sensitivity,  # type: ignore[arg-type]
        inputs=dict(RADIOLOGY),
        max_tokens=16,
    )


# ------------------------------------------------------------------ prompts


def test_radiology_prompt_carries_inputs_and_asks_for_impression() -> None:
    messages = build_messages("radiology_report", RADIOLOGY)
    assert [m.role for m in messages] == ["system", "user"]
    assert "radiology report" in messages[0].content.lower()
    user = messages[1].content
    for value in RADIOLOGY.values():
        assert value in user
    assert "IMPRESSION" in messages[0].content + user
    assert "radiology_report" in known_tasks()


def test_radiology_prompt_tolerates_missing_optional_inputs() -> None:
    messages = build_messages("radiology_report", {"findings": "Normal study."})
    assert "Not provided." in messages[1].content


def test_missing_findings_is_permanent_and_names_only_the_field() -> None:
    with pytest.raises(GenerationFailed, match="findings") as info:
        build_messages("radiology_report", {"procedure": PATIENT})
    assert PATIENT not in str(info.value)


def test_unknown_task_is_permanent() -> None:
    with pytest.raises(GenerationFailed, match="no prompt template"):
        build_messages("tarot_reading", {})


def test_format_chatml() -> None:
    text = format_chat([Message("system", "S"), Message("user", "U")], "chatml")
    assert text == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    )


def test_format_llama3() -> None:
    text = format_chat([Message("system", "S"), Message("user", "U")], "llama3")
    assert text == (
        "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert stop_sequences("llama3") == ["<|eot_id|>"]
    with pytest.raises(GenerationFailed):
        format_chat([Message("user", "U")], "alpaca")


def test_format_none_is_plain_text() -> None:
    text = format_chat([Message("system", "S"), Message("user", "U")], "none")
    assert "<|" not in text
    assert text.startswith("S") and "U" in text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<think>hmm</think>Answer", "Answer"),
        ("<think>a\nb</think>\nOne <think>x</think>Two", "One Two"),
        ("reasoning without opening tag</think> Answer", "Answer"),
        ("Answer <think>cut off mid-thought", "Answer"),
        ("<THINK>x</THINK>ok", "ok"),
        ("no tags at all", "no tags at all"),
    ],
)
def test_strip_think(raw: str, clean: str) -> None:
    assert strip_think(raw) == clean


# ------------------------------------------------------------------- router


@dataclass
class FakeBackend:
    """Records what it received; behaves as told."""

    id: str
    zone: Zone
    fail_with: type[Exception] | None = None
    model: str = "fake"
    received: list[GenerationRequest] = field(default_factory=list)
    healthy: bool | None = True
    closed: bool = False
    calls: list[str] = field(default_factory=list)  # may be shared to record order

    async def generate(self, request: GenerationRequest) -> Generation:
        self.received.append(request)
        self.calls.append(self.id)
        if self.fail_with is not None:
            raise self.fail_with(f"{self.id} says no")
        return Generation(
            text=f"from {self.id}",
            backend_id=self.id,
            model=self.model,
            zone=self.zone,
            latency_s=0.0,
        )

    async def health(self) -> bool:
        if self.healthy is None:
            raise RuntimeError("health probe crashed")
        return self.healthy

    async def aclose(self) -> None:
        self.closed = True


def fleet(*, onprem_down: bool = False) -> tuple[FakeBackend, FakeBackend, FakeBackend]:
    down = BackendUnavailable if onprem_down else None
    # The cloud backend is listed first on purpose: order within policy still puts on-prem first.
    cloud = FakeBackend("cloud", Zone.CLOUD)
    a = FakeBackend("onprem-a", Zone.ONPREM, fail_with=down)
    b = FakeBackend("onprem-b", Zone.ONPREM, fail_with=down)
    return cloud, a, b


@pytest.mark.parametrize("sensitivity", [Sensitivity.PHI, Sensitivity.PII, "phi", "unknown-label"])
def test_sensitive_work_never_reaches_the_cloud_even_when_onprem_is_down(sensitivity: Any) -> None:
    cloud, a, b = fleet(onprem_down=True)
    router = PolicyRouter([cloud, a, b])
    with pytest.raises(BackendUnavailable, match="no on-prem backend available; sensitive work"):
        run(router.generate(request(sensitivity)))
    assert cloud.received == []
    assert len(a.received) == 1 and len(b.received) == 1  # both on-prem tried, in order


def test_sensitive_work_uses_first_healthy_onprem() -> None:
    cloud, a, b = fleet()
    a.fail_with = BackendUnavailable
    result = run(PolicyRouter([cloud, a, b]).generate(request(Sensitivity.PHI)))
    assert result.backend_id == "onprem-b"
    assert cloud.received == []


def test_sensitive_work_with_no_onprem_configured_waits() -> None:
    cloud = FakeBackend("cloud", Zone.CLOUD)
    with pytest.raises(BackendUnavailable, match="sensitive work waits"):
        run(PolicyRouter([cloud]).generate(request(Sensitivity.PII)))
    assert cloud.received == []


@pytest.mark.parametrize("sensitivity", [Sensitivity.DEIDENTIFIED, Sensitivity.PUBLIC])
def test_non_sensitive_work_prefers_onprem(sensitivity: Sensitivity) -> None:
    cloud, a, b = fleet()
    result = run(PolicyRouter([cloud, a, b]).generate(request(sensitivity)))
    assert result.backend_id == "onprem-a"
    assert cloud.received == [] and b.received == []


def test_non_sensitive_work_never_falls_back_across_zones() -> None:
    # Fallback stays in the trust zone, and uncleared work never reaches the cloud
    # (tests/test_router_policy.py covers the policy in full).
    cloud, a, b = fleet(onprem_down=True)
    order: list[str] = []
    for backend in (cloud, a, b):
        backend.calls = order
    with pytest.raises(BackendUnavailable, match="no backend available"):
        run(PolicyRouter([cloud, a, b]).generate(request(Sensitivity.DEIDENTIFIED)))
    assert order == ["onprem-a", "onprem-b"]


def test_generation_failed_is_not_retried_elsewhere() -> None:
    cloud, a, b = fleet()
    a.fail_with = GenerationFailed
    with pytest.raises(GenerationFailed):
        run(PolicyRouter([cloud, a, b]).generate(request(Sensitivity.PUBLIC)))
    assert b.received == [] and cloud.received == []


def test_all_down_for_public_work_is_unavailable() -> None:
    cloud, a, b = fleet(onprem_down=True)
    cloud.fail_with = BackendUnavailable
    with pytest.raises(BackendUnavailable, match="no backend available"):
        run(PolicyRouter([cloud, a, b]).generate(request(Sensitivity.PUBLIC)))


def test_health_and_aclose() -> None:
    cloud, a, b = fleet()
    b.healthy = None  # a crashing probe counts as down
    cloud.healthy = False
    router = PolicyRouter([cloud, a, b])
    assert run(router.health()) == {"cloud": False, "onprem-a": True, "onprem-b": False}
    run(router.aclose())
    assert cloud.closed and a.closed and b.closed


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        PolicyRouter([FakeBackend("x", Zone.ONPREM), FakeBackend("x", Zone.CLOUD)])


def lying_backend(backend_id: str, cfg: BackendConfig) -> FakeBackend:
    """A factory whose backend claims a different zone than its config."""
    return FakeBackend(backend_id, Zone.CLOUD if cfg.zone == "onprem" else Zone.ONPREM)


def settings_with(**backends: BackendConfig) -> Settings:
    return Settings(inference=InferenceConfig(backends=backends))


def test_build_router_from_settings() -> None:
    settings = settings_with(
        local=BackendConfig(),
        cloud=BackendConfig(zone="cloud", url="https://llm.example.com", model="big"),
    )
    router = build_router(settings)
    assert isinstance(router, PolicyRouter)
    assert [(b.id, b.zone) for b in router.backends] == [
        ("local", Zone.ONPREM),
        ("cloud", Zone.CLOUD),
    ]
    assert all(isinstance(b, TritonBackend) for b in router.backends)


def test_build_router_rejects_zone_mismatch_and_bad_paths() -> None:
    with pytest.raises(ValueError, match="zone"):
        build_router(settings_with(x=BackendConfig(factory=f"{__name__}:lying_backend")))
    with pytest.raises(PluginError):
        build_router(settings_with(x=BackendConfig(factory="sluicegate.nope:Missing")))


# ------------------------------------------------------ Triton error mapping


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_safe(message: str, backend_id: str, url_part: str) -> None:
    assert backend_id in message and url_part in message
    assert PATIENT not in message and "99887766" not in message


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_closed_port_is_unavailable_without_phi(protocol: Literal["http", "grpc"]) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}" if protocol == "http" else f"grpc://127.0.0.1:{port}"
    cfg = BackendConfig(url=url, protocol=protocol, timeout_s=10)

    async def go() -> None:
        backend = TritonBackend("onprem-down", cfg)
        try:
            with pytest.raises(BackendUnavailable) as info:
                await backend.generate(request())
            assert_safe(str(info.value), "onprem-down", str(port))
            assert await backend.health() is False
        finally:
            await backend.aclose()

    run(go())


def test_unresolvable_host_is_unavailable() -> None:
    cfg = BackendConfig(url="http://no-such-host.invalid:8000", timeout_s=5)

    async def go() -> str:
        backend = TritonBackend("dns", cfg)
        try:
            with pytest.raises(BackendUnavailable) as info:
                await backend.generate(request())
        finally:
            await backend.aclose()
        return str(info.value)

    assert_safe(run(go()), "dns", "no-such-host.invalid")


@contextlib.asynccontextmanager
async def http_stub(
    answer: Callable[[bytes], tuple[int, bytes] | None],
) -> AsyncIterator[int]:
    """A one-line HTTP server: ``answer(request_head)`` gives (status, body); None = hang."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        reply = answer(head)
        if reply is None:
            await asyncio.sleep(3600)
            return
        status, body = reply
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, BackendUnavailable),
        (500, BackendUnavailable),
        (429, BackendUnavailable),
        (400, GenerationFailed),
        (404, GenerationFailed),
        (501, GenerationFailed),
    ],
)
def test_http_status_mapping_and_echoed_phi_is_withheld(
    status: int, error: type[Exception]
) -> None:
    # The server's error text repeats the patient's name: it must not reach our message.
    body = f'{{"error": "cannot handle {FINDINGS}"}}'.encode()

    async def go() -> str:
        async with http_stub(lambda _head: (status, body)) as port:
            backend = TritonBackend("stub", BackendConfig(url=f"http://127.0.0.1:{port}"))
            try:
                with pytest.raises(error) as info:
                    await backend.generate(request())
            finally:
                await backend.aclose()
            return str(info.value)

    message = run(go())
    assert_safe(message, "stub", "127.0.0.1")
    assert "withheld" in message


def test_pytriton_bad_parameter_500_is_permanent() -> None:
    body = b'{"error": "Traceback...\\npytriton.exceptions.PyTritonBadParameterError: bad knob\\n"}'

    async def go() -> str:
        async with http_stub(lambda _head: (500, body)) as port:
            backend = TritonBackend("stub", BackendConfig(url=f"http://127.0.0.1:{port}"))
            try:
                with pytest.raises(GenerationFailed) as info:
                    await backend.generate(request())
            finally:
                await backend.aclose()
            return str(info.value)

    assert "bad knob" in run(go())


def test_timeout_is_unavailable() -> None:
    async def go() -> str:
        async with http_stub(lambda _head: None) as port:
            cfg = BackendConfig(url=f"http://127.0.0.1:{port}", timeout_s=0.5)
            backend = TritonBackend("slow", cfg)
            try:
                with pytest.raises(BackendUnavailable) as info:
                    await backend.generate(request())
            finally:
                await backend.aclose()
            return str(info.value)

    message = run(go())
    assert "did not answer within 0.5s" in message
    assert_safe(message, "slow", "127.0.0.1")


def test_unknown_task_fails_before_any_network_call() -> None:
    backend = TritonBackend("x", BackendConfig(url=f"http://127.0.0.1:{closed_port()}"))
    with pytest.raises(GenerationFailed, match="no prompt template"):
        run(backend.generate(request(task="tarot_reading")))


def test_split_url() -> None:
    assert split_url("http://h:1", "http") == ("h:1", False)
    assert split_url("https://h", "http") == ("h:443", True)
    assert split_url("grpc://h:8001", "grpc") == ("h:8001", False)
    assert split_url("grpcs://h:8001", "grpc") == ("h:8001", True)
    assert split_url("h:8001", "grpc") == ("h:8001", False)


def test_credentials_in_url_are_not_printed() -> None:
    backend = TritonBackend("b", BackendConfig(url="https://user:s3cret@h:8443/x"))
    assert "s3cret" not in repr(backend)
    assert "https://h:8443/x" in repr(backend)


@pytest.mark.e2e
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_wrong_model_on_real_triton_is_permanent(local_triton: LocalTriton, protocol: str) -> None:
    cfg = local_triton.backend_config(protocol, model="no-such-model")

    async def go() -> None:
        backend = TritonBackend("local", cfg)
        try:
            with pytest.raises(GenerationFailed) as info:
                await backend.generate(request())
            port = local_triton.http_port if protocol == "http" else local_triton.grpc_port
            assert_safe(str(info.value), "local", str(port))
            assert await backend.health() is False
        finally:
            await backend.aclose()

    run(go())


# ------------------------------------------------- GPU deployment contract

GPU_REPO = Path(__file__).resolve().parents[1] / "deploy" / "triton" / "model_repository"


def test_gpu_model_repository_speaks_the_client_contract() -> None:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    model_dir = GPU_REPO / "llama3-8b-instruct"
    config = text_format.Parse(
        (model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    assert config.backend == "vllm"
    assert config.model_transaction_policy.decoupled  # the client must stream or `generate`
    inputs = {i.name for i in config.input}
    assert {"text_input", "sampling_parameters", "exclude_input_in_output"} <= inputs
    assert "text_output" in {o.name for o in config.output}
    engine = json.loads((model_dir / "1" / "model.json").read_text())
    assert engine["disable_log_requests"] is True  # prompts are PHI
