"""NDJSON bulk loads: read line by line from the request stream, never whole.

Lines are validated and stored in batches (one transaction per batch, each
line all-or-nothing); results go to a spooled file (memory-bounded, spills to
disk) and stream back once the body is consumed: one JSON object per input
line — ``line``, ``status`` (accepted / duplicate / rejected), ``job_id`` or
``errors`` — then a ``summary`` line.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sluicegate.adapters.finance.accept import accept_items
from sluicegate.adapters.finance.errors import ReportRejected, load_report
from sluicegate.adapters.finance.intake import prepare
from sluicegate.adapters.finance.options import FinanceOptions
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.runtime import Runtime


@dataclass
class Tally:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    lines: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {
            "lines": self.lines,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class Line:
    number: int
    data: bytes | None  # None: over the line limit
    error: str | None = None


class BodyLimit(Exception):
    pass


async def split_lines(
    chunks: AsyncIterator[bytes], max_line: int, max_body: int
) -> AsyncIterator[Line]:
    """Yield complete lines; a line over ``max_line`` is reported, not buffered."""
    buffer = bytearray()
    number, total, skipping = 0, 0, False
    async for chunk in chunks:
        total += len(chunk)
        if total > max_body:
            raise BodyLimit(f"request body exceeds {max_body} bytes")
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if not skipping:
                    buffer += chunk[start:]
                    if len(buffer) > max_line:
                        skipping = True
                        buffer.clear()
                break
            number += 1
            if skipping:
                yield Line(number, None, f"line exceeds {max_line} bytes")
                skipping = False
            else:
                buffer += chunk[start:end]
                if len(buffer) > max_line:
                    yield Line(number, None, f"line exceeds {max_line} bytes")
                else:
                    yield Line(number, bytes(buffer))
            buffer.clear()
            start = end + 1
    if skipping:
        yield Line(number + 1, None, f"line exceeds {max_line} bytes")
    elif buffer.strip():
        yield Line(number + 1, bytes(buffer))


def process_batch(
    runtime: Runtime, options: FinanceOptions, adapter: str, tenant: str, batch: list[Line]
) -> list[dict[str, Any]]:
    """Validate every line, then store the valid ones in one transaction."""
    results: dict[int, dict[str, Any]] = {}
    ready: list[tuple[int, WorkItem, list[dict[str, str]]]] = []
    for line in batch:
        if line.data is None:
            results[line.number] = {
                "line": line.number,
                "status": "rejected",
                "errors": [{"field": "", "message": line.error}],
            }
            continue
        try:
            item, failed = prepare(load_report(line.data), options, tenant=tenant, channel=adapter)
        except ReportRejected as exc:
            results[line.number] = {"line": line.number, "status": "rejected", "errors": exc.errors}
            continue
        ready.append((line.number, item, failed))
    pipeline = runtime.settings.pipeline
    outcomes = accept_items(
        runtime.engine,
        runtime.sealer,
        adapter,
        [r[1] for r in ready],
        max_attempts=pipeline.max_attempts,
        lease_s=pipeline.lease_s,
    )
    for (number, _, failed), outcome in zip(ready, outcomes, strict=True):
        if outcome.status == "conflict":
            results[number] = {
                "line": number,
                "status": "rejected",
                "job_id": outcome.job_id,
                "errors": [{"field": "", "message": CONFLICT}],
            }
        else:
            result: dict[str, Any] = {
                "line": number,
                "status": outcome.status,
                "job_id": outcome.job_id,
            }
            if failed:
                result["failed_checks"] = failed
            results[number] = result
    return [results[n] for n in sorted(results)]


CONFLICT = (
    "already accepted with different content under the same key (the Idempotency-Key, "
    "or the report's entity, period and version); send a correction as a new 'version'"
)


async def run_bulk(
    runtime: Runtime,
    options: FinanceOptions,
    adapter: str,
    tenant: str,
    chunks: AsyncIterator[bytes],
    out: IO[bytes],
) -> Tally:
    tally = Tally()
    batch: list[Line] = []

    async def flush() -> None:
        if not batch:
            return
        results = await asyncio.to_thread(
            process_batch, runtime, options, adapter, tenant, list(batch)
        )
        batch.clear()
        for result in results:
            setattr(tally, result["status"], getattr(tally, result["status"]) + 1)
            tally.lines += 1
            out.write(json.dumps(result, ensure_ascii=False).encode() + b"\n")

    bulk = options.bulk
    try:
        async for line in split_lines(chunks, bulk.max_line_bytes, bulk.max_body_bytes):
            if line.data is not None and not line.data.strip():
                continue
            batch.append(line)
            if len(batch) >= bulk.batch_size:
                await flush()
        await flush()
    except BodyLimit as exc:
        await flush()
        out.write(json.dumps({"error": str(exc), "status": "truncated"}).encode() + b"\n")
    out.write(json.dumps({"summary": tally.as_dict()}).encode() + b"\n")
    return tally


def spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=1024 * 1024, mode="w+b")


def drain(out: IO[bytes], chunk: int = 64 * 1024) -> Iterator[bytes]:
    out.seek(0)
    try:
        while data := out.read(chunk):
            yield data
    finally:
        out.close()
