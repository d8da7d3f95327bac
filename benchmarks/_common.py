"""Small helpers shared by the benchmark scripts: order statistics and a text table."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else math.nan


def p90(values: Sequence[float]) -> float:
    """The 90th percentile by nearest rank (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain left/right aligned text table (first column left, the rest right)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def machine(load_at_start: float) -> str:
    """Where the figures were taken, with the 1-minute load average at start and end."""
    return (
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load_at_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end"
    )


def load_now() -> float:
    """The 1-minute load average (other work on a shared box shows up here)."""
    return os.getloadavg()[0]


@contextlib.contextmanager
def serve_api(home: Path, extra: dict[str, Any] | None = None) -> Iterator[tuple[str, int]]:
    """A real ``sluicegate serve`` (API only, SQLite in ``home``) in its own process.

    Its own process, as in production: a benchmark's client threads must not
    compete with the server for one interpreter's GIL. Auth is off (measured:
    ingest, not key lookups). Yields the base URL and the server's pid.
    """
    port = free_port()
    config: dict[str, Any] = {
        "home": str(home),
        "database": {"auto_migrate": True},
        "api": {"port": port},
        "worker": {"embedded": False},
        "relay": {"embedded": False},
        "inference": {"local_triton": {"enabled": False}},
        "logging": {"level": "WARNING"},
        "security": {"auth": "disabled"},
        **(extra or {}),
    }
    path = home / "bench-config.yaml"
    path.write_text(yaml.safe_dump(config))
    log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluicegate.cli", "serve", "--config", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sluicegate serve did not start; see {home / 'serve.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


PG_ADMIN_URL = os.environ.get(
    "SLUICEGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A throw-away PostgreSQL database on the local server, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"sg_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
