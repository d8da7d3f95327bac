"""A fault server speaking the DeepSeek chat-completions wire format (a test peer).

Real peers (the xllamacpp server in ``test_openai_peer``) cannot produce faults
on demand; this one can: ``: keep-alive`` comments and blank keep-alive lines
in SSE and before a JSON body, 429/503 bursts with and without
``Retry-After``, 400/401/402/422 error bodies, a stream cut in the middle of a
chunk (the connection is dropped), a stream that ends without ``[DONE]``, a
slow first byte, blank JSON-mode content, an error event inside a 200 stream.

It is a raw ASGI app on uvicorn (free port, background thread) so every byte is
under the test's control. Tests queue :class:`Reply` objects with
:meth:`FaultServer.script`; with nothing queued it answers a normal completion.
Everything it receives is kept in :attr:`FaultServer.received`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.conftest import free_port

Json = dict[str, Any]
MODEL = "deepseek-flash"
FINGERPRINT = "fp_fault_0001"
KEEP_ALIVE = b": keep-alive\n\n"
MODELS_LIST = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "deepseek"}]}


def usage(prompt: int = 21, completion: int = 5, hit: int = 16) -> Json:
    """DeepSeek's usage object, context-cache counters included."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": hit},
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": prompt - hit,
    }


def completion(
    content: str = "IMPRESSION: no acute findings.",
    *,
    finish_reason: str = "stop",
    reasoning: str | None = None,
    use: Json | None = None,
) -> Json:
    """A non-streaming ``chat.completion`` as DeepSeek sends it."""
    message: Json = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return {
        "id": "c0ffee00-0000-4000-8000-000000000001",
        "object": "chat.completion",
        "created": 1764300000,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": use or usage(),
        "system_fingerprint": FINGERPRINT,
    }


def chunk(delta: Json, finish_reason: str | None = None, use: Json | None = None) -> bytes:
    """One ``data:`` line of a ``chat.completion.chunk`` plus its blank line."""
    body: Json = {
        "id": "c0ffee00-0000-4000-8000-000000000002",
        "object": "chat.completion.chunk",
        "created": 1764300000,
        "model": MODEL,
        "system_fingerprint": FINGERPRINT,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if use is not None:
        body["usage"] = use
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def stream_events(
    parts: Iterable[str] = ("IMPRESSION:", " no acute", " findings."),
    *,
    keep_alive: bool = True,
    done: bool = True,
    use: Json | None = None,
    reasoning: Iterable[str] = (),
) -> list[bytes]:
    """A full DeepSeek SSE answer; keep-alives first (as while a request is queued)."""
    events: list[bytes] = [KEEP_ALIVE, b"\n", KEEP_ALIVE] if keep_alive else []
    events.append(chunk({"role": "assistant", "content": ""}))
    events += [chunk({"content": None, "reasoning_content": r}) for r in reasoning]
    events += [chunk({"content": p}) for p in parts]
    if keep_alive:
        events.append(KEEP_ALIVE)
    events.append(chunk({"content": ""}, finish_reason="stop", use=use or usage()))
    if done:
        events.append(b"data: [DONE]\n\n")
    return events


def error_body(status: int, message: str) -> Json:
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "insufficient_balance",
        422: "invalid_request_error",
        429: "rate_limit_error",
        500: "server_error",
        503: "server_overloaded",
    }
    return {"error": {"message": message, "type": kinds.get(status, "error"), "code": None}}


@dataclass
class Reply:
    """One scripted answer.

    ``json``: a JSON body (``status``), optionally after ``leading_blank_lines``.
    ``sse``: raw SSE byte pieces, each flushed separately; with ``cut`` the
    connection is dropped after them (no terminating chunk). ``delay_s``: wait
    before the first byte (headers included).
    """

    status: int = 200
    json: Json | None = None
    sse: list[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    leading_blank_lines: int = 0
    cut: bool = False
    interval_s: float = 0.005  # between SSE pieces

    @classmethod
    def error(cls, status: int, message: str = "scripted failure", **kw: Any) -> Reply:
        return cls(status=status, json=error_body(status, message), **kw)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Json | None
    at: float  # time.monotonic() when the request arrived
    client: tuple[str, int] | None = None  # the connection it came on


class _Dropped(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-body."""


class FaultServer:
    """The ASGI app plus the uvicorn thread serving it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.models_status = 200

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.received.clear()
            self.models_status = 200

    def posts(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]

    def start(self) -> FaultServer:
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fault server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    # ------------------------------------------------------------------ ASGI

    async def _app(
        self, scope: Json, receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self.received.append(
                Received(
                    scope["method"],
                    scope["path"],
                    headers,
                    body,
                    time.monotonic(),
                    tuple(scope["client"]) if scope.get("client") else None,
                )
            )
            reply = self._script.popleft() if self._script else None
        path = scope["path"]
        if scope["method"] == "GET" and path.endswith("/models"):
            ok = self.models_status == 200 and headers.get("authorization", "").startswith(
                "Bearer "
            )
            status = 200 if ok else 401
            payload = (
                {
                    "object": "list",
                    "data": [{"id": MODEL, "object": "model", "owned_by": "deepseek"}],
                }
                if ok
                else error_body(401, "Authentication Fails, Your api key is invalid")
            )
            await _send_json(send, status, payload, {})
            return
        if not (scope["method"] == "POST" and path.endswith("/chat/completions")):
            await _send_json(send, 404, error_body(404, "not found"), {})
            return
        if reply is None:
            streaming = bool(body and body.get("stream"))
            reply = Reply(sse=stream_events()) if streaming else Reply(json=completion())
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.sse is not None:
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        *((k.encode(), v.encode()) for k, v in reply.headers.items()),
                    ],
                }
            )
            for piece in reply.sse:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                await asyncio.sleep(reply.interval_s)
            if reply.cut:
                raise _Dropped("connection dropped mid-stream on purpose")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await _send_json(
            send, reply.status, reply.json or {}, reply.headers, reply.leading_blank_lines
        )


async def _send_json(
    send: Callable[..., Any], status: int, payload: Json, headers: dict[str, str], blanks: int = 0
) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                *((k.encode(), v.encode()) for k, v in headers.items()),
            ],
        }
    )
    for _ in range(blanks):  # DeepSeek keeps a queued non-streaming request alive this way
        await send({"type": "http.response.body", "body": b"\n", "more_body": True})
        await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": data, "more_body": False})
