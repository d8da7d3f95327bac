"""Finance NDJSON bulk: records/s accepted over HTTP vs a bare parse + validate loop.

Baseline, same process and run, same records: ``json.loads(line, parse_float=Decimal)``
then ``Report.model_validate`` per line. Measured: the same lines streamed (chunked
body, never built in memory) to ``POST /finance/reports:bulk`` of a real
``sluicegate serve`` process (API only: no worker, relay or Triton), SQLite in a
temp home. Every line is validated, analysed (facts, checks, ratios, prompt),
persisted (sealed item + job + outbox + audit event, one transaction per batch)
and only then counted as accepted. Target: accepted records/s >= 0.5 x baseline.

Memory: the server's peak RSS (VmHWM) is read after each run; each size runs in a
fresh server, so the peaks compare directly (target: flat from 10k to 100k).

    .venv/bin/python benchmarks/finance_bulk.py [--sizes 10000,100000] [--batch 250]
"""

from __future__ import annotations

import argparse
import contextlib
import json
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


def server(home: Path, batch: int) -> contextlib.AbstractContextManager[tuple[str, int]]:
    options = {"bulk": {"batch_size": batch}}
    finance = {"factory": "sluicegate.adapters.finance:FinanceAdapter", "options": options}
    return serve_api(home, {"adapters": {"finance": finance}})


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bulk_run(n: int, batch: int) -> tuple[float, float, dict[str, int]]:
    with (
        tempfile.TemporaryDirectory(prefix="sg-finbench-") as tmp,
        server(Path(tmp), batch) as (base, pid),
    ):
        with httpx.Client(base_url=base, timeout=None) as client:
            # warm-up: imports, compiled statements
            client.post(
                "/finance/reports:bulk",
                content=b"".join(records(20, "warm")),
                headers={"content-type": "application/x-ndjson"},
            )
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
        return summary.get("accepted", 0) / elapsed, peak_rss_mb(pid), summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--batch", type=int, default=250)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    load_start = load_now()
    rows, ratios = [], []
    for n in sizes:
        base_rate = baseline(min(n, 20_000))
        rate, rss, summary = bulk_run(n, args.batch)
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
                "server peak RSS MB",
            ],
            rows,
        )
    )
    for n, ratio in zip(sizes, ratios, strict=True):
        print(f"ratio accepted/baseline at {n:,} lines: {ratio:.2f} (target >= 0.5)")
    if len(rows) > 1:
        first, last = float(rows[0][4].replace(",", "")), float(rows[-1][4].replace(",", ""))
        print(
            f"peak RSS {sizes[0]:,} -> {sizes[-1]:,} lines: {first:.0f} MB -> {last:.0f} MB "
            f"({last / first:.2f}x; target flat)"
        )
    print(f"load average at end: {load_now():.2f}")


if __name__ == "__main__":
    main()
