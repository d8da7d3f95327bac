"""TritonBackend against the real local tritonserver: infer, generate, generate_stream.

The shared ``local_triton`` fixture serves SmolLM2 twice: a plain model (KServe
v2 ``infer``) and its decoupled, vLLM-like twin (``generate`` /
``generate_stream`` over HTTP, streaming over gRPC). Faults the real server
cannot be made to produce on demand (a model crash reported as an SSE event
under HTTP 200, "model not ready") come from a small stub speaking Triton's
wire format. The kill test starts its own server, never the shared one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import uvicorn

from sluicegate.core.config import BackendConfig
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Generation,
    GenerationFailed,
    GenerationRequest,
    Sensitivity,
    Zone,
)
from sluicegate.inference.triton import TritonBackend
from tests.conftest import free_port
from tests.triton_fixture import LocalTriton, running_local_triton

FINDINGS = "Right lower lobe consolidation. No pleural effusion."


def request(max_tokens: int = 8) -> GenerationRequest:
    return GenerationRequest(
        job_id="job-t",
        task="summary",
        sensitivity=Sensitivity.PHI,
        inputs={"text": FINDINGS},
        max_tokens=max_tokens,
    )


def cfg(server: LocalTriton, protocol: str, decoupled: bool, **kw: Any) -> BackendConfig:
    model = server.decoupled_model if decoupled else server.model
    return server.backend_config(protocol, model=model, temperature=0.0, **kw)


async def collect(backend: TritonBackend, req: GenerationRequest) -> tuple[list[str], Generation]:
    stream = backend.stream(req)
    parts = [delta async for delta in stream]
    assert stream.generation is not None
    return parts, stream.generation


# --------------------------------------------------------------- the real server


@pytest.mark.e2e
@pytest.mark.parametrize("decoupled", [False, True], ids=["infer", "generate"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_generate_and_stream_agree(
    local_triton: LocalTriton, protocol: str, decoupled: bool
) -> None:
    async def go() -> tuple[Generation, list[str], Generation]:
        backend = TritonBackend("local", cfg(local_triton, protocol, decoupled))
        try:
            assert await backend.health()
            whole = await backend.generate(request())
            parts, streamed = await collect(backend, request())
            return whole, parts, streamed
        finally:
            await backend.aclose()

    whole, parts, streamed = asyncio.run(go())
    assert whole.text and "<|im_" not in whole.text
    assert whole.zone == Zone.ONPREM and whole.model_version == "1"
    assert whole.finish_reason in {"stop", "length"}
    assert whole.prompt_tokens and whole.prompt_tokens > 10
    assert whole.completion_tokens and 0 < whole.completion_tokens <= 8
    # Greedy sampling: the streamed answer is the same answer, token for token.
    assert streamed.text == whole.text == "".join(parts).strip()
    assert (streamed.completion_tokens, streamed.prompt_tokens) == (
        whole.completion_tokens,
        whole.prompt_tokens,
    )
    assert streamed.model_version == "1"
    if decoupled:  # generate_stream / gRPC streaming: really delta by delta
        assert len(parts) > 1
    else:  # a non-decoupled model answers in one piece
        assert len(parts) == 1


@pytest.mark.e2e
def test_refusal_as_an_sse_error_event_is_a_clear_failure(local_triton: LocalTriton) -> None:
    # A negative token limit reaches the model, which refuses it; Triton's generate_stream
    # sends the refusal as an SSE error event (status 400 when it is the first response).
    async def go() -> None:
        backend = TritonBackend("local", cfg(local_triton, "http", decoupled=True))
        try:
            with pytest.raises(GenerationFailed, match="max_tokens") as info:
                await collect(backend, request(max_tokens=-3))
            assert FINDINGS not in str(info.value)
            assert await backend.health()  # the server is still serving
        finally:
            await backend.aclose()

    asyncio.run(go())


@pytest.mark.e2e
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_model_version_not_ready(local_triton: LocalTriton, protocol: str) -> None:
    async def go() -> None:
        backend = TritonBackend("local", cfg(local_triton, protocol, False, model_version="7"))
        try:
            assert await backend.health() is False  # server live, version 7 not ready
            with pytest.raises(GenerationFailed, match="version 7"):
                await backend.generate(request())
        finally:
            await backend.aclose()

    asyncio.run(go())


@pytest.mark.e2e
def test_server_killed_mid_request(tmp_path: Path) -> None:
    """A separate tritonserver, SIGKILLed while it streams: unavailable, never hangs."""
    with running_local_triton(tmp_path / "doomed") as server:

        async def drain(backend: TritonBackend) -> None:
            async for _ in backend.stream(request(max_tokens=400)):
                pass

        async def go() -> None:
            streaming = TritonBackend("doomed", cfg(server, "http", True, timeout_s=60))
            plain = TritonBackend("doomed-grpc", cfg(server, "grpc", False, timeout_s=60))
            grpc_stream = TritonBackend("doomed-grpc-s", cfg(server, "grpc", True, timeout_s=60))
            try:
                assert await plain.health()
                stream = streaming.stream(request(max_tokens=400))
                first = await stream.__anext__()
                assert first
                # Two more requests in flight (queued behind the first on this 1-slot model).
                pending = asyncio.ensure_future(plain.generate(request(max_tokens=400)))
                pending_stream = asyncio.ensure_future(drain(grpc_stream))
                await asyncio.sleep(0.3)
                os.killpg(server.pid, signal.SIGKILL)
                started = time.monotonic()
                with pytest.raises(BackendUnavailable) as info:
                    async for _ in stream:
                        pass
                assert FINDINGS not in str(info.value)
                for task in (pending, pending_stream):
                    with pytest.raises(BackendUnavailable) as info:
                        await task
                    assert FINDINGS not in str(info.value)
                assert time.monotonic() - started < 30
                assert await plain.health() is False
                with pytest.raises(BackendUnavailable):
                    await streaming.generate(request())
            finally:
                for backend in (streaming, plain, grpc_stream):
                    await backend.aclose()

        asyncio.run(go())


# ------------------------------------------- Triton wire-format stub for faults

_METADATA = {
    "name": "m",
    "versions": ["1"],
    "platform": "python",
    "inputs": [
        {"name": "text_input", "datatype": "BYTES", "shape": [1]},
        {"name": "sampling_parameters", "datatype": "BYTES", "shape": [1]},
        {"name": "exclude_input_in_output", "datatype": "BOOL", "shape": [1]},
        {"name": "stream", "datatype": "BOOL", "shape": [1]},
    ],
    "outputs": [{"name": "text_output", "datatype": "BYTES", "shape": [-1]}],
}
_CONFIG = {"name": "m", "model_transaction_policy": {"decoupled": True}}


class TritonStub:
    """Model metadata/config as Triton sends them, then a scripted generate_stream."""

    def __init__(self, stream_body: Callable[[], list[bytes]], status: int = 200) -> None:
        self.port = free_port()
        self.stream_body = stream_body
        self.status = status
        self.bodies: list[Any] = []
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            lifespan="off",
            interface="asgi3",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        if path.endswith("/generate_stream"):
            self.bodies.append(json.loads(raw))
            kind = b"text/event-stream" if self.status == 200 else b"application/json"
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status,
                    "headers": [(b"content-type", kind)],
                }
            )
            for piece in self.stream_body():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        body = _CONFIG if path.endswith("/config") else _METADATA
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    def __enter__(self) -> TritonStub:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def _stub_stream(stub: TritonStub) -> tuple[list[str], BaseException | None]:
    async def go() -> tuple[list[str], BaseException | None]:
        backend = TritonBackend(
            "stub", BackendConfig(url=f"http://127.0.0.1:{stub.port}", model="m")
        )
        parts: list[str] = []
        try:
            async for delta in backend.stream(request()):
                parts.append(delta)
        except (BackendUnavailable, GenerationFailed) as exc:
            return parts, exc
        finally:
            await backend.aclose()
        return parts, None

    return asyncio.run(go())


@pytest.fixture
def crash_stub() -> Iterator[TritonStub]:
    def body() -> list[bytes]:
        return [
            _event({"text_output": "Consolid", "finish_reason": "", "model_version": "3"}),
            _event({"error": f"TritonModelException: engine died while serving {FINDINGS}"}),
        ]

    with TritonStub(body) as stub:
        yield stub


def test_model_crash_event_under_200_is_unavailable(crash_stub: TritonStub) -> None:
    parts, error = _stub_stream(crash_stub)
    assert parts == ["Consolid"]
    assert isinstance(error, BackendUnavailable)
    assert "withheld" in str(error) and FINDINGS not in str(error)
    (sent,) = crash_stub.bodies
    assert sent["stream"] is True and sent["exclude_input_in_output"] is True
    assert json.loads(sent["sampling_parameters"])["max_tokens"] == 8
    assert sent["text_input"].endswith("<|im_start|>assistant\n")


def test_model_not_ready_is_unavailable() -> None:
    with TritonStub(lambda: [b'{"error":"Model version not ready"}'], status=400) as stub:
        parts, error = _stub_stream(stub)
    assert parts == [] and isinstance(error, BackendUnavailable)
    assert "not ready" in str(error)


def test_think_blocks_are_stripped_from_a_stream() -> None:
    def body() -> list[bytes]:
        pieces = ["<think>", "weigh the ", "options</th", "ink>\n\n", "Pneumonia", "."]
        events = [_event({"text_output": p, "finish_reason": ""}) for p in pieces]
        final = {
            "text_output": "",
            "finish_reason": "stop",
            "num_input_tokens": 30,
            "num_output_tokens": 9,
            "model_version": "2",
        }
        return [*events, _event(final)]

    with TritonStub(body) as stub:

        async def go() -> tuple[list[str], Generation]:
            url = f"http://127.0.0.1:{stub.port}"
            backend = TritonBackend("stub", BackendConfig(url=url, model="m"))
            try:
                return await collect(backend, request())
            finally:
                await backend.aclose()

        parts, g = asyncio.run(go())
    assert "".join(parts) == "Pneumonia."
    assert g.text == "Pneumonia." and g.finish_reason == "stop"
    assert (g.prompt_tokens, g.completion_tokens, g.model_version) == (30, 9, "2")


# ------------------------------------ the tensors we send fit the GPU deployments

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "triton"
_DTYPES = {"TYPE_STRING": "BYTES", "TYPE_INT32": "INT32", "TYPE_FP32": "FP32",
           "TYPE_UINT64": "UINT64", "TYPE_BOOL": "BOOL"}  # fmt: skip


def _text_models() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("config.pbtxt") if '"text_input"' in p.read_text())


def test_deploy_repositories_have_text_models() -> None:
    names = {p.parent.name for p in _text_models()}
    assert {"llama3-8b-instruct", "deepseek-r1-distill-trtllm"} <= names


@pytest.mark.parametrize("config_path", _text_models(), ids=lambda p: p.parent.name)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_request_tensors_match_the_model_config(
    config_path: Path, protocol: Literal["http", "grpc"]
) -> None:
    """Every tensor we would send is declared, with its dtype and (batched) shape."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from sluicegate.inference.triton_wire import ModelInfo

    config = text_format.Parse(config_path.read_text(), model_config_pb2.ModelConfig())
    declared = {i.name: i for i in config.input}
    backend = TritonBackend(
        "gpu", BackendConfig(model=config_path.parent.name, protocol=protocol, seed=5)
    )
    backend._info = ModelInfo(
        inputs=frozenset(declared),
        decoupled=config.model_transaction_policy.decoupled,
        batched=config.max_batch_size > 0,
    )
    values = backend._tensor_values("prompt", 16, backend._info.inputs)
    tensors = backend._infer_inputs(values)
    sent = {t.name(): t for t in tensors}
    assert set(sent) <= set(declared)
    assert {n for n, i in declared.items() if not i.optional} <= set(sent)
    for name, tensor in sent.items():
        spec = declared[name]
        assert tensor.datatype() == _DTYPES[model_config_pb2.DataType.Name(spec.data_type)]
        dims = ([1] if config.max_batch_size > 0 else []) + list(spec.dims)
        shape = tensor.shape()
        assert len(shape) == len(dims), (name, shape, dims)
        assert all(d in (-1, s) for s, d in zip(shape, dims, strict=True)), (name, shape, dims)
    if "max_tokens" in sent and "sampling_parameters" not in declared:
        assert {"temperature", "random_seed"} <= set(sent)  # TensorRT-LLM style options
