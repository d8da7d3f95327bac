"""Durable accept for finance items, with the 409 rules core does not know about.

Two keys guard a report. Its natural key (entity, period, version) is the work
item's idempotency key, so core's ``accept`` answers a re-post with the
original job; finance also refuses the *same key with different content*, by
comparing content digests. A sender's ``Idempotency-Key`` header is recorded
beside the job (as a hash) and obeys the same rule on its own.

Two ways in:

- :func:`accept_all` — one request's reports (a single report, a CSV upload, a
  multi-statement file): all or nothing. The digest comparisons and the header
  rows run inside core's accept transaction, so a conflict anywhere rolls back
  every report of the request and raises :class:`Conflict` naming it.
- :func:`accept_lines` — a bulk batch: each line stands alone, so a conflicting
  line is answered ``conflict`` while the other lines are stored (a conflicting
  line itself stores nothing: core only stores new keys).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, insert
from sqlmodel import Session, col, select

from sluicegate.core.crypto import Sealer
from sluicegate.core.ingest import Accepted, Item, accept, work_item_aad
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.tables import FinanceIdempotencyKey, WorkItemRow, utcnow


@dataclass(frozen=True)
class Outcome:
    status: Literal["accepted", "duplicate", "conflict"]
    job_id: str


class Conflict(Exception):
    """A report of an all-or-nothing request reuses a key with different content.

    ``index`` is the report's position in the request, ``job_id`` the job the key
    already names. Nothing of the request was stored.
    """

    def __init__(self, index: int, job_id: str) -> None:
        super().__init__(f"report {index} conflicts with job {job_id}")
        self.index = index
        self.job_id = job_id


class _Raced(Exception):
    """A concurrent request recorded the same header first; start over to answer as it did."""


def key_hash(header: str) -> str:
    return hashlib.sha256(header.encode()).hexdigest()


def _digests(items: Sequence[Item], given: Sequence[str] | None) -> list[str]:
    """Each item's content digest: ``given`` (encoded items carry none), else its payload's."""
    if given is not None:
        if len(given) != len(items):
            raise ValueError("one content digest per item")
        return list(given)
    return [_digest(item) for item in items]


def _digest(item: Item) -> str:
    if not isinstance(item, WorkItem):
        raise TypeError("an encoded item's content digest must be passed beside it")
    return str(item.payload.get("content_digest"))


def _stored_digests(
    conn: Connection | Session, sealer: Sealer, tenant: str, keys: set[str]
) -> dict[str, str | None]:
    """Content digest of the stored item for each natural key (first stored wins)."""
    rows = conn.execute(
        select(col(WorkItemRow.id), col(WorkItemRow.sealed), col(WorkItemRow.idempotency_key))
        .where(
            col(WorkItemRow.tenant) == tenant,
            col(WorkItemRow.idempotency_key).in_(keys),
        )
        .order_by(col(WorkItemRow.created_at))
    ).all()
    found: dict[str, str | None] = {}
    for row_id, sealed, key in rows:
        if key not in found:
            fields = json.loads(sealer.open(sealed, work_item_aad(row_id)))
            digest = fields["payload"].get("content_digest")
            found[key] = str(digest) if digest is not None else None
    return found


def _header_rows(
    conn: Connection | Session, tenant: str, hashes: set[str]
) -> dict[str, FinanceIdempotencyKey]:
    if not hashes:
        return {}
    table = FinanceIdempotencyKey.__table__  # type: ignore[attr-defined]
    rows = conn.execute(
        select(table).where(table.c.tenant == tenant, table.c.key_hash.in_(hashes))
    ).all()
    return {row.key_hash: FinanceIdempotencyKey.model_construct(**row._mapping) for row in rows}


def _by_header(row: FinanceIdempotencyKey, digest: str) -> Outcome:
    return Outcome("duplicate" if row.content_digest == digest else "conflict", row.job_id)


def accept_all(
    engine: Engine,
    sealer: Sealer,
    adapter: str,
    items: Sequence[Item],
    *,
    max_attempts: int,
    lease_s: float,
    header_keys: list[str | None] | None = None,
    digests: Sequence[str] | None = None,
) -> list[Outcome]:
    """Store every new item of one request, or none: raises :class:`Conflict` on a 409.

    The outcomes are ``accepted`` or ``duplicate`` (never ``conflict``).
    ``digests`` are the items' content digests when they are :class:`Encoded`.
    """
    keys = header_keys or [None] * len(items)
    sums = _digests(items, digests)
    for _ in range(3):
        try:
            return _accept_all(engine, sealer, adapter, items, sums, keys, max_attempts, lease_s)
        except _Raced:
            continue
    raise RuntimeError("Idempotency-Key kept changing hands; retry the request")


def _accept_all(
    engine: Engine,
    sealer: Sealer,
    adapter: str,
    items: Sequence[Item],
    digests: list[str],
    keys: list[str | None],
    max_attempts: int,
    lease_s: float,
) -> list[Outcome]:
    if not items:
        return []
    tenant = items[0].tenant
    if any(item.tenant != tenant for item in items):
        raise ValueError("one request's reports share a tenant")
    hashed = [key_hash(k) if k else None for k in keys]
    with Session(engine) as session:
        seen = _header_rows(session, tenant, {h for h in hashed if h})
    outcomes: dict[int, Outcome] = {}
    pending: list[int] = []
    for index, header in enumerate(hashed):
        if header is not None and header in seen:
            outcome = _by_header(seen[header], digests[index])
            if outcome.status == "conflict":
                raise Conflict(index, outcome.job_id)  # nothing stored yet
            outcomes[index] = outcome
        else:
            pending.append(index)

    def within(conn: Connection, accepted: list[Accepted]) -> None:
        """Inside the accept transaction: refuse on any conflict, else record the headers."""
        pairs = list(zip(pending, accepted, strict=True))
        reposted = {items[i].idempotency_key for i, a in pairs if not a.created}
        stored = _stored_digests(conn, sealer, tenant, reposted) if reposted else {}
        for index, result in pairs:
            item = items[index]
            if not result.created and stored.get(item.idempotency_key) != digests[index]:
                raise Conflict(index, result.job_id)
        headers = {hashed[i] for i in pending if hashed[i]}
        recorded = _header_rows(conn, tenant, {h for h in headers if h})
        for index, result in pairs:
            header = hashed[index]
            if header is None:
                continue
            row = recorded.get(header)
            if row is None:
                conn.execute(
                    insert(FinanceIdempotencyKey.__table__),  # type: ignore[attr-defined]
                    {
                        "tenant": tenant,
                        "key_hash": header,
                        "job_id": result.job_id,
                        "content_digest": digests[index],
                        "created_at": utcnow(),
                    },
                )
            elif row.job_id != result.job_id:
                if row.content_digest != digests[index]:
                    raise Conflict(index, row.job_id)
                raise _Raced  # recorded since our first look: answer with its job

    done = (
        accept(
            engine,
            sealer,
            adapter,
            [items[i] for i in pending],
            max_attempts=max_attempts,
            lease_s=lease_s,
            within=within,
        )
        if pending
        else []
    )
    for index, result in zip(pending, done, strict=True):
        outcomes[index] = Outcome("accepted" if result.created else "duplicate", result.job_id)
    return [outcomes[i] for i in range(len(items))]


def accept_lines(
    engine: Engine,
    sealer: Sealer,
    adapter: str,
    items: Sequence[Item],
    digests: Sequence[str] | None = None,
    *,
    max_attempts: int,
    lease_s: float,
) -> list[Outcome]:
    """Store a bulk batch's new items (one transaction, one ``received`` audit event
    naming each new job and its content digest), then sort its re-posts into
    duplicates and conflicts (one query for the batch), each line on its own.

    ``digests`` are the items' content digests when they are :class:`Encoded`.
    """
    sums = _digests(items, digests)
    stored = accept(
        engine,
        sealer,
        adapter,
        items,
        max_attempts=max_attempts,
        lease_s=lease_s,
        expect_new=True,
        batch_digests=sums,  # one audit event for the batch, naming each job
    )
    reposted: dict[str, set[str]] = {}
    for item, result in zip(items, stored, strict=True):
        if not result.created:
            reposted.setdefault(item.tenant, set()).add(item.idempotency_key)
    digests_found: dict[tuple[str, str], str | None] = {}
    if reposted:
        with Session(engine) as session:
            for tenant, keys in reposted.items():
                found = _stored_digests(session, sealer, tenant, keys)
                digests_found.update({(tenant, key): d for key, d in found.items()})
    outcomes: list[Outcome] = []
    for item, digest, result in zip(items, sums, stored, strict=True):
        if result.created:
            outcomes.append(Outcome("accepted", result.job_id))
        else:
            same = digests_found.get((item.tenant, item.idempotency_key)) == digest
            outcomes.append(Outcome("duplicate" if same else "conflict", result.job_id))
    return outcomes
