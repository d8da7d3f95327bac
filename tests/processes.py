"""Real processes for integration tests: config files, workers, waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import Engine
from sqlmodel import Session, select

from sluicegate.core.config import Settings
from sluicegate.core.tables import AuditEvent, Job, Result

T = TypeVar("T")


def write_config(settings: Settings, path: Path) -> Path:
    path.write_text(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
    return path


def start_cli(
    args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``sluicegate ARGS`` in its own session, so a test can kill the whole group."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sluicegate.cli", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def stop_group(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace_s: float = 20
) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextmanager
def worker(config: Path, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_cli(["worker", "--config", str(config), "--concurrency", "1"], log_path)
    try:
        yield proc
    finally:
        stop_group(proc)


def wait_for(
    check: Callable[[], T | None], timeout_s: float, what: str, log_path: Path | None = None
) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    tail = ""
    if log_path is not None and log_path.exists():
        tail = "\n--- log tail ---\n" + "\n".join(log_path.read_text().splitlines()[-40:])
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}{tail}")


def job_row(engine: Engine, job_id: str) -> Job:
    with Session(engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def job_in(engine: Engine, job_id: str, *statuses: str) -> Job | None:
    job = job_row(engine, job_id)
    return job if job.status in statuses else None


def results_of(engine: Engine, job_id: str) -> list[Result]:
    with Session(engine) as s:
        return list(s.exec(select(Result).where(Result.job_id == job_id)).all())


def audit_types(engine: Engine, job_id: str) -> list[str]:
    with Session(engine) as s:
        rows = s.exec(
            select(AuditEvent).where(AuditEvent.job_id == job_id).order_by(AuditEvent.seq)
        ).all()
        return [e.type for e in rows]


def triton_inference(triton: Any, **backend: Any) -> dict[str, Any]:
    """Config section pointing the pipeline at the session's real local Triton."""
    fields = {
        "url": triton.http_url,
        "model": triton.model,
        "max_tokens": 48,
        "timeout_s": 30,
        **backend,
    }
    return {"backends": {"local-triton": fields}, "local_triton": {"enabled": False}}
