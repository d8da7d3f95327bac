"""Latency the router adds on top of a plain httpx call to the same backend.

A minimal HTTP backend (a subprocess that answers every POST at once with a
fixed completion) is called two ways in the same run, interleaved request by
request so both see the same load:

- **direct**: ``httpx.AsyncClient.post`` to the backend, response parsed;
- **routed**: ``PolicyRouter.generate`` over a backend object making that same
  call, on the worst-case path: a channel rule, a cleared de-identified request
  to a cloud-zone backend (clearance digest checked), the breaker, the
  concurrency gate, the deadline, and a response-cache miss whose answer is
  sealed with AES-GCM and stored (inputs are unique, so nothing is served from
  the cache).

It prints p50/p99 of both at concurrency 1 and 64, their difference, and the
router's own time per request (routed total minus the backend call inside it),
which is the overhead free of server-side noise. Target at concurrency 64:
<= 2 ms p50 and <= 10 ms p99 added.

    .venv/bin/python benchmarks/router_overhead.py   # --requests 4000 --concurrency 1,64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import httpx
from _common import free_port, load_now, machine, median, table

from sluicegate.core.config import PolicyConfig
from sluicegate.core.crypto import Sealer
from sluicegate.core.interfaces import (
    Clearance,
    Generation,
    GenerationRequest,
    Sensitivity,
    Zone,
)
from sluicegate.inference.cache import ResponseCache
from sluicegate.inference.router import BackendLimits, PolicyRouter

ANSWER = json.dumps(
    {"text": "IMPRESSION: No acute findings.", "prompt_tokens": 42, "completion_tokens": 7}
).encode()


async def _serve(port: int) -> None:
    """HTTP/1.1 keep-alive: read a request (headers + Content-Length body), answer at once."""
    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(ANSWER)}\r\n\r\n".encode()
        + ANSWER
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def backend_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    url = f"http://127.0.0.1:{port}/generate"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class HttpBackend:
    """A backend object around the same httpx call the direct path makes."""

    client: httpx.AsyncClient
    url: str
    id: str = "bench-cloud"
    zone: Zone = Zone.CLOUD
    model: str = "bench"
    inner_s: dict[str, tuple[float, float]] = field(default_factory=dict)  # wall, CPU

    async def generate(self, request: GenerationRequest) -> Generation:
        start, cpu = time.perf_counter(), time.thread_time()
        answer = await self.client.post(self.url, json={"inputs": request.inputs})
        data = answer.json()
        elapsed = time.perf_counter() - start
        self.inner_s[request.job_id] = (elapsed, time.thread_time() - cpu)
        return Generation(
            text=data["text"],
            backend_id=self.id,
            model=self.model,
            zone=self.zone,
            latency_s=elapsed,
            prompt_tokens=data["prompt_tokens"],
            completion_tokens=data["completion_tokens"],
        )

    async def health(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def request(i: int) -> GenerationRequest:
    inputs = {"findings": f"[PATIENT-1] item {i}: 4 mm nodule, right upper lobe."}
    return GenerationRequest(
        job_id=f"job-{i}",
        task="radiology_report",
        sensitivity=Sensitivity.DEIDENTIFIED,
        inputs=inputs,
        max_tokens=64,
        channel="fhir-main",
        clearance=Clearance.for_inputs(inputs),
    )


@dataclass
class Run:
    direct: list[float] = field(default_factory=list)
    routed: list[float] = field(default_factory=list)
    router_own: list[float] = field(default_factory=list)
    router_cpu: list[float] = field(default_factory=list)


async def measure(url: str, concurrency: int, count: int, warmup: int) -> Run:
    limits = httpx.Limits(
        max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2
    )
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        backend = HttpBackend(client, url)
        router = PolicyRouter(
            [backend],
            policy=PolicyConfig.model_validate(
                {"rules": [{"channel": "fhir-*", "deidentified": ["bench-cloud"]}]}
            ),
            limits={"bench-cloud": BackendLimits(max_concurrency=concurrency)},
            deadline_s=30,
            cache=ResponseCache(Sealer({"k": os.urandom(32)}, "k"), max_entries=count + warmup),
        )
        run = Run()
        counter = iter(range(10**9))

        async def direct(record: bool) -> None:
            i = next(counter)
            start = time.perf_counter()
            answer = await client.post(url, json={"inputs": request(i).inputs})
            answer.json()
            if record:
                run.direct.append(time.perf_counter() - start)

        async def routed(record: bool) -> None:
            req = request(next(counter))
            start, cpu = time.perf_counter(), time.thread_time()
            result = await router.generate(req)
            total, total_cpu = time.perf_counter() - start, time.thread_time() - cpu
            assert not result.from_cache and result.backend_id == "bench-cloud"
            inner, inner_cpu = backend.inner_s.pop(req.job_id)
            if record:
                run.routed.append(total)
                run.router_own.append(total - inner)
                # The router's own code never suspends, so outside the backend
                # call this thread's CPU time is the router's work alone.
                run.router_cpu.append(total_cpu - inner_cpu)

        async def worker(n: int, record: bool) -> None:
            for k in range(n):
                await (direct if (k + n) % 2 else routed)(record)

        per_worker = max(2, count // concurrency)
        per_warm = max(2, warmup // concurrency)
        await asyncio.gather(*(worker(per_warm, False) for _ in range(concurrency)))
        await asyncio.gather(*(worker(per_worker, True) for _ in range(concurrency)))
        return run


def ms(value: float) -> str:
    return f"{value * 1000:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=4000, help="measured requests per level")
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--concurrency", default="1,64")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    load = load_now()
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    verdicts = []
    with backend_server() as url:
        for level in levels:
            run = asyncio.run(measure(url, level, args.requests, args.warmup))
            d50, d99 = median(run.direct), pct(run.direct, 0.99)
            r50, r99 = median(run.routed), pct(run.routed, 0.99)
            o50, o99 = median(run.router_own), pct(run.router_own, 0.99)
            c50, c99 = median(run.router_cpu), pct(run.router_cpu, 0.99)
            rows.append(
                [
                    str(level),
                    str(len(run.direct) + len(run.routed)),
                    ms(d50),
                    ms(d99),
                    ms(r50),
                    ms(r99),
                    ms(r50 - d50),
                    ms(r99 - d99),
                    ms(o50),
                    ms(o99),
                    ms(c50),
                    ms(c99),
                ]
            )
            if level >= 64:
                ok = o50 <= 0.002 and o99 <= 0.010
                verdicts.append(
                    f"concurrency {level}: router adds {ms(o50)} ms p50, {ms(o99)} ms p99 "
                    f"(target <= 2 ms p50, <= 10 ms p99): {'MET' if ok else 'MISSED'}"
                )
    headers = [
        "conc",
        "requests",
        "direct p50",
        "direct p99",
        "routed p50",
        "routed p99",
        "diff p50",
        "diff p99",
        "router p50",
        "router p99",
        "cpu p50",
        "cpu p99",
    ]
    print("Router overhead (ms): direct httpx vs PolicyRouter over the same backend")
    print(table(headers, rows))
    print(
        "diff = routed - direct percentiles; router = routed total - backend call inside it "
        "(wall time); cpu = the router's CPU time in that window (wall minus cpu = waiting "
        "for the CPU: preemption on a loaded box)"
    )
    for line in verdicts:
        print(line)
    print(machine(load))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
