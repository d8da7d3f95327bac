"""A bulk batch's one audit event: it names each job, each job's trail and export
find it by index, FHIR export and purge handle it, and the chain stays whole."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from sqlmodel import Session, col, select

from sluicegate.core import audit
from sluicegate.core.crypto import Sealer
from sluicegate.core.db import transaction
from sluicegate.core.ingest import accept
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.tables import AuditEvent, AuditJobLink

SEALER = Sealer({"k": bytes(32)}, "k")


def item(key: str, tenant: str = "t1", channel: str = "finance") -> WorkItem:
    return WorkItem(
        tenant=tenant,
        channel=channel,
        task="financial_summary",
        source_ref=f"finance-report:{key}",
        idempotency_key=key,
        payload={"content_digest": f"digest-{key}"},
        prompt_inputs={},
        identifiers={},
        sender="key-1",
    )


def put(engine: sa.Engine, items: list[WorkItem]) -> list[str]:
    accepted = accept(
        engine,
        SEALER,
        "finance",
        items,
        max_attempts=3,
        lease_s=60,
        expect_new=True,
        batch_digests=[f"digest-{i.idempotency_key}" for i in items],
    )
    return [a.job_id for a in accepted]


def events(engine: sa.Engine) -> list[AuditEvent]:
    with Session(engine) as s:
        query = select(AuditEvent).order_by(col(AuditEvent.tenant), col(AuditEvent.seq))
        return list(s.exec(query).all())


def trail(engine: sa.Engine, tenant: str, job_id: str) -> list[AuditEvent]:
    with Session(engine) as s:
        return audit.job_trail(s, tenant, job_id)


def test_one_event_per_tenant_names_each_new_job(migrated_engine: sa.Engine) -> None:
    """On SQLite and on PostgreSQL's one-statement path."""
    engine = migrated_engine
    a, b, c = put(engine, [item("a"), item("b"), item("c", tenant="t2")])
    stored = events(engine)
    assert [(e.tenant, e.type, e.job_id) for e in stored] == [
        ("t1", "received", None),
        ("t2", "received", None),
    ]
    data = json.loads(stored[0].data)
    assert data["validated"] == 2 and data["channel"] == "finance" and data["sender"] == "key-1"
    assert data["jobs"] == [
        {"job_id": a, "digest": "digest-a", "source_ref": "finance-report:a"},
        {"job_id": b, "digest": "digest-b", "source_ref": "finance-report:b"},
    ]
    assert [j["job_id"] for j in json.loads(stored[1].data)["jobs"]] == [c]
    with Session(engine) as s:
        assert audit.verify_chain(s, "t1") is None and audit.verify_chain(s, "t2") is None
        links = s.exec(select(AuditJobLink)).all()
    assert sorted((x.tenant, x.job_id, x.seq) for x in links) == sorted(
        [("t1", a, 1), ("t1", b, 1), ("t2", c, 1)]
    )
    # Each job's trail: the batch event, then its own events; never another tenant's.
    with transaction(engine) as session:
        audit.record(session, "t1", "started", b)
    assert [(e.seq, e.job_id) for e in trail(engine, "t1", b)] == [(1, None), (2, b)]
    assert [e.seq for e in trail(engine, "t1", a)] == [1]
    assert trail(engine, "t1", c) == []
    assert [e.tenant for e in trail(engine, "t2", c)] == ["t2"]


def test_a_batch_with_stored_items_names_only_the_new_jobs(migrated_engine: sa.Engine) -> None:
    engine = migrated_engine
    [a] = put(engine, [item("a")])
    again = put(engine, [item("d"), item("a")])
    assert again[1] == a
    stored = events(engine)
    assert len(stored) == 2
    assert [j["job_id"] for j in json.loads(stored[1].data)["jobs"]] == [again[0]]
    assert [e.seq for e in trail(engine, "t1", a)] == [1]
    assert put(engine, [item("a")]) == [a] and len(events(engine)) == 2  # nothing new: no event
    with Session(engine) as s:
        assert audit.verify_chain(s, "t1") is None


def test_jobs_of_several_channels_are_named_with_their_own(migrated_engine: sa.Engine) -> None:
    engine = migrated_engine
    a, b = put(engine, [item("a"), item("b", channel="ledger")])
    [event] = events(engine)
    data = json.loads(event.data)
    assert "channel" not in data
    assert [(j["job_id"], j["channel"]) for j in data["jobs"]] == [(a, "finance"), (b, "ledger")]


def test_one_digest_per_item() -> None:
    with pytest.raises(ValueError, match="one content digest per item"):
        accept(
            sa.create_engine("sqlite://"),
            SEALER,
            "finance",
            [item("a")],
            max_attempts=3,
            lease_s=60,
            batch_digests=[],
        )


def test_export_finds_the_batch_event_by_job_and_channel(migrated_engine: sa.Engine) -> None:
    engine = migrated_engine
    a, b = put(engine, [item("a"), item("b")])
    with transaction(engine) as session:
        audit.record(session, "t1", "started", a)
    with Session(engine) as s:
        by_job = audit.export_rows(s, "t1", job_id=a)
        other = audit.export_rows(s, "t1", job_id=b)
        assert audit.export_rows(s, "t1", job_id="no-such-job") == []
        by_channel = audit.export_rows(s, channel="finance")
        assert audit.export_rows(s, channel="ledger") == []
    assert [e.seq for e in by_channel] == [1, 2]
    assert [(e.seq, e.job_id) for e in by_job] == [(1, None), (2, a)]
    assert [e.seq for e in other] == [1]


def test_fhir_export_of_a_batch_event_validates_and_names_its_jobs(
    migrated_engine: sa.Engine,
) -> None:
    engine = migrated_engine
    jobs = put(engine, [item("a"), item("b")])
    [event] = events(engine)
    resource = FhirAuditEvent.model_validate(audit.fhir_audit_event(event))
    entities = resource.entity or []
    named = [e.what.identifier.value for e in entities if e.what and e.what.identifier]
    assert named[0] == event.hash and named[1:] == jobs
    assert resource.action == "C"


def test_purge_drops_the_links_of_purged_events(migrated_engine: sa.Engine) -> None:
    engine = migrated_engine
    [a] = put(engine, [item("a")])
    time.sleep(0.002)
    [b] = put(engine, [item("b")])
    [first, second] = events(engine)
    assert first.at < second.at
    with transaction(engine) as session:
        assert audit.purge_before(session, SEALER, "t1", second.at) == 1
    assert trail(engine, "t1", a) == []
    assert [e.seq for e in trail(engine, "t1", b)] == [second.seq]
    with Session(engine) as s:
        assert [x.job_id for x in s.exec(select(AuditJobLink)).all()] == [b]
        assert audit.verify(s, "t1", SEALER).ok
