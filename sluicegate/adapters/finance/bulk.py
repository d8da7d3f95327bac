"""NDJSON bulk loads: read line by line from the request stream, never whole.

Lines are validated and stored in batches (one transaction per batch, each
line all-or-nothing); results go to a spooled file (memory-bounded, spills to
disk) and stream back once the body is consumed: one JSON object per input
line — ``line``, ``status`` (accepted / duplicate / rejected), ``job_id`` or
``errors`` — then a ``summary`` line. A line may also be a JSON *array* of
reports (a file with several statements): stored all or nothing in its own
transaction, answered with ``reports`` (one ``job_id``/``status`` each).
"""

from __future__ import annotations

import asyncio
import gc
import json
import tempfile
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from sluicegate.adapters.finance.accept import Conflict, accept_all, accept_lines
from sluicegate.adapters.finance.bulk_lines import Line, Prepared, prepare_lines
from sluicegate.adapters.finance.bulk_pool import HelperPool
from sluicegate.adapters.finance.options import FinanceOptions
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
            elif not buffer:  # the whole line is in this chunk: one copy, not three
                if end - start > max_line:
                    yield Line(number, None, f"line exceeds {max_line} bytes")
                else:
                    yield Line(number, chunk[start:end])
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


def _rejected(number: int, errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"line": number, "status": "rejected", "errors": errors}


def _conflict(number: int, job_id: str, field: str = "") -> dict[str, Any]:
    pointer = f"/{field}" if field else ""
    return {
        "line": number,
        "status": "rejected",
        "job_id": job_id,
        "errors": [{"field": field, "pointer": pointer, "message": CONFLICT}],
    }


def _stored(status: str, job_id: str, failed: list[dict[str, str]]) -> dict[str, Any]:
    result: dict[str, Any] = {"status": status, "job_id": job_id}
    if failed:
        result["failed_checks"] = failed
    return result


def store_batch(runtime: Runtime, adapter: str, batch: list[Prepared]) -> list[dict[str, Any]]:
    """Store the valid lines: report lines in one transaction, each array line in its own."""
    pipeline = runtime.settings.pipeline
    attempts, lease = pipeline.max_attempts, pipeline.lease_s
    results: dict[int, dict[str, Any]] = {}
    singles = [p for p in batch if p.errors is None and not p.group]
    items = [p.reports[0][0] for p in singles]
    outcomes = (
        accept_lines(
            runtime.engine,
            runtime.sealer,
            adapter,
            items,
            [p.reports[0][1] for p in singles],
            max_attempts=attempts,
            lease_s=lease,
        )
        if items
        else []
    )
    for prepared, outcome in zip(singles, outcomes, strict=True):
        number, failed = prepared.number, prepared.reports[0][2]
        if outcome.status == "conflict":
            results[number] = _conflict(number, outcome.job_id)
        else:
            results[number] = {"line": number, **_stored(outcome.status, outcome.job_id, failed)}
    for prepared in batch:
        number = prepared.number
        if prepared.errors is not None:
            results[number] = _rejected(number, prepared.errors)
        elif prepared.group:
            try:
                stored = accept_all(
                    runtime.engine,
                    runtime.sealer,
                    adapter,
                    [item for item, _, _ in prepared.reports],
                    max_attempts=attempts,
                    lease_s=lease,
                    digests=[digest for _, digest, _ in prepared.reports],
                )
            except Conflict as exc:
                results[number] = _conflict(number, exc.job_id, str(exc.index))
                continue
            status = "accepted" if any(o.status == "accepted" for o in stored) else "duplicate"
            reports = [
                _stored(o.status, o.job_id, failed)
                for o, (_, _, failed) in zip(stored, prepared.reports, strict=True)
            ]
            results[number] = {"line": number, "status": status, "reports": reports}
    return [results[n] for n in sorted(results)]


def process_batch(
    runtime: Runtime,
    options: FinanceOptions,
    adapter: str,
    tenant: str,
    batch: list[Line],
    sender: str = "",
) -> list[dict[str, Any]]:
    """Validate every line, then store the valid ones."""
    return store_batch(runtime, adapter, prepare_lines(batch, options, adapter, tenant, sender))


_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
_PLAIN = ("line", "status", "job_id")


def result_line(result: dict[str, Any]) -> str:
    """One line of the answer: what ``json.dumps`` writes, newline-terminated.

    The common result (a line number, a status, a job id: all plain ASCII) is
    formatted directly; encoding it was ~2 us of the server's time per line.
    """
    if tuple(result) == _PLAIN:
        line, status, job_id = result["line"], result["status"], result["job_id"]
        if type(line) is int and status.isalpha() and _ID_CHARS.issuperset(job_id):
            return f'{{"line": {line}, "status": "{status}", "job_id": "{job_id}"}}\n'
    return _ENCODE(result) + "\n"


_ID_CHARS = frozenset("0123456789abcdef-")

CONFLICT = (
    "already accepted with different content under the same key (the Idempotency-Key, "
    "or the report's entity, period and version); send a correction as a new 'version'"
)


_frozen = threading.Event()


def freeze_heap_once() -> None:
    """Move what the process holds by now out of the garbage collector's sight, once.

    A bulk load allocates thousands of rows per batch, and every few batches a
    full collection walked the server's whole long-lived heap (the app, the ORM,
    compiled schemas): ~12 us of the ~80 us the server spends storing a line
    (measured). Objects alive at the first bulk request are the server's own
    long-lived state; garbage made later is still collected as before.
    """
    if not _frozen.is_set():
        _frozen.set()
        gc.collect()
        gc.freeze()


async def run_bulk(
    runtime: Runtime,
    options: FinanceOptions,
    adapter: str,
    tenant: str,
    chunks: AsyncIterator[bytes],
    out: IO[bytes],
    sender: str = "",
    helpers: HelperPool | None = None,
) -> Tally:
    """Read, prepare and store the body batch by batch; results in line order.

    With helper processes up, up to ``helpers.processes`` batches are being
    prepared there while this process stores the oldest one.
    """
    freeze_heap_once()
    tally = Tally()
    batch: list[Line] = []
    inflight: deque[tuple[list[Line], asyncio.Future[list[Prepared]]]] = deque()
    depth = helpers.processes if helpers is not None else 0

    def write(results: list[dict[str, Any]]) -> None:
        for result in results:
            setattr(tally, result["status"], getattr(tally, result["status"]) + 1)
            tally.lines += 1
        out.write("".join(result_line(result) for result in results).encode())

    async def store_oldest() -> None:
        lines, future = inflight.popleft()
        try:
            prepared = await future
        except BrokenExecutor:
            assert helpers is not None
            helpers.broken()
            prepared = await asyncio.to_thread(
                prepare_lines, lines, options, adapter, tenant, sender
            )
        write(await asyncio.to_thread(store_batch, runtime, adapter, prepared))

    async def flush(final: bool = False) -> None:
        if batch:
            lines = list(batch)
            batch.clear()
            pool = helpers.ready() if helpers is not None else None
            future = None
            if pool is not None:
                try:
                    submitted = pool.submit(prepare_lines, lines, options, adapter, tenant, sender)
                    future = asyncio.wrap_future(submitted)
                except BrokenExecutor:
                    assert helpers is not None
                    helpers.broken()
            if future is None:
                while inflight:  # keep the answer in line order
                    await store_oldest()
                write(
                    await asyncio.to_thread(
                        process_batch, runtime, options, adapter, tenant, lines, sender
                    )
                )
            else:
                inflight.append((lines, future))
        while len(inflight) > (0 if final else depth):
            await store_oldest()

    bulk = options.bulk
    try:
        async for line in split_lines(chunks, bulk.max_line_bytes, bulk.max_body_bytes):
            if line.data is not None and not line.data.strip():
                continue
            batch.append(line)
            if len(batch) >= bulk.batch_size:
                await flush()
        await flush(final=True)
    except BodyLimit as exc:
        await flush(final=True)
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
