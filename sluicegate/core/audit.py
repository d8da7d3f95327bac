"""Append-only, hash-chained audit events.

Each event's hash is SHA-256 over the canonical JSON of its content and the
previous event's hash in the same tenant's chain, so any edit, deletion,
insertion or reordering breaks the chain. Appends lock the tenant's chain head
row, so concurrent writers cannot fork the chain. ``data`` must never hold PHI:
ids, counts, backend names and timings only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, update
from sqlmodel import Session, col, select

from sluicegate.core.tables import AuditEvent, AuditHead, utcnow

GENESIS = "0" * 64


def canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent) -> str:
    content = {
        "tenant": event.tenant,
        "seq": event.seq,
        "job_id": event.job_id,
        "type": event.type,
        "at": event.at.isoformat(),
        "data": json.loads(event.data),
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(canonical(content)).hexdigest()


def record(
    session: Session, tenant: str, type_: str, job_id: str | None, **data: Any
) -> AuditEvent:
    """Append one event inside the caller's transaction."""
    head = session.execute(
        select(AuditHead).where(AuditHead.tenant == tenant).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(tenant=tenant, last_seq=0, last_hash=GENESIS)
        session.add(head)
    event = AuditEvent(
        tenant=tenant,
        seq=head.last_seq + 1,
        job_id=job_id,
        type=type_,
        at=utcnow(),
        data=canonical(data).decode(),
        prev_hash=head.last_hash,
        hash="",
    )
    event.hash = event_hash(event)
    head.last_seq = event.seq
    head.last_hash = event.hash
    session.add(event)
    return event


def append(
    conn: Connection, tenant: str, events: Sequence[tuple[str, str | None, dict[str, Any]]]
) -> None:
    """Append several events (type, job id, data) in one statement: the ingest fast path.

    Same chain, same hashes as :func:`record`; SQL Core on the caller's
    connection and transaction, the head row locked once.
    """
    if not events:
        return
    heads = AuditHead.__table__  # type: ignore[attr-defined]
    found = conn.execute(
        select(heads.c.last_seq, heads.c.last_hash)
        .where(heads.c.tenant == tenant)
        .with_for_update()
    ).first()
    seq, prev = (found[0], found[1]) if found is not None else (0, GENESIS)
    rows: list[dict[str, Any]] = []
    for type_, job_id, data in events:
        seq += 1
        row: dict[str, Any] = {
            "tenant": tenant,
            "seq": seq,
            "job_id": job_id,
            "type": type_,
            "at": utcnow(),
            "data": canonical(data).decode(),
            "prev_hash": prev,
        }
        row["hash"] = prev = event_hash(AuditEvent.model_construct(**row))
        rows.append(row)
    conn.execute(insert(AuditEvent.__table__), rows)  # type: ignore[arg-type]
    if found is None:
        conn.execute(insert(heads).values(tenant=tenant, last_seq=seq, last_hash=prev))
    else:
        conn.execute(
            update(heads).where(heads.c.tenant == tenant).values(last_seq=seq, last_hash=prev)
        )


def verify_chain(session: Session, tenant: str) -> int | None:
    """Return the seq of the first bad event of ``tenant``'s chain, or None if intact."""
    prev, expected_seq = GENESIS, 1
    rows = session.execute(
        select(AuditEvent).where(AuditEvent.tenant == tenant).order_by(col(AuditEvent.seq))
    ).scalars()
    for event in rows:
        if event.seq != expected_seq or event.prev_hash != prev or event_hash(event) != event.hash:
            return event.seq
        prev, expected_seq = event.hash, expected_seq + 1
    return None
