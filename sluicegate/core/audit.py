"""Append-only, hash-chained audit events.

Each event's hash is SHA-256 over the canonical JSON of its content and the
previous event's hash in the same tenant's chain, so any edit, deletion,
insertion or reordering breaks the chain. Appends lock the tenant's chain head
row, so concurrent writers cannot fork the chain. ``data`` must never hold PHI
in the clear: ids, counts, backend names and timings; anything sensitive
(prompts, responses) goes in as :func:`sealed_payload`. Signed checkpoints
pin the chain head so that truncation and wholesale rewrites are caught too;
export (JSON Lines, FHIR AuditEvent) and retention purge live here too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, exists, func, or_, union_all, update
from sqlmodel import Session, col, select

from sluicegate.core.driver_insert import insert_many
from sluicegate.core.tables import AuditCheckpoint, AuditEvent, AuditHead, AuditJobLink, utcnow

if TYPE_CHECKING:
    from sluicegate.core.crypto import Sealer

GENESIS = "0" * 64


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(content: dict[str, Any]) -> bytes:
    return _CANONICAL.encode(content).encode()


def event_hash(event: AuditEvent) -> str:
    return row_hash({name: getattr(event, name) for name in _HASHED})


_HASHED = ("tenant", "seq", "job_id", "type", "at", "data", "prev_hash")


def row_hash(row: dict[str, Any]) -> str:
    """:func:`event_hash` of an ``audit_events`` row as a dict.

    Rows built for a bulk insert are hashed as dicts: a model instance made
    with ``model_construct`` fails on attribute access in a process whose ORM
    mappers are not configured yet (a fresh worker or listener).
    """
    content = {name: row[name] for name in _HASHED}
    content["at"] = row["at"].isoformat()
    content["data"] = json.loads(row["data"])
    return hashlib.sha256(canonical(content)).hexdigest()


def _new_row_hash(row: dict[str, Any], at: str, tenant: str) -> str:
    """:func:`row_hash` of a row whose ``data`` :func:`canonical` just wrote.

    The same bytes, written in :func:`canonical`'s key order rather than parsed
    back and rebuilt (the ingest path hashes two events per item); ``at`` and
    ``tenant`` come JSON-encoded, once per batch.
    """
    job_id = row["job_id"]
    content = (
        f'{{"at":{at},"data":{row["data"]},'
        f'"job_id":{"null" if job_id is None else _CANONICAL.encode(job_id)},'
        f'"prev_hash":{_CANONICAL.encode(row["prev_hash"])},"seq":{int(row["seq"])},'
        f'"tenant":{tenant},"type":{_CANONICAL.encode(row["type"])}}}'
    )
    return hashlib.sha256(content.encode()).hexdigest()


def record(
    session: Session, tenant: str, type_: str, job_id: str | None, **data: Any
) -> AuditEvent:
    """Append one event inside the caller's transaction."""
    locked = select(AuditHead).where(AuditHead.tenant == tenant).with_for_update()
    head = session.execute(locked).scalar_one_or_none()
    if head is None:  # a new chain: create its head, then lock it
        _ensure_head(session.connection(), tenant)
        head = session.execute(locked).scalar_one()
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
    locked = (
        select(heads.c.last_seq, heads.c.last_hash)
        .where(heads.c.tenant == tenant)
        .with_for_update()
    )
    found = conn.execute(locked).first()
    if found is None:  # a new chain: create its head, then lock it
        _ensure_head(conn, tenant)
        found = conn.execute(locked).one()
    seq, prev = found
    rows = chain_rows(tenant, seq, prev, events)
    seq, prev = rows[-1]["seq"], rows[-1]["hash"]
    insert_many(conn, AuditEvent.__table__, rows)  # type: ignore[attr-defined]
    links = link_rows(tenant, rows, events)
    if links:
        insert_many(conn, AuditJobLink.__table__, links)  # type: ignore[attr-defined]
    conn.execute(update(heads).where(heads.c.tenant == tenant).values(last_seq=seq, last_hash=prev))


def _ensure_head(conn: Connection, tenant: str) -> None:
    """Create ``tenant``'s chain head if it is missing, so that it can be locked.

    ``SELECT ... FOR UPDATE`` locks nothing while the row does not exist: two
    processes writing a tenant's first event (two API replicas recording their
    configuration at start) would both start the chain at seq 1 and one would
    fail. ``ON CONFLICT DO NOTHING`` waits for a concurrent insert to commit and
    then leaves its row alone, so the lock that follows serialises them.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    heads = AuditHead.__table__  # type: ignore[attr-defined]
    values = {"tenant": tenant, "last_seq": 0, "last_hash": GENESIS}
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(
            postgresql.insert(heads)
            .values(values)
            .on_conflict_do_nothing(index_elements=["tenant"])
        )
    elif dialect == "sqlite":
        conn.execute(
            sqlite.insert(heads).values(values).on_conflict_do_nothing(index_elements=["tenant"])
        )
    else:  # pragma: no cover - the two databases the project supports
        raise RuntimeError(f"unsupported database {dialect!r}")


def chain_rows(
    tenant: str,
    seq: int,
    prev: str,
    events: Sequence[tuple[str, str | None, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """``audit_events`` rows for ``events``, chained on from the head (``seq``, ``prev``)."""
    rows: list[dict[str, Any]] = []
    now = utcnow()  # one transaction, one time
    at, name = _CANONICAL.encode(now.isoformat()), _CANONICAL.encode(tenant)
    encoded: dict[int, str] = {}  # by id(data): a dict shared by many events is encoded once
    for type_, job_id, data in events:
        seq += 1
        text = encoded.get(id(data))
        if text is None:
            text = _CANONICAL.encode(data)
            if len(events) > 1:
                encoded[id(data)] = text
        row: dict[str, Any] = {
            "tenant": tenant,
            "seq": seq,
            "job_id": job_id,
            "type": type_,
            "at": now,
            "data": text,
            "prev_hash": prev,
        }
        row["hash"] = prev = _new_row_hash(row, at, name)
        rows.append(row)
    return rows


JOBS = "jobs"
"""The ``data`` key of an event that covers several jobs (no ``job_id`` of its own):
a list of objects, each with a ``job_id``. Each job named there is linked to the
event in ``audit_job_links``, so its trail finds the event by index."""


def link_rows(
    tenant: str,
    rows: Sequence[dict[str, Any]],
    events: Sequence[tuple[str, str | None, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """``audit_job_links`` rows for the events among ``events`` (chained as ``rows``)
    that name several jobs in ``data[JOBS]``."""
    links: list[dict[str, Any]] = []
    for row, (_, job_id, data) in zip(rows, events, strict=True):
        jobs = data.get(JOBS) if job_id is None else None
        if jobs:
            seq = row["seq"]
            links += [{"job_id": job["job_id"], "tenant": tenant, "seq": seq} for job in jobs]
    return links


def job_trail(session: Session, tenant: str, job_id: str) -> list[AuditEvent]:
    """``job_id``'s events in chain order: its own and those linked to it (a batch's).

    Two indexed reads: its own events by the job index (the tenant checked
    here: with it in the filter SQLite walked the tenant's chain on its tenant
    index), the linked ones by (tenant, seq) from the link key.
    """
    own = session.execute(select(AuditEvent).where(AuditEvent.job_id == job_id)).scalars()
    linked = select(AuditJobLink.seq).where(
        AuditJobLink.job_id == job_id, AuditJobLink.tenant == tenant
    )
    shared = session.execute(
        select(AuditEvent).where(AuditEvent.tenant == tenant, col(AuditEvent.seq).in_(linked))
    ).scalars()
    events = [e for e in own if e.tenant == tenant] + list(shared)
    return sorted(events, key=lambda e: e.seq)


def verify_chain(session: Session, tenant: str) -> int | None:
    """Return the seq of the first bad event of ``tenant``'s chain, or None if intact."""
    return verify(session, tenant).first_bad_seq


PAYLOAD_AAD = b"audit-payload"


def sealed_payload(sealer: Sealer, data: Any) -> dict[str, Any]:
    """Seal a sensitive value (a prompt, a model response) for an event's ``data``.

    The event's hash covers the ciphertext, so the sealed value cannot be
    swapped unnoticed; the key id lets :func:`open_payload` find the key.
    """
    blob = sealer.seal(canonical({"v": data}), PAYLOAD_AAD)
    key_id = blob[2 : 2 + blob[1]].decode()
    return {"alg": "A256GCM", "key_id": key_id, "sealed": base64.b64encode(blob).decode()}


def open_payload(sealer: Sealer, payload: dict[str, Any]) -> Any:
    blob = base64.b64decode(payload["sealed"])
    return json.loads(sealer.open(blob, PAYLOAD_AAD))["v"]


def reveal(sealer: Sealer, data: Any) -> Any:
    """``data`` with every sealed payload in it opened (for the audit role, on request)."""
    if isinstance(data, dict):
        if set(data) == {"alg", "key_id", "sealed"}:
            return open_payload(sealer, data)
        return {k: reveal(sealer, v) for k, v in data.items()}
    if isinstance(data, list):
        return [reveal(sealer, v) for v in data]
    return data


def _checkpoint_message(tenant: str, seq: int, hash_: str, kind: str) -> str:
    return f"{tenant}|{seq}|{hash_}|{kind}"


def sign_checkpoint(sealer: Sealer, tenant: str, seq: int, hash_: str, kind: str) -> str:
    """HMAC-SHA256 under the server's token key: only the gateway can make one."""
    return sealer.token("audit-checkpoint", _checkpoint_message(tenant, seq, hash_, kind))


def checkpoint(
    session: Session, sealer: Sealer, tenant: str, min_new_events: int = 1
) -> AuditCheckpoint | None:
    """Sign the tenant's chain head; None when fewer than ``min_new_events`` came since."""
    head = session.get(AuditHead, tenant)
    if head is None or head.last_seq == 0:
        return None
    signed = session.execute(
        select(func.max(AuditCheckpoint.seq)).where(AuditCheckpoint.tenant == tenant)
    ).scalar_one_or_none()
    if head.last_seq - (signed or 0) < min_new_events:
        return None
    row = AuditCheckpoint(
        tenant=tenant,
        seq=head.last_seq,
        hash=head.last_hash,
        kind="periodic",
        signature=sign_checkpoint(sealer, tenant, head.last_seq, head.last_hash, "periodic"),
    )
    session.add(row)
    return row


@dataclass(frozen=True)
class Verdict:
    """What ``audit verify`` found for one tenant."""

    tenant: str
    events: int
    checkpoints: int
    first_bad_seq: int | None = None
    first_bad_id: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def tenants(session: Session) -> list[str]:
    rows = session.execute(select(AuditHead.tenant).order_by(col(AuditHead.tenant))).scalars()
    return list(rows)


def verify(session: Session, tenant: str, sealer: Sealer | None = None) -> Verdict:
    """Walk ``tenant``'s chain from its genesis (or purge anchor) to its head.

    Names the first bad event: an edit breaks its own hash; a deletion leaves
    a gap in ``seq``; an insertion shows as an event its successor does not
    link to; reordering changes ``seq``, which the hash covers. Checkpoints
    (signatures checked when ``sealer`` is given) and the head row catch
    truncation and appends made behind the gateway's back.
    """
    marks = list(
        session.execute(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.tenant == tenant)
            .order_by(col(AuditCheckpoint.seq), col(AuditCheckpoint.id))
        ).scalars()
    )

    def bad(seq: int | None, reason: str, row_id: int | None = None, n: int = 0) -> Verdict:
        return Verdict(tenant, n, len(marks), seq, row_id, reason)

    if sealer is not None:
        for mark in marks:
            expected = sign_checkpoint(sealer, tenant, mark.seq, mark.hash, mark.kind)
            if not hmac.compare_digest(expected, mark.signature):
                return bad(mark.seq, f"checkpoint {mark.id} has an invalid signature")
    anchors = [m for m in marks if m.kind == "anchor"]
    anchor = anchors[-1] if anchors else None
    prev, expected_seq = (anchor.hash, anchor.seq + 1) if anchor else (GENESIS, 1)
    pinned = {m.seq: m.hash for m in marks if m.seq >= expected_seq}
    seen: dict[str, int] = {prev: expected_seq - 1}
    count = 0
    events = session.execute(
        select(AuditEvent)
        .where(AuditEvent.tenant == tenant)
        .where(col(AuditEvent.seq) >= expected_seq)
        .order_by(col(AuditEvent.seq), col(AuditEvent.id))
    ).scalars()
    for event in events:
        if event.seq > expected_seq:
            return bad(expected_seq, f"event {expected_seq} is missing (deleted)", n=count)
        if event.seq < expected_seq:
            return bad(event.seq, "duplicate sequence number (inserted)", event.id, count)
        if event.prev_hash != prev and event.prev_hash in seen:
            first = seen[event.prev_hash] + 1
            reason = f"events {first}..{event.seq - 1} are not in the chain (inserted)"
            return bad(first, reason, n=count)
        if event_hash(event) != event.hash:
            return bad(event.seq, "content does not match its hash (edited)", event.id, count)
        if event.prev_hash != prev:
            reason = "its successor records another hash (edited and rehashed, or reordered)"
            return bad(event.seq - 1, reason, n=count)
        if event.seq in pinned and pinned[event.seq] != event.hash:
            return bad(event.seq, "differs from a signed checkpoint (rewritten)", event.id, count)
        prev, expected_seq, count = event.hash, expected_seq + 1, count + 1
        seen[prev] = event.seq
    last = expected_seq - 1
    beyond = [seq for seq in pinned if seq > last]
    if beyond:
        return bad(last + 1, f"events {last + 1}..{max(beyond)} are missing (truncated)", n=count)
    head = session.get(AuditHead, tenant)
    if head is not None and (head.last_seq, head.last_hash) != (last, prev):
        if head.last_seq > last:
            return bad(
                last + 1, f"events {last + 1}..{head.last_seq} are missing (truncated)", n=count
            )
        return bad(
            head.last_seq + 1 if head.last_seq < last else last,
            "chain does not end at the recorded head (appended behind the gateway or head edited)",
            n=count,
        )
    return Verdict(tenant, count, len(marks))


def purge_before(session: Session, sealer: Sealer, tenant: str, before: datetime) -> int:
    """Drop ``tenant``'s events older than ``before``, anchoring the rest.

    A signed 'anchor' checkpoint records the last dropped event's hash, so the
    first kept event still links to something the verifier trusts.
    """
    verdict = verify(session, tenant, sealer)
    if not verdict.ok:
        raise ValueError(f"refusing to purge a broken chain: {verdict.reason}")
    last = session.execute(
        select(AuditEvent)
        .where(AuditEvent.tenant == tenant)
        .where(col(AuditEvent.at) < before)
        .order_by(col(AuditEvent.seq).desc())
        .limit(1)
    ).scalar_one_or_none()
    if last is None:
        return 0
    session.add(
        AuditCheckpoint(
            tenant=tenant,
            seq=last.seq,
            hash=last.hash,
            kind="anchor",
            signature=sign_checkpoint(sealer, tenant, last.seq, last.hash, "anchor"),
        )
    )
    result = session.execute(
        delete(AuditEvent)
        .where(col(AuditEvent.tenant) == tenant)
        .where(col(AuditEvent.seq) <= last.seq)
    )
    session.execute(
        delete(AuditJobLink)
        .where(col(AuditJobLink.tenant) == tenant)
        .where(col(AuditJobLink.seq) <= last.seq)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def export_rows(
    session: Session,
    tenant: str | None = None,
    *,
    job_id: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEvent]:
    """Events matching the filters, in chain order (tenant, seq)."""
    from sluicegate.core.tables import Job

    query = select(AuditEvent).order_by(col(AuditEvent.tenant), col(AuditEvent.seq))
    if tenant is not None:
        query = query.where(AuditEvent.tenant == tenant)
    links = AuditJobLink.__table__  # type: ignore[attr-defined]

    def linked(jobs: Any) -> Any:
        """The event names one of ``jobs`` in its ``data[JOBS]`` (a batch event)."""
        return exists().where(
            links.c.tenant == AuditEvent.tenant,
            links.c.seq == AuditEvent.seq,
            links.c.job_id.in_(jobs),
        )

    if job_id is not None:  # by the job index and the link key, not by reading the chain
        own = select(AuditEvent.id).where(AuditEvent.job_id == job_id)
        shared = select(AuditEvent.id).join(
            links,
            (links.c.tenant == AuditEvent.tenant) & (links.c.seq == AuditEvent.seq),
        )
        shared = shared.where(links.c.job_id == job_id)
        query = query.where(col(AuditEvent.id).in_(union_all(own, shared)))
    if channel is not None:
        jobs = select(Job.id).where(Job.channel == channel)
        query = query.where(or_(col(AuditEvent.job_id).in_(jobs), linked(jobs)))
    if since is not None:
        query = query.where(col(AuditEvent.at) >= since)
    if until is not None:
        query = query.where(col(AuditEvent.at) < until)
    return list(session.execute(query).scalars())


def event_view(event: AuditEvent) -> dict[str, Any]:
    """One event as exported: everything needed to re-check its hash."""
    return {
        "id": event.id,
        "tenant": event.tenant,
        "seq": event.seq,
        "job_id": event.job_id,
        "type": event.type,
        "at": event.at.isoformat(),
        "data": json.loads(event.data),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


_DICOM_AUDIT = "http://dicom.nema.org/resources/ontology/DCM"
_SUBTYPES = "https://sluicegate.dev/fhir/CodeSystem/audit-event"
_OUTCOMES = {"failed": "8", "dead": "8", "guard_blocked": "4", "auth_failed": "4"}
_ACTIONS = {"received": "C", "delivered": "R", "written_back": "C", "key_revoked": "D"}


def fhir_audit_event(event: AuditEvent) -> dict[str, Any]:
    """The event as a FHIR R4B AuditEvent; sealed payloads are left out, hashes kept."""
    security = event.type in ("auth_failed", "access_denied") or event.type.startswith("key_")
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"{event.tenant}-{event.seq}".replace("_", "-")[:64],
        "type": {
            "system": _DICOM_AUDIT,
            "code": "110113" if security else "110100",
            "display": "Security Alert" if security else "Application Activity",
        },
        "subtype": [{"system": _SUBTYPES, "code": event.type}],
        "action": _ACTIONS.get(event.type, "E"),
        "recorded": event.at.isoformat(),
        "outcome": _OUTCOMES.get(event.type, "0"),
        "agent": [
            {
                "type": {"text": "gateway"},
                "who": {"display": "sluicegate"},
                "requestor": False,
            }
        ],
        "source": {"site": event.tenant, "observer": {"display": "sluicegate"}},
        "entity": [
            {
                "what": {"identifier": {"system": _SUBTYPES + "/chain", "value": event.hash}},
                "description": f"seq {event.seq}, prev {event.prev_hash}",
            }
        ],
    }
    jobs = [event.job_id] if event.job_id else _named_jobs(event)
    resource["entity"] += [
        {"what": {"identifier": {"system": _SUBTYPES + "/job", "value": job}}} for job in jobs
    ]
    return resource


def _named_jobs(event: AuditEvent) -> list[str]:
    """The jobs an event without a ``job_id`` covers (a bulk batch's), if any."""
    if f'"{JOBS}":' not in event.data:
        return []
    data = json.loads(event.data)
    return [str(job["job_id"]) for job in data.get(JOBS) or []]
