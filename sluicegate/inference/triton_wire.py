"""Triton's side of the wire: the vLLM-backend tensor contract's replies and error vocabulary.

What :class:`~sluicegate.inference.triton.TritonBackend` needs to read a
response (HTTP dicts, gRPC protobufs, ``generate`` JSON, stream events) and to
sort a failure into :class:`BackendUnavailable` (try again later, same zone) or
:class:`GenerationFailed` (final). Messages name the backend, never the prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from sluicegate.core.interfaces import BackendUnavailable, GenerationFailed
from sluicegate.inference.errors import safe_reason

# gRPC codes that mean "try again later"; every other code is a final answer.
_RETRYABLE_GRPC = {
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "ABORTED",
    "INTERNAL",
    "UNKNOWN",
    "CANCELLED",
}
_PERMANENT_HTTP_5XX = {501, 505}  # "not implemented": retrying cannot help
# PyTriton reports a model's own "bad request" exception as a 500/INTERNAL;
# its class name in the message tells it apart from a server fault.
_BAD_PARAMETER_MARKER = "PyTritonBadParameterError"
RETURN_FLAGS = ("return_finish_reason", "return_num_input_tokens", "return_num_output_tokens")
STREAM_FIELDS = ("text_output", "finish_reason", "num_input_tokens", "num_output_tokens")
HEALTH_TIMEOUT_S = 5.0
# Triton's words for a model that is loading or being unloaded: try again later. (An
# unknown model or version is a configuration error and stays permanent.)
_MODEL_NOT_READY = re.compile(r"not ready|no available versions|unavailable", re.IGNORECASE)


def split_url(url: str, protocol: str) -> tuple[str, bool]:
    """``http(s)://host:port``, ``grpc(s)://host:port`` or ``host:port`` -> (host:port, tls)."""
    if "://" not in url:
        return url.rstrip("/"), False
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError(f"backend url {url!r} has no host")
    default_port = {"http": 80, "https": 443}.get(parts.scheme) if protocol == "http" else None
    netloc = parts.netloc
    if parts.port is None and default_port is not None:
        netloc = f"{netloc}:{default_port}"
    return netloc, parts.scheme in ("https", "grpcs")


def without_userinfo(url: str) -> str:
    """The URL as safe to print: no ``user:password@``."""
    scheme, sep, rest = url.rpartition("://")
    host_part, slash, path = rest.partition("/")
    host_part = host_part.rpartition("@")[2]
    return f"{scheme}{sep}{host_part}{slash}{path}"


@dataclass(frozen=True)
class ModelInfo:
    inputs: frozenset[str]
    decoupled: bool
    batched: bool = False  # max_batch_size > 0: every tensor gets a leading batch dim


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model_version: str = ""


@dataclass
class Totals:
    """Streamed responses summed up: vLLM counts each response's own tokens."""

    parts: list[str]
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model_version: str = ""

    def add(self, text: str, finish: Any, n_in: Any, n_out: Any, version: Any = None) -> None:
        if text:
            self.parts.append(text)
        self.finish_reason = opt_str(finish) or self.finish_reason
        if (tokens_in := opt_int(n_in)) is not None:
            self.prompt_tokens = max(self.prompt_tokens or 0, tokens_in)
        if (tokens_out := opt_int(n_out)) is not None:
            self.completion_tokens = (self.completion_tokens or 0) + tokens_out
        self.model_version = opt_str(version) or self.model_version

    def reply(self) -> Reply:
        return Reply(
            "".join(self.parts),
            self.finish_reason,
            self.prompt_tokens,
            self.completion_tokens,
            self.model_version,
        )


def classify(exc: Exception, where: str, inputs: Mapping[str, str]) -> Exception:
    """Map a client/transport error to BackendUnavailable or GenerationFailed."""
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, (BackendUnavailable, GenerationFailed)):
        return exc
    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        message = str(exc.message() or "")
        detail = f"{where} failed ({status or 'error'}): {_safe_reason(message, inputs)}"
        if _BAD_PARAMETER_MARKER in message or "ValueError" in message:
            return GenerationFailed(detail)
        if _MODEL_NOT_READY.search(message):
            return BackendUnavailable(detail)
        if status.removeprefix("StatusCode.") in _RETRYABLE_GRPC:
            return BackendUnavailable(detail)
        if status.isdigit():
            code = int(status)
            if code == 429 or (code >= 500 and code not in _PERMANENT_HTTP_5XX):
                return BackendUnavailable(detail)
        if not status and ("connect" in message.lower() or "Exception" in message):
            return BackendUnavailable(detail)  # incl. a model's crash reported mid-stream
        return GenerationFailed(detail)
    if isinstance(exc, (OSError, httpx.TransportError)) or _is_aiohttp_error(exc):
        # Connection refused/reset, DNS failure, server hung up mid-answer.
        return BackendUnavailable(f"{where} is unreachable: {type(exc).__name__}")
    return GenerationFailed(f"{where} failed: {type(exc).__name__}")


def _is_aiohttp_error(exc: Exception) -> bool:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - tritonclient[http] depends on it
        return False
    return isinstance(exc, aiohttp.ClientError)


def _safe_reason(message: str, inputs: Mapping[str, str]) -> str:
    """A short server reason, withheld if it echoes any request text (PHI)."""
    marker = f"{_BAD_PARAMETER_MARKER}: "
    if marker in message:
        message = message.split(marker, 1)[1]
    return safe_reason(message, inputs.values())


def error_of(response: httpx.Response) -> str:
    """The ``error`` of a JSON body, or of the first event of an SSE one (generate_stream)."""
    text = response.text.strip()
    if text.startswith("data:"):
        text = text.removeprefix("data:").split("\n\n", 1)[0].strip()
    try:
        data = json.loads(text)
    except ValueError:
        return "response is not JSON"
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def response_version(result: Any) -> str:
    """``model_version`` of an infer response (HTTP: dict, gRPC: protobuf)."""
    try:
        response = result.get_response()
    except Exception:
        return ""
    version = (
        response.get("model_version")
        if isinstance(response, dict)
        else getattr(response, "model_version", "")
    )
    return str(version or "")


def json_value(array: np.ndarray) -> Any:
    """A one-element tensor as the JSON value the ``generate`` endpoint expects."""
    value = array.reshape(-1)[0]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.item() if isinstance(value, np.generic) else value


def first_value(result: Any, name: str) -> Any:
    try:
        array = result.as_numpy(name)
    except Exception:
        return None
    if array is None or array.size == 0:
        return None
    return array.reshape(-1)[0]


def as_str(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def opt_str(value: Any) -> str | None:
    return None if value is None or value in (b"", "") else as_str(value)


def opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
