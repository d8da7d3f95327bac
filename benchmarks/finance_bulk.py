"""Finance NDJSON bulk: records/s accepted over HTTP vs a bare parse + validate loop.

Baseline, same process and run, same records: ``json.loads(line, parse_float=Decimal)``
then ``Report.model_validate`` per line. Measured: the same lines streamed (chunked
body, never built in memory) to ``POST /finance/reports:bulk`` of a real
``sluicegate serve`` process (API only: no worker, relay or Triton), SQLite in a
temp home. Every line is validated, checked (facts, accounting checks),
persisted (sealed item + job + outbox + audit event, one transaction per batch)
and only then counted as accepted. Target: accepted records/s >= 0.5 x baseline.

The server runs with its default bulk options (``bulk.batch_size`` 500, two
helper processes preparing lines while the server stores) unless ``--batch`` /
``--processes`` say otherwise. Helpers start on a server's first bulk request;
the warm-up request starts them and the run begins once they are idle (steady
state, as in a long-running server).

Memory: peak RSS (VmHWM) of the server and of its helper processes, read after
each run; each size runs in a fresh server, so the peaks compare directly
(target: flat from 10k to 100k). CPU: the server's and helpers' CPU seconds
per accepted record, beside the baseline's, then split per process (server,
each helper).

    .venv/bin/python benchmarks/finance_bulk.py [--sizes 10000,100000] [--batch N] [--processes N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
from _common import load_now, machine, serve_api, table

from sluicegate.adapters.finance.models import Report

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "finance" / "report.json"


def records(n: int, tag: str) -> Iterator[bytes]:
    doc = json.loads(SAMPLE.read_text())
    doc["entity"] = {"name": "ENTITY"}
    line = json.dumps(doc, separators=(",", ":"))
    for i in range(n):
        yield line.replace("ENTITY", f"Bench {tag} {i}").encode() + b"\n"


def baseline(n: int) -> float:
    start = time.perf_counter()
    for line in records(n, "base"):
        Report.model_validate(json.loads(line, parse_float=Decimal))
    return n / (time.perf_counter() - start)


def server(
    home: Path, batch: int | None, processes: int | None
) -> contextlib.AbstractContextManager[tuple[str, int]]:
    bulk = {"batch_size": batch, "processes": processes}
    options = {"bulk": {k: v for k, v in bulk.items() if v is not None}}
    finance = {"factory": "sluicegate.adapters.finance:FinanceAdapter", "options": options}
    return serve_api(home, {"adapters": {"finance": finance}})


def family(pid: int) -> list[int]:
    """The server and every process below it (helpers, their resource tracker)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def peak_rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def cpu_each(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_s([pid]) for pid in pids}


def settle(pid: int, timeout: float = 60) -> None:
    """Wait until the server's helpers (if any) have started and gone idle."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_s(family(pid))
        if len(family(pid)) > 1 and now - last < 0.05:
            return
        last = now


def bulk_run(
    n: int, batch: int | None, processes: int | None
) -> tuple[float, float, float, list[float], dict[str, int]]:
    """Rate, peak RSS, CPU s per record (all; per process: server first), summary."""
    with (
        tempfile.TemporaryDirectory(prefix="sg-finbench-") as tmp,
        server(Path(tmp), batch, processes) as (base, pid),
    ):
        with httpx.Client(base_url=base, timeout=None) as client:
            # warm-up: imports, compiled statements
            client.post(
                "/finance/reports:bulk",
                content=b"".join(records(20, "warm")),
                headers={"content-type": "application/x-ndjson"},
            )
            if processes != 0:
                settle(pid)
            cpu_start = cpu_each(family(pid))
            start = time.perf_counter()
            summary: dict[str, int] = {}
            with client.stream(
                "POST",
                "/finance/reports:bulk",
                content=records(n, "run"),
                headers={"content-type": "application/x-ndjson"},
            ) as response:
                for line in response.iter_lines():
                    if line.startswith('{"summary"'):
                        summary = json.loads(line)["summary"]
            elapsed = time.perf_counter() - start
        pids = family(pid)
        accepted = max(1, summary.get("accepted", 0))
        spent = {p: (cpu - cpu_start.get(p, 0.0)) / accepted for p, cpu in cpu_each(pids).items()}
        helpers = sorted((v for p, v in spent.items() if p != pid), reverse=True)
        each = [spent[pid]] + [v for v in helpers if v * 1e6 >= 1]  # not the resource tracker
        rate = summary.get("accepted", 0) / elapsed
        return rate, peak_rss_mb(pids), sum(spent.values()), each, summary


def baseline_cpu(n: int) -> float:
    start = time.process_time()
    baseline(n)
    return (time.process_time() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--batch", type=int, default=None, help="bulk.batch_size")
    parser.add_argument("--processes", type=int, default=None, help="bulk.processes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    load_start = load_now()
    rows, ratios, split = [], [], []
    for n in sizes:
        base_rate = baseline(min(n, 20_000))
        base_cpu = baseline_cpu(min(n, 5_000))
        rate, rss, cpu, each, summary = bulk_run(n, args.batch, args.processes)
        split.append(" / ".join(f"{v * 1e6:,.0f}" for v in each))
        if summary.get("accepted") != n:
            raise SystemExit(f"only {summary} of {n} lines accepted")
        ratios.append(rate / base_rate)
        rows.append(
            [
                f"{n:,}",
                f"{base_rate:,.0f}",
                f"{rate:,.0f}",
                f"{rate / base_rate:.2f}",
                f"{rss:,.0f}",
                f"{base_cpu * 1e6:,.0f} / {cpu * 1e6:,.0f}",
            ]
        )
    print(machine(load_start))
    print(
        table(
            [
                "lines",
                "baseline rec/s (loads+validate)",
                "bulk accepted rec/s (HTTP)",
                "ratio",
                "server+helpers peak RSS MB",
                "CPU us/rec baseline / server+helpers",
            ],
            rows,
        )
    )
    for n, ratio, parts in zip(sizes, ratios, split, strict=True):
        print(f"ratio accepted/baseline at {n:,} lines: {ratio:.2f} (target >= 0.5)")
        print(f"  CPU us/rec at {n:,} lines, server / each helper: {parts}")
    if len(rows) > 1:
        first, last = float(rows[0][4].replace(",", "")), float(rows[-1][4].replace(",", ""))
        print(
            f"peak RSS {sizes[0]:,} -> {sizes[-1]:,} lines: {first:.0f} MB -> {last:.0f} MB "
            f"({last / first:.2f}x; target flat)"
        )
    print(f"load average at end: {load_now():.2f}")


if __name__ == "__main__":
    main()
