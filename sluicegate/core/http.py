"""What every adapter's HTTP routes share: the runtime, bounded bodies, durable submit."""

from __future__ import annotations

import asyncio
import dataclasses

from fastapi import Request

from sluicegate.core.ingest import Accepted
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.runtime import Runtime


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


def sender_of(request: Request) -> str:
    """Who is sending, for the audit trail: the API key's id, else the client address."""
    principal = getattr(request.state, "principal", None)
    key_id = getattr(principal, "key_id", None)
    if key_id:
        return f"key:{key_id}"
    return f"ip:{request.client.host}" if request.client else "unknown"


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def read_body(request: Request) -> bytes:
    """Read the body, refusing more than ``api.max_body_bytes`` without buffering it all."""
    limit = runtime_of(request).settings.api.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def submit(request: Request, adapter: str, items: list[WorkItem]) -> list[Accepted]:
    """Persist items durably (item + job + outbox in one transaction), then wake the relay.

    Concurrent requests share transactions (group commit); each is answered
    only after the one holding its items has committed.
    """
    runtime = runtime_of(request)
    sender = sender_of(request)
    items = [item if item.sender else dataclasses.replace(item, sender=sender) for item in items]
    accepted = await asyncio.wrap_future(runtime.committer().submit(adapter, items))
    relay = getattr(request.app.state, "relay", None)
    if relay is not None:
        relay.nudge()
    return accepted
