"""Durable accept for finance items, with the 409 rules core does not know about.

Two keys guard a report. Its natural key (entity, period, version) is the work
item's idempotency key, so core's ``accept`` answers a re-post with the
original job; finance also refuses the *same key with different content*, by
comparing content digests afterwards (a mismatch stored nothing: core only
stores new keys). A sender's ``Idempotency-Key`` header is recorded beside the
job (as a hash) and obeys the same rule on its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from sluicegate.core.crypto import Sealer
from sluicegate.core.db import transaction
from sluicegate.core.ingest import accept, open_item
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.tables import FinanceIdempotencyKey, WorkItemRow


@dataclass(frozen=True)
class Outcome:
    status: Literal["accepted", "duplicate", "conflict"]
    job_id: str


def key_hash(header: str) -> str:
    return hashlib.sha256(header.encode()).hexdigest()


def stored_digest(engine: Engine, sealer: Sealer, tenant: str, key: str) -> str | None:
    with Session(engine) as session:
        row = (
            session.execute(
                select(WorkItemRow)
                .where(WorkItemRow.tenant == tenant, WorkItemRow.idempotency_key == key)
                .order_by(col(WorkItemRow.created_at))
            )
            .scalars()
            .first()
        )
        if row is None:
            return None
        digest = open_item(sealer, row).payload.get("content_digest")
        return str(digest) if digest is not None else None


def _header_row(engine: Engine, tenant: str, hashed: str) -> FinanceIdempotencyKey | None:
    with Session(engine) as session:
        return session.get(FinanceIdempotencyKey, (tenant, hashed))


def _by_header(row: FinanceIdempotencyKey, item: WorkItem) -> Outcome:
    same = row.content_digest == item.payload.get("content_digest")
    return Outcome("duplicate" if same else "conflict", row.job_id)


def _remember(engine: Engine, item: WorkItem, hashed: str, outcome: Outcome) -> Outcome:
    """Record the header for this job; a concurrent first use of the header wins."""
    digest = str(item.payload.get("content_digest"))
    try:
        with transaction(engine) as session:
            session.add(
                FinanceIdempotencyKey(
                    tenant=item.tenant,
                    key_hash=hashed,
                    job_id=outcome.job_id,
                    content_digest=digest,
                )
            )
    except IntegrityError:
        row = _header_row(engine, item.tenant, hashed)
        if row is not None and row.job_id != outcome.job_id:
            return _by_header(row, item)
    return outcome


def accept_items(
    engine: Engine,
    sealer: Sealer,
    adapter: str,
    items: list[WorkItem],
    *,
    max_attempts: int,
    lease_s: float,
    header_keys: list[str | None] | None = None,
) -> list[Outcome]:
    """Store new items (one transaction), then sort re-posts into duplicates and conflicts."""
    keys = header_keys or [None] * len(items)
    outcomes: dict[int, Outcome] = {}
    pending: list[int] = []
    for index, (item, header) in enumerate(zip(items, keys, strict=True)):
        row = _header_row(engine, item.tenant, key_hash(header)) if header else None
        if row is not None:
            outcomes[index] = _by_header(row, item)
        else:
            pending.append(index)
    stored = (
        accept(
            engine,
            sealer,
            adapter,
            [items[i] for i in pending],
            max_attempts=max_attempts,
            lease_s=lease_s,
        )
        if pending
        else []
    )
    for index, result in zip(pending, stored, strict=True):
        item = items[index]
        if result.created:
            outcome = Outcome("accepted", result.job_id)
        else:
            digest = stored_digest(engine, sealer, item.tenant, item.idempotency_key)
            same = digest == item.payload.get("content_digest")
            outcome = Outcome("duplicate" if same else "conflict", result.job_id)
        header = keys[index]
        if header and outcome.status != "conflict":
            outcome = _remember(engine, item, key_hash(header), outcome)
        outcomes[index] = outcome
    return [outcomes[i] for i in range(len(items))]
