"""Database tables (SQLModel). Schema changes go through Alembic migrations.

Timestamps are timezone-aware UTC (SQLModel's UTCDateTime restores the zone
on SQLite, which stores none). Domain payloads and results are stored sealed (AES-GCM,
see :mod:`sluicegate.core.crypto`), never as plaintext.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD)


class WorkItemRow(SQLModel, table=True):
    """A parsed unit of work; ``sealed`` holds payload, prompt inputs and identifiers."""

    __tablename__ = "work_items"
    __table_args__ = (UniqueConstraint("tenant", "idempotency_key", name="uq_work_item_idem"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant: str = Field(index=True, max_length=64)
    channel: str = Field(max_length=64)
    adapter: str = Field(max_length=64)
    task: str = Field(max_length=64)
    source_ref: str = Field(max_length=512)
    idempotency_key: str = Field(max_length=128)
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Job(SQLModel, table=True):
    """The life of one work item through the pipeline.

    ``due_at`` is when the relay's sweeper must act if nothing else happened:
    for a queued job, re-publish it (message lost, or retry backoff over); for
    a running job, the lease expiry after which its worker is presumed lost.
    ``not_before`` holds back a retry until its backoff has passed.
    ``external_location`` is where the sender's own system filed the result
    (the ``Location`` of a write-back), once written back.
    """

    __tablename__ = "jobs"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    work_item_id: str = Field(foreign_key="work_items.id", index=True, max_length=36)
    tenant: str = Field(index=True, max_length=64)
    channel: str = Field(max_length=64)
    task: str = Field(max_length=64)
    status: str = Field(default=JobStatus.QUEUED.value, index=True, max_length=16)
    attempts: int = 0
    max_attempts: int = 3
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    due_at: datetime | None = Field(default=None, index=True)
    not_before: datetime | None = None
    external_location: str | None = Field(default=None, max_length=2048)


class Result(SQLModel, table=True):
    """The rendered output of a succeeded job: exactly one per job."""

    __tablename__ = "results"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    job_id: str = Field(foreign_key="jobs.id", unique=True, max_length=36)
    media_type: str = Field(max_length=128)
    sealed_body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    backend_id: str = Field(max_length=64)
    model: str = Field(max_length=128)
    zone: str = Field(max_length=16)
    finish_reason: str | None = Field(default=None, max_length=32)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    model_version: str | None = Field(default=None, max_length=64)
    prompt_cache_hit_tokens: int | None = None
    prompt_cache_miss_tokens: int | None = None
    from_cache: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow)


class VaultRow(SQLModel, table=True):
    """A job's pseudonym vault (surrogate -> original), sealed; it never leaves on-prem.

    Written before any de-identified text is sent out, so the draft that comes
    back can be re-identified even by a later attempt or another worker.
    """

    __tablename__ = "vaults"

    job_id: str = Field(foreign_key="jobs.id", primary_key=True, max_length=36)
    tenant: str = Field(index=True, max_length=64)
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Hl7Context(SQLModel, table=True):
    """What HL7 v2 traffic taught about a patient (ADT) or a pending order (ORM/OMI).

    ``key`` is a keyed hash of the patient identifier or order number, never the
    value; ``sealed`` holds the identifiers or order details, encrypted.
    """

    __tablename__ = "hl7_context"
    __table_args__ = (UniqueConstraint("tenant", "kind", "key", name="uq_hl7_context_key"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    key: str = Field(max_length=128)
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class FinanceIdempotencyKey(SQLModel, table=True):
    """A finance sender's ``Idempotency-Key`` (stored as its SHA-256) and what it named.

    The report's natural key is the work item's idempotency key; this row adds
    the header's own rule: the same header with different content is a 409.
    """

    __tablename__ = "finance_idempotency_keys"

    tenant: str = Field(primary_key=True, max_length=64)
    key_hash: str = Field(primary_key=True, max_length=64)
    job_id: str = Field(foreign_key="jobs.id", max_length=36)
    content_digest: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class OutboxMessage(SQLModel, table=True):
    """A message to publish to the broker, committed with the state change it announces."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="jobs.id", index=True, max_length=36)
    created_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = Field(default=None, index=True)
    publish_attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class WebhookDelivery(SQLModel, table=True):
    """One callback owed to a webhook receiver, with its retry and dead-letter state."""

    __tablename__ = "webhook_deliveries"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    job_id: str = Field(foreign_key="jobs.id", index=True, max_length=36)
    channel: str = Field(default="", max_length=64)
    event: str = Field(default="", max_length=32)
    url: str = Field(max_length=2048)
    status: str = Field(default="pending", index=True, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class AuditHead(SQLModel, table=True):
    """The tip of each tenant's hash chain; locking it serialises appends."""

    __tablename__ = "audit_heads"

    tenant: str = Field(primary_key=True, max_length=64)
    last_seq: int = 0
    last_hash: str = Field(max_length=64)


class AuditEvent(SQLModel, table=True):
    """One append-only, hash-chained record of a step. ``data`` never holds PHI."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("tenant", "seq", name="uq_audit_tenant_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(index=True, max_length=64)
    seq: int
    job_id: str | None = Field(default=None, index=True, max_length=36)
    type: str = Field(max_length=32)
    at: datetime = Field(default_factory=utcnow)
    data: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditJobLink(SQLModel, table=True):
    """Names a job in an event that covers several (a bulk batch's one ``received``).

    Keyed by job first, so a job's trail finds its batch event by index, not by
    reading event text; the event itself (``tenant``, ``seq``) stays in the chain.
    """

    __tablename__ = "audit_job_links"
    # On SQLite the key is the table (one B-tree per row written, not two).
    __table_args__ = {"sqlite_with_rowid": False}

    job_id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement of a tenant's chain head at ``seq``; kind 'anchor' survives a purge."""

    __tablename__ = "audit_checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(index=True, max_length=64)
    seq: int
    hash: str = Field(max_length=64)
    kind: str = Field(default="periodic", max_length=16)
    at: datetime = Field(default_factory=utcnow)
    signature: str = Field(max_length=128)


class ApiKey(SQLModel, table=True):
    """An API key: only its keyed hash is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(index=True, max_length=64)
    name: str = Field(default="", max_length=128)
    roles: str = Field(max_length=128)
    key_hash: str = Field(unique=True, max_length=64)
    allow_from: str = Field(default="", max_length=1024)  # CIDRs, comma-separated; "" = any
    channels: str = Field(default="", max_length=1024)  # channel names; "" = all of the tenant
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class PublishedResource(SQLModel, table=True):
    """A produced resource clients may read by id (body sealed)."""

    __tablename__ = "published_resources"
    __table_args__ = (
        UniqueConstraint("tenant", "resource_type", "resource_id", name="uq_published_logical_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    tenant: str = Field(index=True, max_length=64)
    job_id: str = Field(foreign_key="jobs.id", index=True, max_length=36)
    resource_type: str = Field(max_length=64)
    resource_id: str = Field(max_length=64)
    last_updated: datetime = Field(default_factory=utcnow, index=True)
    sealed_body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SearchToken(SQLModel, table=True):
    """A keyed hash of one search-parameter value of a published resource."""

    __tablename__ = "search_tokens"

    id: int | None = Field(default=None, primary_key=True)
    published_id: str = Field(foreign_key="published_resources.id", index=True, max_length=36)
    param: str = Field(max_length=64)
    token: str = Field(index=True, max_length=64)
