"""DeepSeekBackend and the official ``openai`` SDK against a real OpenAI-compatible server.

The peer is llama.cpp's own HTTP server (``xllamacpp``) serving SmolLM2 at
``/v1/chat/completions`` — the local stand-in for the DeepSeek API. For the
same deterministic request (greedy sampling, fixed seed, same token limit) our
client and the SDK must get the same text, streaming and not, and the same
usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from structlog.testing import capture_logs

from sluicegate.core.config import BackendConfig
from sluicegate.core.interfaces import (
    Clearance,
    Generation,
    GenerationFailed,
    GenerationRequest,
    Sensitivity,
    Zone,
)
from sluicegate.inference.deepseek import DeepSeekBackend
from sluicegate.inference.openai_server import OpenAIServer, running_openai_server
from sluicegate.inference.prompts import build_messages

MAX_TOKENS = 16
TEXT = "The chest radiograph shows clear lungs and a normal heart size."
SEED = 42
REQUEST = GenerationRequest(
    job_id="job-peer",
    task="summary",
    sensitivity=Sensitivity.DEIDENTIFIED,
    inputs={"text": TEXT},
    max_tokens=MAX_TOKENS,
    clearance=Clearance.for_inputs({"text": TEXT}),
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def peer() -> Iterator[OpenAIServer]:
    # One thread: llama.cpp threads spin-wait, which hurts on a busy 2-core machine.
    with running_openai_server(model_name="smollm2", threads=1) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_BASE_URL", raising=False)
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)


def ours(peer: OpenAIServer, **overrides: Any) -> DeepSeekBackend:
    fields: dict[str, Any] = {
        "factory": "sluicegate.inference.deepseek:DeepSeekBackend",
        "zone": "cloud",
        "url": peer.base_url,
        "model": peer.model,
        "api_key": "sk-local",
        "temperature": 0.0,
        "seed": SEED,
        "timeout_s": 120.0,
    }
    fields.update(overrides)
    return DeepSeekBackend("stand-in", BackendConfig(**fields))


def sdk_kwargs(peer: OpenAIServer) -> dict[str, Any]:
    return {
        "model": peer.model,
        "messages": [
            {"role": m.role, "content": m.content}
            for m in build_messages(REQUEST.task, REQUEST.inputs)
        ],
        "max_tokens": MAX_TOKENS,
        "temperature": 0.0,
        "seed": SEED,
        "extra_body": {"thinking": {"type": "disabled"}},
    }


def sdk_client(peer: OpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=peer.base_url, api_key="sk-local", timeout=120, max_retries=0)


def test_same_answer_as_the_openai_sdk(peer: OpenAIServer) -> None:
    with sdk_client(peer) as client:
        reference = client.chat.completions.create(**sdk_kwargs(peer))

    async def go() -> Generation:
        backend = ours(peer)
        try:
            assert await backend.health()
            return await backend.generate(REQUEST)
        finally:
            await backend.aclose()

    g = asyncio.run(go())
    content = reference.choices[0].message.content or ""
    assert content.strip()
    assert g.text == content.strip()
    assert g.finish_reason == reference.choices[0].finish_reason
    assert reference.usage is not None
    assert g.prompt_tokens == reference.usage.prompt_tokens
    assert g.completion_tokens == reference.usage.completion_tokens <= MAX_TOKENS
    assert g.prompt_cache_hit_tokens is not None and g.prompt_cache_miss_tokens is not None
    assert g.prompt_cache_hit_tokens + g.prompt_cache_miss_tokens == g.prompt_tokens
    assert (g.zone, g.model, g.backend_id) == (Zone.CLOUD, peer.model, "stand-in")
    assert g.model_version  # the server's fingerprint (or model) is recorded


def test_same_stream_as_the_openai_sdk(peer: OpenAIServer) -> None:
    with sdk_client(peer) as client:
        events = client.chat.completions.create(
            **sdk_kwargs(peer), stream=True, stream_options={"include_usage": True}
        )
        sdk_parts: list[str] = []
        sdk_usage = None
        for event in events:
            if event.choices and event.choices[0].delta.content:
                sdk_parts.append(event.choices[0].delta.content)
            sdk_usage = event.usage or sdk_usage

    async def go() -> tuple[list[str], Generation | None]:
        backend = ours(peer)
        try:
            stream = backend.stream(REQUEST)
            parts = [delta async for delta in stream]
            return parts, stream.generation
        finally:
            await backend.aclose()

    parts, g = asyncio.run(go())
    assert len(parts) > 1  # really streamed, delta by delta
    assert "".join(parts).strip() == "".join(sdk_parts).strip()
    assert g is not None and g.text == "".join(sdk_parts).strip()
    assert sdk_usage is not None
    assert (g.prompt_tokens, g.completion_tokens) == (
        sdk_usage.prompt_tokens,
        sdk_usage.completion_tokens,
    )


def test_generate_over_sse_matches_the_plain_answer(peer: OpenAIServer) -> None:
    async def go() -> tuple[Generation, Generation]:
        plain, streamed = ours(peer), ours(peer, stream=True)
        try:
            return await plain.generate(REQUEST), await streamed.generate(REQUEST)
        finally:
            await plain.aclose()
            await streamed.aclose()

    plain, streamed = asyncio.run(go())
    assert plain.text == streamed.text
    assert plain.completion_tokens == streamed.completion_tokens


def test_a_prompt_over_the_context_is_refused_not_retried(peer: OpenAIServer) -> None:
    too_long = GenerationRequest(
        job_id="job-long",
        task="summary",
        sensitivity=Sensitivity.DEIDENTIFIED,
        inputs={"text": "lung " * 4000},  # far beyond the server's 2048-token context
        max_tokens=MAX_TOKENS,
        clearance=Clearance.for_inputs({"text": "lung " * 4000}),
    )

    async def go() -> None:
        backend = ours(peer)
        try:
            await backend.generate(too_long)
        finally:
            await backend.aclose()

    with capture_logs() as logs, pytest.raises(GenerationFailed, match=r"HTTP 4\d\d") as caught:
        asyncio.run(go())
    assert "lung lung" not in str(caught.value)
    assert not [e for e in logs if e["event"] == "inference.retry"]
