"""A real local Triton for tests: ``python -m sluicegate.inference.local_triton``.

Load it as a plugin (``pytest_plugins = ["tests.triton_fixture"]`` in the root
conftest) and ask for the session-scoped ``local_triton`` fixture. Even if the
fixture gets registered twice, one server is started per session (reference
counted) and stopped at the end. Outside pytest, :func:`running_local_triton`
is a context manager.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluicegate.core.config import BackendConfig
from sluicegate.inference.local_triton import (
    ModelFileNotFound,
    decoupled_model_name,
    find_model_file,
)

STARTUP_DEADLINE_S = 90.0
STOP_GRACE_S = 30.0
MODEL_NAME = "smollm2"


@dataclass(frozen=True)
class LocalTriton:
    """Where the running test server listens."""

    host: str
    http_port: int
    grpc_port: int
    metrics_port: int
    model: str
    log_path: Path
    startup_s: float
    pid: int = 0  # leader of the server's own process group (for kill tests)

    @property
    def decoupled_model(self) -> str:
        """The vLLM-like decoupled twin of :attr:`model`."""
        return decoupled_model_name(self.model)

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def backend_config(self, protocol: str = "http", **overrides: Any) -> BackendConfig:
        """A :class:`BackendConfig` pointing at this server."""
        url = self.http_url if protocol == "http" else f"grpc://{self.grpc_url}"
        fields: dict[str, Any] = {"url": url, "protocol": protocol, "model": self.model}
        fields.update(overrides)
        return BackendConfig(**fields)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the OS says are free now (ephemeral range, so never 8000-8002/8080)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running_local_triton(workspace: Path, model: str = MODEL_NAME) -> Iterator[LocalTriton]:
    """Start the server as a subprocess on free ports, wait until ready, stop it after."""
    host = "127.0.0.1"
    http_port, grpc_port, metrics_port = free_ports(3, host)
    workspace.mkdir(parents=True, exist_ok=True)
    log_path = workspace / "local_triton.log"
    cmd = [
        sys.executable,
        "-m",
        "sluicegate.inference.local_triton",
        "--host",
        host,
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        "--metrics-port",
        str(metrics_port),
        "--model-name",
        model,
        "--workspace",
        str(workspace),
    ]
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy()
        )
    try:
        ready_urls = [
            f"http://{host}:{http_port}/v2/models/{name}/ready"
            for name in (model, decoupled_model_name(model))
        ]
        deadline = started + STARTUP_DEADLINE_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"local Triton exited with {proc.returncode} during start-up:\n"
                    + _log_tail(log_path)
                )
            with contextlib.suppress(httpx.HTTPError):
                if all(httpx.get(url, timeout=1.0).status_code == 200 for url in ready_urls):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"local Triton not ready after {STARTUP_DEADLINE_S:.0f}s:\n"
                    + _log_tail(log_path)
                )
            time.sleep(0.2)
        yield LocalTriton(
            host=host,
            http_port=http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
            model=model,
            log_path=log_path,
            startup_s=time.monotonic() - started,
            pid=proc.pid,
        )
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (clean stop of tritonserver), then SIGKILL the whole session we created."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers; the group is ours (new session)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


_lock = threading.Lock()
_shared: dict[str, Any] = {"server": None, "stack": None, "users": 0}


@pytest.fixture(scope="session", name="local_triton")
def local_triton_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTriton]:
    """The session's real local Triton (fails when the model is not installed)."""
    try:
        find_model_file()
    except ModelFileNotFound as exc:
        # Never skip: the README's test command installs the model, so a missing
        # file is a broken install that must fail loudly.
        pytest.fail(str(exc))
    with _lock:
        if _shared["server"] is None:
            stack = contextlib.ExitStack()
            workspace = tmp_path_factory.mktemp("local-triton")
            _shared["server"] = stack.enter_context(running_local_triton(workspace))
            _shared["stack"] = stack
        _shared["users"] += 1
        server: LocalTriton = _shared["server"]
    try:
        yield server
    finally:
        with _lock:
            _shared["users"] -= 1
            if _shared["users"] == 0:
                _shared["stack"].close()
                _shared.update(server=None, stack=None)
