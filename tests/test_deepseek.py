"""DeepSeekBackend against a fault server speaking DeepSeek's exact wire format.

Every test checks what the server received (model, messages, thinking flag,
stream options, response format, auth) as well as what the backend made of
the answer: retries counted, Retry-After honoured, permanent errors not
retried, usage and context-cache counters parsed, no request text in errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from sluicegate.core.config import BackendConfig
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Clearance,
    Generation,
    GenerationFailed,
    GenerationRequest,
    Sensitivity,
    Zone,
)
from sluicegate.inference.deepseek import DEFAULT_BASE_URL, DEFAULT_MODEL, DeepSeekBackend
from sluicegate.inference.errors import WITHHELD, safe_reason
from sluicegate.inference.prompts import build_messages
from sluicegate.inference.retrying import parse_retry_after
from sluicegate.inference.sse import SseEvent, iter_sse
from sluicegate.inference.streams import ThinkFilter
from tests.deepseek_fault_server import (
    FINGERPRINT,
    KEEP_ALIVE,
    FaultServer,
    Reply,
    chunk,
    completion,
    stream_events,
    usage,
)

KEY = "sk-test-0123456789"
FINDINGS = "Small left pleural effusion. Heart size normal."
REQUEST = GenerationRequest(
    job_id="job-1",
    task="summary",
    sensitivity=Sensitivity.DEIDENTIFIED,
    inputs={"text": FINDINGS},
    max_tokens=32,
    clearance=Clearance.for_inputs({"text": FINDINGS}),
)


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    srv = FaultServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fault(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    """The shared server, emptied; afterwards every request it got is checked for shape."""
    monkeypatch.delenv("DEEPSEEK_BASE_URL", raising=False)
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    server.reset()
    yield server
    for post in server.posts():
        body = post.body
        assert body is not None and body["model"] == "deepseek-flash"
        assert body["messages"][-2:] == expected_messages()  # no template formatting
        assert body["thinking"]["type"] in {"enabled", "disabled"}
        assert ("stream_options" in body) is body["stream"]
        assert post.headers["content-type"] == "application/json"


def backend(server: FaultServer, **overrides: Any) -> DeepSeekBackend:
    fields: dict[str, Any] = {
        "factory": "sluicegate.inference.deepseek:DeepSeekBackend",
        "zone": "cloud",
        "url": server.base_url,
        "model": "deepseek-flash",
        "api_key": KEY,
        "timeout_s": 20.0,
        "retry_backoff_s": 0.05,
        "retry_backoff_max_s": 0.2,
        "temperature": 0.0,
    }
    fields.update(overrides)
    return DeepSeekBackend("deepseek", BackendConfig(**fields))


def generate(b: DeepSeekBackend, request: GenerationRequest = REQUEST) -> Generation:
    async def go() -> Generation:
        try:
            return await b.generate(request)
        finally:
            await b.aclose()

    return asyncio.run(go())


def stream(b: DeepSeekBackend) -> tuple[list[str], Generation | None, BaseException | None]:
    """Deltas received, the final generation, and the error that ended the stream."""

    async def go() -> tuple[list[str], Generation | None, BaseException | None]:
        s = b.stream(REQUEST)
        parts: list[str] = []
        try:
            async for delta in s:
                parts.append(delta)
        except (BackendUnavailable, GenerationFailed) as exc:
            return parts, None, exc
        finally:
            await b.aclose()
        return parts, s.generation, None

    return asyncio.run(go())


def expected_messages() -> list[dict[str, str]]:
    return [
        {"role": m.role, "content": m.content} for m in build_messages("summary", REQUEST.inputs)
    ]


# ------------------------------------------------------------ request and answer


def test_request_body_and_parsed_answer(fault: FaultServer) -> None:
    g = generate(backend(fault))
    (post,) = fault.posts()
    assert post.path == "/chat/completions"
    assert post.headers["authorization"] == f"Bearer {KEY}"
    assert post.body == {
        "model": "deepseek-flash",
        "messages": expected_messages(),
        "max_tokens": 32,
        "stream": False,
        "thinking": {"type": "disabled"},
        "temperature": 0.0,
    }
    assert g.text == "IMPRESSION: no acute findings."
    assert (g.backend_id, g.model, g.zone) == ("deepseek", "deepseek-flash", Zone.CLOUD)
    assert g.finish_reason == "stop"
    assert (g.prompt_tokens, g.completion_tokens) == (21, 5)
    assert (g.prompt_cache_hit_tokens, g.prompt_cache_miss_tokens) == (16, 5)
    assert g.model_version == FINGERPRINT
    assert g.latency_s > 0


def test_one_pooled_connection_serves_consecutive_calls(fault: FaultServer) -> None:
    async def go() -> None:
        b = backend(fault)
        try:
            await b.generate(REQUEST)
            await b.generate(REQUEST)
        finally:
            await b.aclose()

    asyncio.run(go())
    first, second = fault.posts()
    assert first.client is not None and first.client == second.client


def test_keep_alive_blank_lines_before_a_json_body(fault: FaultServer) -> None:
    fault.script(Reply(json=completion("ok"), leading_blank_lines=3))
    assert generate(backend(fault)).text == "ok"
    assert len(fault.posts()) == 1


def test_env_overrides_config_and_defaults(
    fault: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = BackendConfig(factory="sluicegate.inference.deepseek:DeepSeekBackend", zone="cloud")
    plain = DeepSeekBackend("ds", cfg)
    assert (plain.base_url, plain.model) == (DEFAULT_BASE_URL, DEFAULT_MODEL)
    monkeypatch.setenv("DEEPSEEK_BASE_URL", fault.base_url + "/")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-from-env")
    b = DeepSeekBackend("ds", cfg.model_copy(update={"api_key": "sk-config"}))
    assert b.base_url == fault.base_url
    generate(b)
    (post,) = fault.posts()
    assert post.headers["authorization"] == "Bearer sk-from-env"
    assert post.body is not None and post.body["model"] == DEFAULT_MODEL
    with pytest.raises(ValueError, match="zone: cloud"):
        DeepSeekBackend("ds", BackendConfig(zone="onprem"))


def test_thinking_when_configured_and_reasoning_never_returned(fault: FaultServer) -> None:
    fault.script(Reply(json=completion("<think>hidden</think> Answer.", reasoning="chain")))
    g = generate(backend(fault, thinking=True, seed=11))
    body = fault.posts()[0].body
    assert body is not None
    assert body["thinking"] == {"type": "enabled"}
    assert "temperature" not in body  # thinking mode ignores sampling parameters
    assert body["seed"] == 11
    assert g.text == "Answer."


# ---------------------------------------------------------------------- streaming


def test_stream_skips_keep_alives_and_reads_usage_from_the_last_chunk(fault: FaultServer) -> None:
    fault.script(Reply(sse=stream_events(reasoning=["secret", " thoughts"])))
    parts, g, error = stream(backend(fault))
    assert error is None
    assert parts == ["IMPRESSION:", " no acute", " findings."]
    assert g is not None and g.text == "IMPRESSION: no acute findings."
    assert (g.prompt_tokens, g.completion_tokens, g.prompt_cache_hit_tokens) == (21, 5, 16)
    assert g.finish_reason == "stop" and g.model_version == FINGERPRINT
    body = fault.posts()[0].body
    assert body is not None
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert fault.posts()[0].headers["accept"] == "text/event-stream"


def test_generate_can_read_the_answer_as_sse(fault: FaultServer) -> None:
    fault.script(Reply(sse=stream_events(["a", "b"], use=usage(prompt=9, completion=2, hit=0))))
    g = generate(backend(fault, stream=True))
    assert g.text == "ab"
    assert (g.prompt_tokens, g.prompt_cache_hit_tokens, g.prompt_cache_miss_tokens) == (9, 0, 9)
    assert fault.posts()[0].body["stream"] is True  # type: ignore[index]


def test_think_blocks_are_filtered_from_streamed_deltas(fault: FaultServer) -> None:
    fault.script(Reply(sse=stream_events(["<thi", "nk>plan", "</th", "ink>\n", "Done", "."])))
    parts, g, _ = stream(backend(fault))
    assert "".join(parts) == "Done."
    assert g is not None and g.text == "Done."


def test_stream_cut_mid_chunk_is_retried(fault: FaultServer) -> None:
    full = stream_events()
    cut_at = full[4][:40]  # the middle of a data: line
    fault.script(Reply(sse=[*full[:4], cut_at], cut=True))
    g = generate(backend(fault, stream=True))
    assert g.text == "IMPRESSION: no acute findings."
    assert len(fault.posts()) == 2


def test_stream_without_done_is_truncated_and_retried(fault: FaultServer) -> None:
    fault.script(Reply(sse=stream_events(done=False)), Reply(sse=stream_events(["fine"])))
    assert generate(backend(fault, stream=True)).text == "fine"
    assert len(fault.posts()) == 2


def test_stream_broken_after_text_was_sent_is_not_retried(fault: FaultServer) -> None:
    full = stream_events(keep_alive=False)
    fault.script(Reply(sse=full[:3], cut=True))
    parts, g, error = stream(backend(fault))
    assert parts == ["IMPRESSION:", " no acute"]
    assert isinstance(error, BackendUnavailable) and "after part of the answer" in str(error)
    assert g is None and len(fault.posts()) == 1


def test_endless_keep_alives_end_at_the_deadline(fault: FaultServer) -> None:
    fault.script(Reply(sse=[KEEP_ALIVE] * 60, interval_s=0.1))
    started = time.monotonic()
    parts, _, error = stream(backend(fault, timeout_s=1.0))
    assert parts == [] and isinstance(error, BackendUnavailable)
    assert "within 1s" in str(error)
    assert time.monotonic() - started < 5.0  # the keep-alives alone would last 6s
    assert len(fault.posts()) == 1


def test_error_event_inside_a_200_stream_is_retried(fault: FaultServer) -> None:
    error = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    fault.script(Reply(sse=[KEEP_ALIVE, error]))
    g = generate(backend(fault, stream=True))
    assert g.text == "IMPRESSION: no acute findings."
    assert len(fault.posts()) == 2


# ------------------------------------------------------------------------ retries


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_with_backoff(fault: FaultServer, status: int) -> None:
    fault.script(Reply.error(status), Reply.error(status))
    g = generate(backend(fault, max_retries=3))
    assert g.text == "IMPRESSION: no acute findings."
    posts = fault.posts()
    assert len(posts) == 3
    assert all(p.body == posts[0].body for p in posts)
    gaps = [b.at - a.at for a, b in itertools.pairwise(posts)]
    assert all(gap >= 0.04 for gap in gaps)  # backoff >= retry_backoff_s


def test_a_burst_longer_than_the_retries_is_unavailable(fault: FaultServer) -> None:
    fault.script(*[Reply.error(503, "Server overloaded")] * 4)
    with capture_logs() as logs, pytest.raises(BackendUnavailable, match="HTTP 503"):
        generate(backend(fault, max_retries=2))
    assert len(fault.posts()) == 3
    retries = [e for e in logs if e["event"] == "inference.retry"]
    assert [e["attempt"] for e in retries] == [1, 2]


def test_retry_after_is_honoured(fault: FaultServer) -> None:
    fault.script(Reply.error(429, "Rate limit reached", headers={"Retry-After": "1"}))
    generate(backend(fault))
    first, second = fault.posts()
    assert 0.95 <= second.at - first.at < 3.0


def test_retry_after_past_the_deadline_gives_up_at_once(fault: FaultServer) -> None:
    fault.script(Reply.error(503, headers={"Retry-After": "120"}))
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="HTTP 503"):
        generate(backend(fault, timeout_s=5.0))
    assert time.monotonic() - started < 3.0
    assert len(fault.posts()) == 1


def test_slow_first_byte_times_out_and_is_retried(fault: FaultServer) -> None:
    fault.script(Reply(json=completion("late"), delay_s=3.0))
    started = time.monotonic()
    g = generate(backend(fault, read_timeout_s=0.5))
    assert g.text == "IMPRESSION: no acute findings."  # the second answer, not the late one
    assert len(fault.posts()) == 2
    assert fault.posts()[1].at - started < 3.0  # retried before the slow reply would come


def test_deadline_bounds_the_whole_call(fault: FaultServer) -> None:
    fault.script(*[Reply(json=completion(), delay_s=3.0)] * 3)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="within 1s"):
        generate(backend(fault, timeout_s=1.0))
    assert time.monotonic() - started < 2.9  # the first reply alone would take 3s


@pytest.mark.parametrize(
    ("status", "match"),
    [
        (400, "refused the request \\(HTTP 400\\)"),
        (401, "authentication failed"),
        (402, "balance exhausted"),
        (422, "refused the request \\(HTTP 422\\)"),
    ],
)
def test_permanent_errors_are_never_retried(fault: FaultServer, status: int, match: str) -> None:
    fault.script(Reply.error(status, f"bad: {FINDINGS}"))  # a server echoing the prompt
    with capture_logs() as logs, pytest.raises(GenerationFailed, match=match) as caught:
        generate(backend(fault, max_retries=5))
    assert len(fault.posts()) == 1
    assert FINDINGS not in str(caught.value) and "Heart size" not in str(caught.value)
    alerts = [e for e in logs if e["event"] == "inference.balance_exhausted"]
    assert len(alerts) == (1 if status == 402 else 0)
    assert all(FINDINGS not in str(e) for e in logs)


def test_insufficient_system_resource_finish_is_retried(fault: FaultServer) -> None:
    fault.script(Reply(json=completion("half", finish_reason="insufficient_system_resource")))
    assert generate(backend(fault)).text == "IMPRESSION: no acute findings."
    assert len(fault.posts()) == 2


# ---------------------------------------------------------------------- JSON mode


def test_json_mode_body_and_one_retry_on_blank_content(fault: FaultServer) -> None:
    fault.script(Reply(json=completion("")), Reply(json=completion('{"impression": "clear"}')))
    g = generate(backend(fault, json_mode=True))
    assert g.text == '{"impression": "clear"}'
    first, second = fault.posts()
    assert first.body is not None and first.body["response_format"] == {"type": "json_object"}
    assert "json" in first.body["messages"][0]["content"].lower()  # DeepSeek requires the word
    assert first.body == second.body


def test_json_mode_blank_twice_is_a_clear_failure(fault: FaultServer) -> None:
    fault.script(Reply(json=completion("  ")), Reply(json=completion("")))
    with pytest.raises(GenerationFailed, match="blank content in JSON mode"):
        generate(backend(fault, json_mode=True, max_retries=5))
    assert len(fault.posts()) == 2


# ------------------------------------------------------------------------- health


def test_health_calls_models_with_the_key(fault: FaultServer) -> None:
    async def check(b: DeepSeekBackend) -> bool:
        try:
            return await b.health()
        finally:
            await b.aclose()

    assert asyncio.run(check(backend(fault))) is True
    assert fault.received[-1].path == "/models"
    assert asyncio.run(check(backend(fault, api_key=None))) is False
    fault.stop()  # an unreachable server is unhealthy, not an exception
    try:
        assert asyncio.run(check(backend(fault))) is False
    finally:
        fault.start()


# -------------------------------------------------------------- helpers (no server)


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_sse_parser_drops_comments_and_incomplete_events() -> None:
    async def lines() -> Any:
        for line in [": keep-alive", "", "", "event: error", "data: a", "data: b", "", "data: x"]:
            yield line

    async def collect() -> list[SseEvent]:
        return [e async for e in iter_sse(lines())]

    assert asyncio.run(collect()) == [SseEvent("a\nb", "error")]


def test_think_filter_handles_split_tags() -> None:
    f = ThinkFilter()
    out = "".join(f.feed(p) for p in ["Hi <", "think", ">x</", "think>  there <", "b>"]) + f.flush()
    assert out == "Hi there <b>"
    assert chunk({"content": "x"}).startswith(b"data: ")


def test_stream_cut_before_any_text_is_retried(fault: FaultServer) -> None:
    fault.script(Reply(sse=[KEEP_ALIVE, b"\n", b'data: {"id": "x", "cho'], cut=True))
    parts, g, error = stream(backend(fault))
    assert error is None and "".join(parts) == "IMPRESSION: no acute findings."
    assert g is not None and g.completion_tokens == 5
    assert len(fault.posts()) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"clearance": None},
        {"inputs": {"text": FINDINGS + " Patient John Doe."}},  # edited after the guard
        {"sensitivity": Sensitivity.PHI},
        {"sensitivity": "unlabelled"},
    ],
    ids=["no-clearance", "edited-after-guard", "phi", "unknown-label"],
)
def test_uncleared_text_never_leaves(fault: FaultServer, change: dict[str, Any]) -> None:
    request = dataclasses.replace(REQUEST, **change)
    b = backend(fault)
    with capture_logs() as logs, pytest.raises(GenerationFailed, match="not cleared"):
        generate(b, request)
    with pytest.raises(GenerationFailed, match="not cleared"):
        stream_of(b, request)
    assert fault.posts() == []  # not one byte sent
    assert [e["event"] for e in logs] == ["inference.egress_refused"]
    assert all("John" not in str(e) for e in logs)


def stream_of(b: DeepSeekBackend, request: GenerationRequest) -> list[str]:
    async def go() -> list[str]:
        try:
            return [d async for d in b.stream(request)]
        finally:
            await b.aclose()

    return asyncio.run(go())


def test_safe_reason_withholds_quoted_request_text() -> None:
    long_line = "Patient Johanna Example, born 1961-04-17, seen for chest pain at the ED today"
    quoted = f"invalid input near '{long_line[10:50]}'"
    assert safe_reason(quoted, [long_line]) == WITHHELD
    assert safe_reason("rate limit reached\nretry later", [long_line]) == "rate limit reached"
    assert safe_reason("x" * 500, []).endswith("...")
