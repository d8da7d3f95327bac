"""Produced resources that clients read by id and search, stored sealed.

An adapter may publish what a job produced (a FHIR DiagnosticReport and its
Provenance, say). The body is sealed like every result; search values are
kept only as keyed hashes (:meth:`Sealer.token`), so a patient identifier can
be searched for exactly without being stored in plaintext. Written in the same
transaction that marks the job succeeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlmodel import Session, col, select

from sluicegate.core.crypto import Sealer
from sluicegate.core.interfaces import Publication
from sluicegate.core.tables import PublishedResource, SearchToken, new_id, utcnow


@dataclass(frozen=True)
class Found:
    resource_type: str
    resource_id: str
    job_id: str
    last_updated: datetime
    body: bytes


def _aad(tenant: str, resource_type: str, resource_id: str) -> bytes:
    return f"published:{tenant}:{resource_type}/{resource_id}".encode()


def _token(sealer: Sealer, resource_type: str, param: str, value: str) -> str:
    return sealer.token(f"{resource_type}.{param}", value)


def store(
    session: Session, sealer: Sealer, tenant: str, job_id: str, publications: Sequence[Publication]
) -> None:
    """Publish resources inside the caller's (ORM) transaction."""
    session.flush()  # the job row they reference goes first
    insert_many(session.connection(), sealer, [(tenant, job_id, publications)], utcnow())


def insert_many(
    conn: Connection,
    sealer: Sealer,
    entries: Sequence[tuple[str, str, Sequence[Publication]]],
    now: datetime,
) -> None:
    """Publish the resources of several jobs, (tenant, job id, publications) each, in
    two statements on the caller's connection and transaction (ids are made here,
    so tokens need no flush to learn their resource's id)."""
    resources: list[dict[str, Any]] = []
    tokens: list[dict[str, Any]] = []
    for tenant, job_id, publications in entries:
        for pub in publications:
            row_id = new_id()
            aad = _aad(tenant, pub.resource_type, pub.resource_id)
            resources.append(
                {
                    "id": row_id,
                    "tenant": tenant,
                    "job_id": job_id,
                    "resource_type": pub.resource_type,
                    "resource_id": pub.resource_id,
                    "last_updated": now,
                    "sealed_body": sealer.seal(pub.body, aad),
                }
            )
            for param, values in pub.search.items():
                for value in sorted(set(values)):
                    token = _token(sealer, pub.resource_type, param, value)
                    tokens.append({"published_id": row_id, "param": param, "token": token})
    if resources:
        conn.execute(insert(PublishedResource.__table__), resources)  # type: ignore[attr-defined]
    if tokens:
        conn.execute(insert(SearchToken.__table__), tokens)  # type: ignore[attr-defined]


def _found(sealer: Sealer, row: PublishedResource) -> Found:
    body = sealer.open(row.sealed_body, _aad(row.tenant, row.resource_type, row.resource_id))
    return Found(row.resource_type, row.resource_id, row.job_id, row.last_updated, body)


def read(
    engine: Engine, sealer: Sealer, tenant: str, resource_type: str, resource_id: str
) -> Found | None:
    with Session(engine) as session:
        row = session.exec(
            select(PublishedResource).where(
                PublishedResource.tenant == tenant,
                PublishedResource.resource_type == resource_type,
                PublishedResource.resource_id == resource_id,
            )
        ).first()
        return None if row is None else _found(sealer, row)


def search(
    engine: Engine,
    sealer: Sealer,
    tenant: str,
    resource_type: str,
    *,
    equals: dict[str, list[str]] | None = None,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
    limit: int = 100,
) -> list[Found]:
    """Resources matching every parameter (any of its values), newest first.

    ``updated_after`` is inclusive, ``updated_before`` exclusive.
    """
    query = select(PublishedResource).where(
        PublishedResource.tenant == tenant, PublishedResource.resource_type == resource_type
    )
    for param, values in (equals or {}).items():
        tokens = [_token(sealer, resource_type, param, v) for v in values]
        matching = select(SearchToken.published_id).where(
            SearchToken.param == param, col(SearchToken.token).in_(tokens)
        )
        query = query.where(col(PublishedResource.id).in_(matching))
    if updated_after is not None:
        query = query.where(col(PublishedResource.last_updated) >= updated_after)
    if updated_before is not None:
        query = query.where(col(PublishedResource.last_updated) < updated_before)
    query = query.order_by(col(PublishedResource.last_updated).desc()).limit(limit)
    with Session(engine) as session:
        return [_found(sealer, row) for row in session.exec(query).all()]
