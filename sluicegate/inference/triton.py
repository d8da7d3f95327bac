"""Client for a Triton Inference Server speaking the vLLM-backend tensor contract.

One class serves the embedded CPU server (:mod:`sluicegate.inference.local_triton`)
and GPU deployments (``deploy/triton/``): inputs ``text_input`` +
``sampling_parameters`` (+ ``exclude_input_in_output``), output ``text_output``.
The model's metadata and config are read once, so that

* optional tensors are sent only when the model declares them (older vLLM
  backends, TensorRT-LLM-style ``max_tokens`` models), and
* decoupled models (Triton's vLLM backend is one) are called the way Triton
  allows: gRPC streaming, or the HTTP ``generate`` endpoint, since the plain
  ``infer`` APIs refuse them.

``stream()`` hands out text as it is generated: the HTTP ``generate_stream``
extension (SSE without ``[DONE]``; an error arrives as an event under a 200) or
gRPC streaming for decoupled models; a non-decoupled model answers in one piece.
``<think>`` blocks of reasoning models are removed either way.

Failures are sorted for the pipeline: :class:`BackendUnavailable` is retried
later (same zone), :class:`GenerationFailed` is final. A model that is not
ready (loading, unloading) is unavailable; an unknown model is a config error.
Error messages name the backend and URL, never the prompt: it is PHI for
sensitive work. Reading replies and sorting errors live in :mod:`triton_wire`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from sluicegate.core.config import BackendConfig
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Generation,
    GenerationFailed,
    GenerationRequest,
    Zone,
)
from sluicegate.inference.prompts import build_messages, format_chat, stop_sequences, strip_think
from sluicegate.inference.sse import iter_sse
from sluicegate.inference.streams import GenerationStream, ThinkFilter
from sluicegate.inference.triton_wire import (
    HEALTH_TIMEOUT_S,
    RETURN_FLAGS,
    STREAM_FIELDS,
    ModelInfo,
    Reply,
    Totals,
    as_str,
    classify,
    error_of,
    first_value,
    json_value,
    opt_int,
    opt_str,
    response_version,
    split_url,
    without_userinfo,
)


class TritonBackend:
    """One Triton model as a generation backend (``tritonclient`` asyncio, HTTP or gRPC)."""

    def __init__(self, backend_id: str, cfg: BackendConfig) -> None:
        self.id = backend_id
        self.zone = Zone(cfg.zone)
        self.model = cfg.model
        self._cfg = cfg
        self._target, self._tls = split_url(cfg.url, cfg.protocol)
        self._client: Any = None
        self._http: httpx.AsyncClient | None = None  # only for decoupled models over HTTP
        self._info: ModelInfo | None = None

    def __repr__(self) -> str:
        url = without_userinfo(self._cfg.url)
        return f"TritonBackend(id={self.id!r}, zone={self.zone.value}, url={url!r})"

    @property
    def _where(self) -> str:
        url = without_userinfo(self._cfg.url)
        return f"backend {self.id!r} ({self._cfg.protocol} {url}, model {self.model!r})"

    # ------------------------------------------------------------------ public

    async def generate(self, request: GenerationRequest) -> Generation:
        """Build the task's prompt, run it on Triton, return the cleaned answer."""
        prompt = format_chat(build_messages(request.task, request.inputs), self._cfg.chat_template)
        max_tokens = request.max_tokens or self._cfg.max_tokens
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._cfg.timeout_s):
                info = await self._model_info()
                values = self._tensor_values(prompt, max_tokens, info.inputs)
                if not info.decoupled:
                    reply = await self._infer(values)
                elif self._cfg.protocol == "grpc":
                    reply = await self._stream_infer(values)
                else:
                    reply = await self._generate_endpoint(values)
        except TimeoutError:
            raise BackendUnavailable(
                f"{self._where} did not answer within {self._cfg.timeout_s:g}s"
            ) from None
        except Exception as exc:
            raise classify(exc, self._where, request.inputs) from None
        text = reply.text
        if "exclude_input_in_output" not in info.inputs and text.startswith(prompt):
            text = text[len(prompt) :]
        return Generation(
            text=strip_think(text),
            backend_id=self.id,
            model=self.model,
            zone=self.zone,
            latency_s=time.monotonic() - started,
            finish_reason=reply.finish_reason,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            model_version=reply.model_version or self._cfg.model_version,
        )

    def stream(self, request: GenerationRequest) -> GenerationStream:
        """Text as it is generated; ``.generation`` holds the whole answer afterwards.

        Nothing is retried here: a failure raises :class:`BackendUnavailable` or
        :class:`GenerationFailed` like :meth:`generate` (the router decides).
        """
        return GenerationStream(lambda out: self._stream(request, out))

    async def health(self) -> bool:
        """True when the server is live and the model is ready; never raises."""
        try:
            async with asyncio.timeout(min(self._cfg.timeout_s, HEALTH_TIMEOUT_S)):
                client = self._client_or_new()
                live = await client.is_server_live()
                ready = await client.is_model_ready(self.model, self._cfg.model_version)
                return bool(live and ready)
        except Exception:
            return False

    async def aclose(self) -> None:
        """Close connection pools / channels; a later call reopens them."""
        client, self._client = self._client, None
        http, self._http = self._http, None
        if client is not None:
            await client.close()
        if http is not None:
            await http.aclose()

    # ------------------------------------------------------------ the calls

    async def _infer(self, values: dict[str, np.ndarray]) -> Reply:
        extra = {"client_timeout": self._cfg.timeout_s} if self._cfg.protocol == "grpc" else {}
        result = await self._client_or_new().infer(
            self.model,
            self._infer_inputs(values),
            model_version=self._cfg.model_version,
            **extra,
        )
        text = first_value(result, "text_output")
        if text is None:
            raise GenerationFailed(f"{self._where} answered without a text_output tensor")
        return Reply(
            text=as_str(text),
            finish_reason=opt_str(first_value(result, "finish_reason")),
            prompt_tokens=opt_int(first_value(result, "num_input_tokens")),
            completion_tokens=opt_int(first_value(result, "num_output_tokens")),
            model_version=response_version(result),
        )

    async def _stream_infer(self, values: dict[str, np.ndarray]) -> Reply:
        """Decoupled model over gRPC: one request on a stream, gather every response."""
        totals = Totals([])
        async for result in self._grpc_responses(values):
            totals.add(
                as_str(first_value(result, "text_output") or b""),
                first_value(result, "finish_reason"),
                first_value(result, "num_input_tokens"),
                first_value(result, "num_output_tokens"),
                response_version(result),
            )
        if not totals.parts:
            raise GenerationFailed(f"{self._where} answered without a text_output tensor")
        return totals.reply()

    async def _grpc_responses(self, values: dict[str, np.ndarray]) -> AsyncIterator[Any]:
        """Each response of one request on a gRPC stream (decoupled models)."""
        import grpc
        from tritonclient.utils import InferenceServerException

        async def one_request() -> AsyncIterator[dict[str, Any]]:
            yield {
                "model_name": self.model,
                "model_version": self._cfg.model_version,
                "inputs": self._infer_inputs(values),
            }

        responses = self._client_or_new().stream_infer(
            inputs_iterator=one_request(), stream_timeout=self._cfg.timeout_s
        )
        try:
            async for result, error in responses:
                if error is not None:
                    raise error
                yield result
        except grpc.RpcError as exc:  # mid-stream failures arrive unwrapped
            raise InferenceServerException(msg=exc.details(), status=str(exc.code())) from None

    async def _sse_responses(self, values: dict[str, np.ndarray]) -> AsyncIterator[dict[str, Any]]:
        """Each event of the HTTP ``generate_stream`` extension (no ``[DONE]`` ends it)."""
        from tritonclient.utils import InferenceServerException

        body = {name: json_value(array) for name, array in values.items()}
        async with self._http_client().stream(
            "POST", f"{self._model_path()}/generate_stream", json=body
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise InferenceServerException(
                    msg=error_of(response), status=str(response.status_code)
                )
            async for event in iter_sse(response.aiter_lines()):
                try:
                    data = json.loads(event.data)
                except ValueError:
                    raise InferenceServerException(
                        msg="malformed stream event", status="502"
                    ) from None
                if not isinstance(data, dict):
                    raise InferenceServerException(msg="malformed stream event", status="502")
                if "error" in data:  # a failure reported under HTTP 200
                    raise InferenceServerException(msg=str(data["error"]), status="")
                yield data

    async def _stream(
        self, request: GenerationRequest, out: GenerationStream
    ) -> AsyncGenerator[str, None]:
        prompt = format_chat(build_messages(request.task, request.inputs), self._cfg.chat_template)
        max_tokens = request.max_tokens or self._cfg.max_tokens
        started = time.monotonic()
        deadline = started + self._cfg.timeout_s
        think = ThinkFilter()
        totals = Totals([])
        try:
            info = await asyncio.wait_for(self._model_info(), self._cfg.timeout_s)
            if not info.decoupled:  # one response only: answer in one piece
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                    reply = await self._infer(self._tensor_values(prompt, max_tokens, info.inputs))
                text = reply.text
                if "exclude_input_in_output" not in info.inputs and text.startswith(prompt):
                    text = text[len(prompt) :]
                totals.add(text, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens)
                totals.model_version = reply.model_version
                if visible := strip_think(text):
                    yield visible
            else:
                values = self._tensor_values(prompt, max_tokens, info.inputs, stream=True)
                events: AsyncIterator[Any] = (
                    self._grpc_responses(values)
                    if self._cfg.protocol == "grpc"
                    else self._sse_responses(values)
                )
                async for event in events:
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    if isinstance(event, dict):
                        fields = [event.get(k) for k in STREAM_FIELDS]
                        version = event.get("model_version")
                    else:
                        fields = [first_value(event, k) for k in STREAM_FIELDS]
                        version = response_version(event)
                    delta = as_str(fields[0] or b"")
                    totals.add(delta, fields[1], fields[2], fields[3], version)
                    if visible := think.feed(delta):
                        yield visible
                if tail := think.flush():
                    yield tail
        except TimeoutError:
            raise BackendUnavailable(
                f"{self._where} did not finish within {self._cfg.timeout_s:g}s"
            ) from None
        except Exception as exc:
            raise classify(exc, self._where, request.inputs) from None
        reply = totals.reply()
        out.generation = Generation(
            text=strip_think(reply.text),
            backend_id=self.id,
            model=self.model,
            zone=self.zone,
            latency_s=time.monotonic() - started,
            finish_reason=reply.finish_reason,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            model_version=reply.model_version or self._cfg.model_version,
        )

    async def _generate_endpoint(self, values: dict[str, np.ndarray]) -> Reply:
        """Decoupled model over HTTP: the ``generate`` extension (``infer`` answers 501)."""
        from tritonclient.utils import InferenceServerException

        body = {name: json_value(array) for name, array in values.items()}
        response = await self._http_client().post(f"{self._model_path()}/generate", json=body)
        try:
            data = response.json()
        except ValueError:
            data = {"error": "response is not JSON"}
        if response.status_code != 200:
            message = data.get("error", "") if isinstance(data, dict) else ""
            raise InferenceServerException(msg=str(message), status=str(response.status_code))
        if not isinstance(data, dict) or "text_output" not in data:
            raise GenerationFailed(f"{self._where} answered without text_output")
        return Reply(
            text=str(data["text_output"]),
            finish_reason=opt_str(data.get("finish_reason")),
            prompt_tokens=opt_int(data.get("num_input_tokens")),
            completion_tokens=opt_int(data.get("num_output_tokens")),
            model_version=opt_str(data.get("model_version")) or "",
        )

    # --------------------------------------------------------------- internals

    def _http_client(self) -> httpx.AsyncClient:
        """Plain HTTP for Triton's ``generate`` extension (tritonclient has no API for it)."""
        if self._http is None:
            scheme = "https" if self._tls else "http"
            self._http = httpx.AsyncClient(
                base_url=f"{scheme}://{self._target}", timeout=self._cfg.timeout_s
            )
        return self._http

    def _model_path(self) -> str:
        path = f"/v2/models/{quote(self.model)}"
        if self._cfg.model_version:
            path += f"/versions/{quote(self._cfg.model_version)}"
        return path

    def _client_or_new(self) -> Any:
        # Created lazily: aiohttp sessions and gRPC aio channels bind to the running loop.
        if self._client is None:
            if self._cfg.protocol == "grpc":
                import tritonclient.grpc.aio as grpcclient

                self._client = grpcclient.InferenceServerClient(url=self._target, ssl=self._tls)
            else:
                import tritonclient.http.aio as httpclient

                self._client = httpclient.InferenceServerClient(
                    url=self._target, ssl=self._tls, conn_timeout=self._cfg.timeout_s
                )
        return self._client

    async def _model_info(self) -> ModelInfo:
        """Input names and transaction policy, fetched once per backend."""
        if self._info is None:
            client = self._client_or_new()
            version = self._cfg.model_version
            if self._cfg.protocol == "grpc":
                meta = await client.get_model_metadata(self.model, version, as_json=True)
                config = (await client.get_model_config(self.model, version, as_json=True))[
                    "config"
                ]
            else:
                meta = await client.get_model_metadata(self.model, version)
                config = await client.get_model_config(self.model, version)
            policy = config.get("model_transaction_policy") or {}
            self._info = ModelInfo(
                inputs=frozenset(i["name"] for i in meta.get("inputs", [])),
                decoupled=bool(policy.get("decoupled", False)),
                batched=int(config.get("max_batch_size") or 0) > 0,
            )
        return self._info

    def _tensor_values(
        self, prompt: str, max_tokens: int, declared: frozenset[str], *, stream: bool = False
    ) -> dict[str, np.ndarray]:
        values = {"text_input": np.array([prompt.encode()], dtype=np.object_)}
        if "sampling_parameters" in declared:
            params: dict[str, Any] = {
                "max_tokens": max_tokens,
                "temperature": self._cfg.temperature,
            }
            if stop := stop_sequences(self._cfg.chat_template):
                params["stop"] = stop
            if self._cfg.seed is not None:
                params["seed"] = self._cfg.seed
            values["sampling_parameters"] = np.array([json.dumps(params).encode()], np.object_)
        elif "max_tokens" in declared:  # TensorRT-LLM: one tensor per sampling option
            values["max_tokens"] = np.array([max_tokens], dtype=np.int32)
            if "temperature" in declared:
                values["temperature"] = np.array([self._cfg.temperature], dtype=np.float32)
            if "random_seed" in declared and self._cfg.seed is not None:
                values["random_seed"] = np.array([self._cfg.seed], dtype=np.uint64)
            if "stop_words" in declared and (stop := stop_sequences(self._cfg.chat_template)):
                values["stop_words"] = np.array([w.encode() for w in stop], dtype=np.object_)
        for flag in ("exclude_input_in_output", *RETURN_FLAGS):
            if flag in declared:
                values[flag] = np.array([True], dtype=np.bool_)
        if "stream" in declared or stream:  # required by some vLLM model configs
            values["stream"] = np.array([stream], dtype=np.bool_)
        return values

    def _infer_inputs(self, values: dict[str, np.ndarray]) -> list[Any]:
        if self._cfg.protocol == "grpc":
            import tritonclient.grpc as mod
        else:
            import tritonclient.http as mod
        from tritonclient.utils import np_to_triton_dtype

        batched = self._info is not None and self._info.batched
        tensors = []
        for name, array in values.items():
            if batched:  # a batch of one request
                array = array.reshape(1, *array.shape)
            tensor = mod.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        return tensors
