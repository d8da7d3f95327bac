"""On-prem inference path: the real local Triton vs the same engine called in-process.

Baseline, measured in the same run: ``LlamaCppEngine.complete`` (xllamacpp,
SmolLM2-135M GGUF, same threads and context as the server) in this process.
Measured: the same request through the real local ``tritonserver`` (started on
free ports by ``tests/triton_fixture.running_local_triton``, workspace in a temp
dir) via ``TritonBackend.generate`` over HTTP, and over gRPC.

The prompt is the radiology prompt of the sample bundle
(``prompts.build_messages("radiology_report", ...)`` + ``format_chat``), with
the same sampling options on every path: ``max_tokens`` (default 64),
temperature 0 (greedy, so no seed is needed) and the chatml stop marker.
llama.cpp caches the prompt prefix of the previous request; by default each
request carries a unique request number in its Procedure line, so only the
shared system prompt is reused, as across real jobs. ``--same-prompt`` sends
the identical prompt every time (prefill served from the cache, decode-bound).
Paths are interleaved round by round so drift on a noisy box hits all alike.

    .venv/bin/python benchmarks/local_triton.py [--repeats 5] [--max-tokens 64] [--no-grpc]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from _common import load_now, machine, median, p90, table

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # for tests.triton_fixture
    sys.path.insert(0, str(REPO))

from sluicegate.adapters.fhir import FhirAdapter  # noqa: E402
from sluicegate.core.config import LocalTritonConfig  # noqa: E402
from sluicegate.core.interfaces import GenerationRequest, Sensitivity  # noqa: E402
from sluicegate.inference.local_triton import LlamaCppEngine, find_model_file  # noqa: E402
from sluicegate.inference.prompts import (  # noqa: E402
    build_messages,
    format_chat,
    stop_sequences,
)
from sluicegate.inference.triton import TritonBackend  # noqa: E402
from tests.triton_fixture import running_local_triton  # noqa: E402

SAMPLE = REPO / "samples" / "fhir" / "radiology-bundle.json"
TASK = "radiology_report"
TEMPLATE = "chatml"


@dataclass
class Route:
    """One way of running the request, and its samples."""

    name: str
    call: Callable[[dict[str, str]], Awaitable[tuple[int, str]]]
    latencies_s: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [n / s for n, s in zip(self.tokens, self.latencies_s, strict=True)]


def sample_inputs() -> dict[str, str]:
    """The prompt inputs the FHIR adapter extracts from the sample bundle."""
    items = FhirAdapter().parse(
        SAMPLE.read_bytes(), "application/fhir+json", tenant="default", channel="fhir"
    )
    return dict(items[0].prompt_inputs)


def inputs_for(base: dict[str, str], number: int | None) -> dict[str, str]:
    """``base``, with a request number in the Procedure line unless ``number`` is None."""
    if number is None:
        return base
    return {**base, "procedure": f"[request {number:04d}] {base['procedure']}"}


async def timed(path: Route, inputs: dict[str, str], record: bool) -> None:
    started = time.perf_counter()
    tokens, text = await path.call(inputs)
    elapsed = time.perf_counter() - started
    if record:
        path.latencies_s.append(elapsed)
        path.tokens.append(tokens)
        path.texts.append(text.strip())


async def bench(args: argparse.Namespace) -> None:
    base_inputs = sample_inputs()
    cfg = LocalTritonConfig()  # the server's defaults: threads, context size
    options = {
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "stop": stop_sequences(TEMPLATE),
    }
    engine = LlamaCppEngine(
        find_model_file(cfg.model_file), threads=cfg.threads, context_tokens=cfg.context_tokens
    )

    async def direct(inputs: dict[str, str]) -> tuple[int, str]:
        prompt = format_chat(build_messages(TASK, inputs), TEMPLATE)
        done = engine.complete(prompt, options)
        return done.completion_tokens, done.text

    def via(backend: TritonBackend) -> Callable[[dict[str, str]], Awaitable[tuple[int, str]]]:
        async def call(inputs: dict[str, str]) -> tuple[int, str]:
            request = GenerationRequest(
                job_id="bench",
                task=TASK,
                sensitivity=Sensitivity.PHI,
                inputs=inputs,
                max_tokens=args.max_tokens,
            )
            generation = await backend.generate(request)
            return generation.completion_tokens or 0, generation.text

        return call

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sg-bench-triton-")))
        server = stack.enter_context(running_local_triton(tmp / "triton"))
        common = {"temperature": 0.0, "max_tokens": args.max_tokens, "timeout_s": 120.0}
        backends = [TritonBackend("http", server.backend_config("http", **common))]
        if not args.no_grpc:
            backends.append(TritonBackend("grpc", server.backend_config("grpc", **common)))
        routes = [Route("direct xllamacpp (baseline)", direct)]
        routes += [Route(f"Triton {b.id} (TritonBackend)", via(b)) for b in backends]
        number = 0
        try:
            started = time.monotonic()
            for round_ in range(1 + args.repeats):  # round 0 warms engines and connections
                if round_ == 1:
                    started = time.monotonic()
                for route in routes:
                    number += 1
                    inputs = inputs_for(base_inputs, None if args.same_prompt else number)
                    await timed(route, inputs, record=round_ > 0)
            elapsed = time.monotonic() - started
        finally:
            for backend in backends:
                await backend.aclose()

    report(args, routes, server.startup_s, elapsed)


def report(args: argparse.Namespace, routes: list[Route], startup_s: float, elapsed: float) -> None:
    base = routes[0]
    mode = "same prompt every request" if args.same_prompt else "unique request number"
    print(
        f"local Triton benchmark: SmolLM2-135M Q4_1, max_tokens={args.max_tokens}, "
        f"temperature 0, {mode}, {args.repeats} requests per path, {elapsed:.1f}s measured "
        f"(server start-up {startup_s:.1f}s, not counted); {machine(args.load_at_start)}"
    )
    rows = [
        [
            r.name,
            f"{median(r.latencies_s) * 1e3:,.0f}",
            f"{p90(r.latencies_s) * 1e3:,.0f}",
            f"{median(r.tokens):.0f}",
            f"{median(r.rates):.1f}",
            f"{median(r.latencies_s) / median(base.latencies_s):.3f}",
        ]
        for r in routes
    ]
    headers = ["path", "latency ms p50", "p90", "gen tokens", "tokens/s p50", "latency vs direct"]
    print(table(headers, rows))
    for r in routes[1:]:
        latency = median(r.latencies_s) / median(base.latencies_s)
        rate = median(r.rates) / median(base.rates)
        extra_ms = (median(r.latencies_s) - median(base.latencies_s)) * 1e3
        print(
            f"ratio {r.name.split(' (')[0]}/direct: latency {latency:.3f}, tokens/s {rate:.3f} "
            f"(serving overhead {extra_ms:+.0f} ms per request at the median)"
        )
    if args.same_prompt:
        same = all(r.texts == base.texts for r in routes[1:])
        print(f"outputs identical across paths: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="measured requests per path")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--no-grpc", action="store_true", help="skip the gRPC path")
    parser.add_argument(
        "--same-prompt", action="store_true", help="identical prompt every request (cache hit)"
    )
    args = parser.parse_args()
    args.load_at_start = load_now()
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
