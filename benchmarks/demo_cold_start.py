"""Cold start of ``sluicegate demo``: wall time against the 120 s target.

Runs ``python -m sluicegate.cli demo`` N times, each in a fresh temp directory
(cwd) with a fresh ``SLUICEGATE_HOME`` inside it, so every run migrates a new
database, generates a key, copies PyTriton's workspace and loads the model
from scratch. The baseline is the target itself: ratio = median wall / 120 s.

Besides the wall time (start to exit, shutdown included) it records, cheaply
and from outside: readiness (first 200 from the stack's ``/readyz``, polled
every 0.25 s on the port the demo writes into ``demo-config.yaml``) and the
moment the demo prints its success line (the draft report is done).

One run takes about 25 s on an idle 2-core box (over a minute when other work
competes for the CPUs), so the default 3 runs take 1-4 minutes: the one
benchmark here that can exceed the ~60 s budget (use ``--runs 1`` for a quick look).

    .venv/bin/python benchmarks/demo_cold_start.py [--runs 3] [--timeout 180]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from _common import load_now, machine, median, table

TARGET_S = 120.0
DONE_MARKER = b"Preliminary DiagnosticReport drafted"
POLL_S = 0.25


@dataclass
class Run:
    """One demo run's timings, in seconds since launch (None: not observed)."""

    wall_s: float
    ready_s: float | None
    report_s: float | None
    exit_code: int | None
    output_tail: str


def _api_port(home: Path) -> int | None:
    try:
        config = yaml.safe_load((home / "demo-config.yaml").read_text())
        return int(config["api"]["port"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None  # not written yet (or half-written)


def one_run(timeout_s: float) -> Run:
    """Launch the demo in a fresh temp dir and watch it until it exits."""
    with tempfile.TemporaryDirectory(prefix="sg-bench-demo-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "SLUICEGATE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        env.pop("SLUICEGATE_CONFIG", None)
        lines: list[bytes] = []
        report_at: list[float] = []
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "sluicegate.cli", "demo"],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def read_output() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if DONE_MARKER in line and not report_at:
                    report_at.append(time.monotonic())
                lines.append(line)

        reader = threading.Thread(target=read_output, daemon=True)
        reader.start()
        ready_at: float | None = None
        with httpx.Client(timeout=1.0) as client:
            while proc.poll() is None and time.monotonic() - started < timeout_s:
                port = _api_port(home) if ready_at is None else None
                if port is not None:
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                            ready_at = time.monotonic()
                time.sleep(POLL_S)
        if proc.poll() is None:  # over time: stop the demo and everything it started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        wall = time.monotonic() - started
        reader.join(timeout=5)
        code = None if wall >= timeout_s else proc.returncode
        tail = b"".join(lines[-15:]).decode(errors="replace")
    return Run(
        wall_s=wall,
        ready_s=None if ready_at is None else ready_at - started,
        report_s=report_at[0] - started if report_at else None,
        exit_code=code,
        output_tail=tail,
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _stats(values: list[float | None]) -> list[str]:
    seen = [v for v in values if v is not None]
    if not seen:
        return ["-", "-", "-"]
    return [f"{median(seen):.1f}", f"{min(seen):.1f}", f"{max(seen):.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180.0, help="per run, seconds")
    args = parser.parse_args()
    load_at_start = load_now()

    runs: list[Run] = []
    for i in range(args.runs):
        run = one_run(args.timeout)
        runs.append(run)
        status = "ok" if run.exit_code == 0 else f"FAILED (exit {run.exit_code})"
        print(
            f"run {i + 1}/{args.runs}: wall {run.wall_s:.1f}s, ready {_fmt(run.ready_s)}s, "
            f"report {_fmt(run.report_s)}s, {status}",
            flush=True,
        )
        if run.exit_code != 0:
            print(run.output_tail)

    ok = [r for r in runs if r.exit_code == 0]
    print(
        f"\ndemo cold start: {args.runs} runs, {len(ok)} succeeded, fresh SLUICEGATE_HOME "
        f"and cwd each; {machine(load_at_start)}"
    )
    rows = [
        ["wall (launch -> exit)", *_stats([r.wall_s for r in ok])],
        ["ready (/readyz 200)", *_stats([r.ready_s for r in ok])],
        ["report printed", *_stats([r.report_s for r in ok])],
        [
            "ready -> report",
            *_stats(
                [
                    r.report_s - r.ready_s
                    for r in ok
                    if r.report_s is not None and r.ready_s is not None
                ]
            ),
        ],
        [
            "report -> exit (shutdown)",
            *_stats([r.wall_s - r.report_s for r in ok if r.report_s is not None]),
        ],
    ]
    print(table(["phase (s since launch)", "median", "min", "max"], rows))
    if ok:
        wall = median([r.wall_s for r in ok])
        print(
            f"ratio median wall / {TARGET_S:.0f} s target = {wall / TARGET_S:.3f} "
            f"({'within' if wall <= TARGET_S else 'OVER'} target, "
            f"{TARGET_S - wall:+.1f} s headroom)"
        )
    if len(ok) != len(runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
