"""Persist step: accept parsed work durably before answering the sender.

The work item, its job, the outbox message that will publish it and the
``received`` audit event are written in ONE transaction. Only after it
commits does the adapter answer (HTTP 202 / ACK AA); if the broker is down the
message waits in the outbox and the relay publishes it later. Re-sending the
same content (same tenant and idempotency key) returns the original job.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from sluicegate.core import audit
from sluicegate.core.crypto import Sealer
from sluicegate.core.db import transaction
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.tables import Job, OutboxMessage, WorkItemRow, utcnow


@dataclass(frozen=True)
class Accepted:
    job_id: str
    created: bool  # False when an identical item was accepted before


def work_item_aad(row_id: str) -> bytes:
    return f"work_items:{row_id}".encode()


def seal_item(sealer: Sealer, row_id: str, item: WorkItem) -> bytes:
    return sealer.seal(json.dumps(asdict(item)).encode(), work_item_aad(row_id))


def open_item(sealer: Sealer, row: WorkItemRow) -> WorkItem:
    return WorkItem(**json.loads(sealer.open(row.sealed, work_item_aad(row.id))))


def accept(
    engine: Engine,
    sealer: Sealer,
    adapter: str,
    items: list[WorkItem],
    *,
    max_attempts: int,
    lease_s: float,
) -> list[Accepted]:
    """Store ``items`` with their jobs and outbox messages, all or nothing."""
    try:
        return _accept(engine, sealer, adapter, items, max_attempts, lease_s)
    except IntegrityError:
        # A concurrent request stored the same item between our check and insert;
        # the second pass finds it and answers with the original job.
        return _accept(engine, sealer, adapter, items, max_attempts, lease_s)


def _accept(
    engine: Engine,
    sealer: Sealer,
    adapter: str,
    items: list[WorkItem],
    max_attempts: int,
    lease_s: float,
) -> list[Accepted]:
    accepted: list[Accepted] = []
    with transaction(engine) as session:
        for item in items:
            existing = session.execute(
                select(col(Job.id))
                .join(WorkItemRow, col(WorkItemRow.id) == col(Job.work_item_id))
                .where(
                    WorkItemRow.tenant == item.tenant,
                    WorkItemRow.idempotency_key == item.idempotency_key,
                )
            ).scalar_one_or_none()
            if existing is not None:
                accepted.append(Accepted(existing, created=False))
                continue
            row = WorkItemRow(
                tenant=item.tenant,
                channel=item.channel,
                adapter=adapter,
                task=item.task,
                source_ref=item.source_ref,
                idempotency_key=item.idempotency_key,
                sealed=b"",
            )
            row.sealed = seal_item(sealer, row.id, item)
            now = utcnow()
            job = Job(
                work_item_id=row.id,
                tenant=item.tenant,
                channel=item.channel,
                task=item.task,
                max_attempts=max_attempts,
                due_at=now + timedelta(seconds=lease_s),
            )
            session.add(row)
            session.flush()
            session.add(job)
            session.flush()
            session.add(OutboxMessage(job_id=job.id))
            audit.record(
                session,
                item.tenant,
                "received",
                job.id,
                adapter=adapter,
                channel=item.channel,
                task=item.task,
                source_ref=item.source_ref,
            )
            accepted.append(Accepted(job.id, created=True))
    return accepted
