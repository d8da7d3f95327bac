"""The DeepSeek API (or any OpenAI-compatible server) as a ``cloud`` backend.

``POST {base_url}/chat/completions`` over one pooled ``httpx.AsyncClient``
(HTTP/2 when ``h2`` is installed and the server offers it). The base URL and
key come from config, overridden by the conventional ``DEEPSEEK_BASE_URL`` and
``DEEPSEEK_API_KEY``. Thinking mode is off unless configured (DeepSeek's V4
models think by default, which costs time and tokens). Answers may be read as
SSE (``stream``): keep-alive comments and blank lines are skipped, ``[DONE]``
ends the stream, and the final chunk carries usage
(``stream_options.include_usage``), including DeepSeek's context-cache
counters.

The router decides what reaches this class, and only de-identified text that
passed the guard may. As the last step before text leaves the premises, the
backend checks that again: a request without a :class:`Clearance` covering its
exact inputs, or marked PHI/PII, is refused before any byte is sent. Error
messages and logs never carry request text.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from tenacity import RetryCallState

from sluicegate.core.config import BackendConfig
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Generation,
    GenerationFailed,
    GenerationRequest,
    Sensitivity,
    Zone,
)
from sluicegate.inference.errors import safe_reason
from sluicegate.inference.prompts import build_messages, strip_think
from sluicegate.inference.retrying import (
    Retryable,
    is_retryable_status,
    parse_retry_after,
    retry_policy,
)
from sluicegate.inference.sse import iter_sse
from sluicegate.inference.streams import GenerationStream, ThinkFilter

log = structlog.get_logger("sluicegate.inference.deepseek")

DEFAULT_BASE_URL = "https://api.deepseek.com"
# DeepSeek's current id (api-docs.deepseek.com); deepseek-v4-flash is a legacy name
# still accepted, deepseek-chat / deepseek-reasoner are deprecated aliases.
DEFAULT_MODEL = "deepseek-flash"
BASE_URL_ENV = "DEEPSEEK_BASE_URL"
API_KEY_ENV = "DEEPSEEK_API_KEY"
_CONNECT_TIMEOUT_S = 10.0
_HEALTH_TIMEOUT_S = 5.0
# DeepSeek ends a generation with this when its cluster ran short mid-answer.
_RESOURCE_FINISH = "insufficient_system_resource"
_JSON_HINT = "Answer with a single JSON object."
_CLOUD_SAFE = frozenset({Sensitivity.DEIDENTIFIED.value, Sensitivity.PUBLIC.value})


def _http2_available() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


class _BlankContent(Retryable):
    """JSON mode answered with empty content (DeepSeek documents this can happen)."""


@dataclass
class _Accumulator:
    """Collects a completion from stream chunks (or one whole answer)."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""
    fingerprint: str = ""

    def add_chunk(self, chunk: Mapping[str, Any]) -> str:
        """Take one ``chat.completion.chunk``; return its content delta."""
        self._meta(chunk)
        delta = ""
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = str((choice.get("delta") or {}).get("content") or "")
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        if delta:
            self.parts.append(delta)
        return delta

    def add_completion(self, data: Mapping[str, Any]) -> None:
        """Take one whole ``chat.completion``."""
        self._meta(data)
        choices = data.get("choices") or []
        if not choices or not isinstance(choices[0], Mapping):
            raise Retryable("answer had no choices")
        message = choices[0].get("message") or {}
        self.parts.append(str(message.get("content") or ""))
        self.finish_reason = choices[0].get("finish_reason")

    def _meta(self, data: Mapping[str, Any]) -> None:
        self.model = str(data.get("model") or self.model)
        self.fingerprint = str(data.get("system_fingerprint") or self.fingerprint)
        if isinstance(data.get("usage"), Mapping):
            self.usage = data["usage"]

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def cache_tokens(usage: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(hit, miss) prompt tokens: DeepSeek's own fields, else OpenAI's ``cached_tokens``."""
    hit = _opt_int(usage.get("prompt_cache_hit_tokens"))
    miss = _opt_int(usage.get("prompt_cache_miss_tokens"))
    if hit is None and miss is None:
        details = usage.get("prompt_tokens_details")
        cached = _opt_int(details.get("cached_tokens")) if isinstance(details, Mapping) else None
        prompt = _opt_int(usage.get("prompt_tokens"))
        if cached is not None and prompt is not None:
            hit, miss = cached, max(prompt - cached, 0)
    return hit, miss


class DeepSeekBackend:
    """DeepSeek chat completions as a generation backend (zone ``cloud``)."""

    def __init__(self, backend_id: str, cfg: BackendConfig) -> None:
        if cfg.zone != Zone.CLOUD.value:
            raise ValueError(
                f"backend {backend_id!r}: the DeepSeek API is a third party's service; "
                "configure it with zone: cloud"
            )
        self.id = backend_id
        self.zone = Zone.CLOUD
        explicit = cfg.model_fields_set
        self.model = cfg.model if "model" in explicit else DEFAULT_MODEL
        configured_url = cfg.url if "url" in explicit else DEFAULT_BASE_URL
        self.base_url = (os.environ.get(BASE_URL_ENV) or configured_url).rstrip("/")
        self._api_key = os.environ.get(API_KEY_ENV) or cfg.api_key or ""
        self._cfg = cfg
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"DeepSeekBackend(id={self.id!r}, zone=cloud, url={self.base_url!r})"

    @property
    def _where(self) -> str:
        return f"backend {self.id!r} ({self.base_url}, model {self.model!r})"

    # ------------------------------------------------------------------ public

    async def generate(self, request: GenerationRequest) -> Generation:
        """One answer, retried within ``timeout_s`` on transient failures."""
        body = self._body(request, stream=self._cfg.stream)
        texts = list(request.inputs.values())
        started = time.monotonic()
        deadline = started + self._cfg.timeout_s
        blank_once = False
        try:
            async with asyncio.timeout(self._cfg.timeout_s):
                async for attempt in self._retrying(deadline):
                    with attempt:
                        reply = await (
                            self._collect_stream(body, texts)
                            if self._cfg.stream
                            else self._complete(body, texts)
                        )
                        if self._cfg.json_mode and not reply.text.strip():
                            if blank_once:
                                raise GenerationFailed(
                                    f"{self._where} returned blank content in JSON mode twice"
                                )
                            blank_once = True
                            raise _BlankContent("blank content in JSON mode")
        except TimeoutError:
            raise BackendUnavailable(
                f"{self._where} did not answer within {self._cfg.timeout_s:g}s"
            ) from None
        except _BlankContent:
            raise GenerationFailed(f"{self._where} returned blank content in JSON mode") from None
        except Retryable as exc:
            raise BackendUnavailable(f"{self._where}: {exc}") from None
        return self._generation(reply, started)

    def stream(self, request: GenerationRequest) -> GenerationStream:
        """Text deltas as they arrive; ``.generation`` holds the whole answer afterwards.

        Retries happen only until the first delta has been handed out; a stream
        that breaks after that raises :class:`BackendUnavailable` (nothing can be
        taken back from the consumer).
        """
        return GenerationStream(lambda out: self._stream(request, out))

    async def health(self) -> bool:
        """True when ``GET /models`` answers 200 with our key; never raises."""
        try:
            response = await self._client_or_new().get(
                "/models", headers=self._headers(), timeout=_HEALTH_TIMEOUT_S
            )
        except Exception:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        """Close the connection pool; a later call opens a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------ the calls

    async def _stream(
        self, request: GenerationRequest, out: GenerationStream
    ) -> AsyncGenerator[str, None]:
        body = self._body(request, stream=True)
        texts = list(request.inputs.values())
        started = time.monotonic()
        deadline = started + self._cfg.timeout_s
        # Attempts are retried until the first visible text; nothing is yielded inside
        # the retry loop, so an abandoned stream never meets tenacity's bookkeeping.
        events: AsyncGenerator[Mapping[str, Any], None] | None = None
        acc, think, first = _Accumulator(), ThinkFilter(), ""
        try:
            try:
                async for attempt in self._retrying(deadline):
                    with attempt:
                        if events is not None:
                            await events.aclose()
                        events = self._events(body, texts, deadline)
                        acc, think, first = _Accumulator(), ThinkFilter(), ""
                        async for chunk in events:
                            if first := think.feed(acc.add_chunk(chunk)):
                                break
            except Retryable as exc:
                raise BackendUnavailable(f"{self._where}: {exc}") from None
            if first:
                yield first
                assert events is not None
                try:
                    async for chunk in events:
                        if visible := think.feed(acc.add_chunk(chunk)):
                            yield visible
                except Retryable as exc:
                    raise BackendUnavailable(
                        f"{self._where}: {exc} after part of the answer was sent"
                    ) from None
        finally:
            if events is not None:
                await events.aclose()
        if tail := think.flush():
            yield tail
        out.generation = self._generation(acc, started)

    async def _lines_until(self, lines: AsyncIterator[str], deadline: float) -> AsyncIterator[str]:
        """Lines, keep-alives included, until ``deadline`` (a stream can't use asyncio.timeout)."""
        async for line in lines:
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"{self._where} did not finish within {self._cfg.timeout_s:g}s"
                )
            yield line

    async def _complete(self, body: dict[str, Any], texts: list[str]) -> _Accumulator:
        """One non-streaming attempt."""
        try:
            response = await self._client_or_new().post(
                "/chat/completions", json=body, headers=self._headers()
            )
        except httpx.TimeoutException as exc:
            raise Retryable(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Retryable(f"connection failed ({type(exc).__name__})") from None
        self._check_status(response, texts)
        try:
            data = json.loads(response.content)  # keep-alive blank lines are whitespace
        except ValueError:
            raise Retryable("answer was not valid JSON (truncated?)") from None
        if not isinstance(data, Mapping):
            raise Retryable("answer was not a JSON object")
        acc = _Accumulator()
        acc.add_completion(data)
        self._check_finish(acc)
        return acc

    async def _collect_stream(self, body: dict[str, Any], texts: list[str]) -> _Accumulator:
        """One streaming attempt, gathered whole (so a truncated one can be retried)."""
        acc = _Accumulator()
        async for chunk in self._events(body, texts):
            acc.add_chunk(chunk)
        return acc

    async def _events(
        self, body: dict[str, Any], texts: list[str], deadline: float | None = None
    ) -> AsyncGenerator[Mapping[str, Any], None]:
        """The JSON chunks of one SSE answer; raises :class:`Retryable` if it was cut short."""
        acc_finish: str | None = None
        try:
            async with self._client_or_new().stream(
                "POST", "/chat/completions", json=body, headers=self._headers(stream=True)
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    self._check_status(response, texts)
                done = False
                lines = response.aiter_lines()
                if deadline is not None:
                    lines = self._lines_until(lines, deadline)
                async for event in iter_sse(lines):
                    if event.data.strip() == "[DONE]":
                        done = True
                        break
                    try:
                        chunk = json.loads(event.data)
                    except ValueError:
                        raise Retryable("stream carried a malformed chunk") from None
                    if not isinstance(chunk, Mapping):
                        raise Retryable("stream carried a malformed chunk")
                    if "error" in chunk:
                        raise self._stream_error(chunk["error"], texts)
                    for choice in chunk.get("choices") or []:
                        acc_finish = choice.get("finish_reason") or acc_finish
                    yield chunk
                if not done:
                    raise Retryable("stream ended without [DONE] (truncated)")
        except httpx.TimeoutException as exc:
            raise Retryable(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Retryable(f"stream broke off ({type(exc).__name__})") from None
        if acc_finish == _RESOURCE_FINISH:
            raise Retryable("server ran out of resources mid-answer")

    # --------------------------------------------------------------- internals

    def _client_or_new(self) -> httpx.AsyncClient:
        # Created lazily: the pool binds to the running event loop.
        if self._client is None:
            read = self._cfg.read_timeout_s or self._cfg.timeout_s
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                http2=_http2_available(),
                timeout=httpx.Timeout(read, connect=min(_CONNECT_TIMEOUT_S, read)),
            )
        return self._client

    def _headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _check_egress(self, request: GenerationRequest) -> None:
        """Refuse text that was not cleared for the cloud (defence in depth behind the router)."""
        cleared = request.clearance is not None and request.clearance.covers(request.inputs)
        if str(request.sensitivity) in _CLOUD_SAFE and cleared:
            return
        log.error("inference.egress_refused", backend=self.id, job_id=request.job_id)
        raise GenerationFailed(
            f"{self._where} refused a request that is not cleared for the cloud "
            "(it needs de-identified inputs that passed the guard, unchanged since)"
        )

    def _body(self, request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
        self._check_egress(request)
        messages = [
            {"role": m.role, "content": m.content}
            for m in build_messages(request.task, request.inputs)
        ]
        if self._cfg.json_mode and not any("json" in m["content"].lower() for m in messages):
            # DeepSeek's JSON mode requires the word "json" in the prompt.
            messages.insert(0, {"role": "system", "content": _JSON_HINT})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens or self._cfg.max_tokens,
            "stream": stream,
            "thinking": {"type": "enabled" if self._cfg.thinking else "disabled"},
        }
        if not self._cfg.thinking:  # thinking mode ignores sampling parameters
            body["temperature"] = self._cfg.temperature
        if self._cfg.seed is not None:
            body["seed"] = self._cfg.seed
        if self._cfg.json_mode:
            body["response_format"] = {"type": "json_object"}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _retrying(self, deadline: float) -> Any:
        return retry_policy(
            max_retries=self._cfg.max_retries,
            backoff_s=self._cfg.retry_backoff_s,
            backoff_max_s=self._cfg.retry_backoff_max_s,
            deadline=deadline,
            before_sleep=self._log_retry,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "inference.retry",
            backend=self.id,
            attempt=state.attempt_number,
            delay_s=round(state.upcoming_sleep, 3),
            reason=str(exc),
        )

    def _check_status(self, response: httpx.Response, texts: list[str]) -> None:
        """Raise for a non-200 answer: :class:`Retryable` or :class:`GenerationFailed`."""
        status = response.status_code
        if status == 200:
            return
        reason = safe_reason(_error_message(response), texts)
        if status == 402:
            log.error("inference.balance_exhausted", backend=self.id, status=status)
            raise GenerationFailed(
                f"{self._where}: account balance exhausted (HTTP 402); "
                "an operator must top up the account"
            )
        if status == 401:
            raise GenerationFailed(
                f"{self._where}: authentication failed (HTTP 401); check the API key"
            )
        if is_retryable_status(status):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise Retryable(f"HTTP {status}: {reason}", retry_after=retry_after)
        raise GenerationFailed(f"{self._where} refused the request (HTTP {status}): {reason}")

    def _stream_error(self, error: Any, texts: list[str]) -> Exception:
        """An error object sent inside a 200 stream."""
        message = str(error.get("message", "")) if isinstance(error, Mapping) else str(error)
        code = error.get("code") if isinstance(error, Mapping) else None
        reason = safe_reason(message, texts)
        if isinstance(code, int) and 400 <= code < 500 and not is_retryable_status(code):
            return GenerationFailed(f"{self._where} failed mid-stream ({code}): {reason}")
        return Retryable(f"error event mid-stream: {reason}")

    def _check_finish(self, acc: _Accumulator) -> None:
        if acc.finish_reason == _RESOURCE_FINISH:
            raise Retryable("server ran out of resources mid-answer")

    def _generation(self, acc: _Accumulator, started: float) -> Generation:
        hit, miss = cache_tokens(acc.usage)
        return Generation(
            text=strip_think(acc.text),
            backend_id=self.id,
            model=self.model,
            zone=self.zone,
            latency_s=time.monotonic() - started,
            finish_reason=acc.finish_reason,
            prompt_tokens=_opt_int(acc.usage.get("prompt_tokens")),
            completion_tokens=_opt_int(acc.usage.get("completion_tokens")),
            model_version=acc.fingerprint or acc.model,
            prompt_cache_hit_tokens=hit,
            prompt_cache_miss_tokens=miss,
        )


def _error_message(response: httpx.Response) -> str:
    """DeepSeek/OpenAI ``{"error": {"message": ...}}``, else a short body excerpt."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping):
            return str(error.get("message") or error.get("type") or "")
        if isinstance(error, str):
            return error
    return response.reason_phrase
