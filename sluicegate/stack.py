"""`sluicegate serve`: the API in this process, helpers as child processes.

On the embedded default one command runs everything: the local Triton server
and a Celery worker as children (they die with us: PR_SET_PDEATHSIG), the
API with the outbox relay here. On scale-out each piece runs on its own and
``serve`` is just the API.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
import uvicorn

from sluicegate.core import db, queue
from sluicegate.core.config import Settings
from sluicegate.core.security import tls

log = structlog.get_logger("sluicegate.stack")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM when the parent dies, even by SIGKILL."""
    # Not Linux: no prctl; children are still stopped on a normal exit.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    """Start ``sluicegate ARGS`` with this interpreter, logging to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "sluicegate.cli", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )


def stop(process: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def children(settings: Settings) -> Iterator[list[subprocess.Popen[bytes]]]:
    logs = settings.home_path / "logs"
    started: list[subprocess.Popen[bytes]] = []
    try:
        if settings.inference.local_triton.enabled:
            started.append(spawn(["triton", "serve-local"], logs / "triton.log"))
        if settings.worker.embedded:
            started.append(spawn(["worker"], logs / "worker.log"))
        from sluicegate.adapters.hl7v2.listener import hl7_channels

        for channel in hl7_channels(settings):  # HL7 v2 channels with MLLP on
            started.append(
                spawn(["mllp", "serve", "--channel", channel], logs / f"mllp-{channel}.log")
            )
        yield started
    finally:
        for process in reversed(started):
            stop(process)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def serve_stack(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    from sluicegate.app import create_app

    if settings.auto_migrate:
        db.upgrade(settings.database_url)  # before the children race to do it
    queue.declare_queue(settings)  # likewise the embedded broker's queue
    app = create_app(settings)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; turning that into
    # SystemExit lets the `children` context stop the worker and Triton before we exit.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with children(settings) as started:
        log.info(
            "serve.started",
            pid=os.getpid(),
            children={str(p.pid): " ".join(map(str, p.args[3:])) for p in started},  # type: ignore[index]
        )
        config = tls.uvicorn_config(
            app,
            settings.security.tls,  # TLS 1.3+ when a certificate is configured
            host or settings.api.host,
            port or settings.api.port,
            log_config=None,
            access_log=False,
        )
        # Start-up objects (modules, routes, schemas) live as long as the process;
        # frozen, they are no longer walked by every full garbage collection on the
        # request path (finance bulk: about a fifth of the CPU spent storing a line).
        gc.collect()
        gc.freeze()
        server = uvicorn.Server(config)
        server.run()
        if not server.started:  # e.g. the port is taken: fail like uvicorn.run does
            raise SystemExit(3)
