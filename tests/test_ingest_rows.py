"""Core accept's fast storage: driver-level inserts store what SQLAlchemy would,
items serialised ahead open as the items themselves, and ids are time-ordered."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import insert
from sqlmodel import Session, select

from sluicegate.core import audit, db
from sluicegate.core.crypto import Sealer
from sluicegate.core.driver_insert import insert_many
from sluicegate.core.ingest import Accepted, Encoded, accept, open_item, ordered_id, ordered_ids
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.tables import Job, WorkItemRow

SEALER = Sealer({"k": bytes(32)}, "k")


def engine_at(tmp_path: Path) -> sa.Engine:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db.upgrade(url)
    return db.make_engine(url)


def item(key: str) -> WorkItem:
    return WorkItem(
        tenant="t1",
        channel="finance",
        task="financial_summary",
        source_ref="finance-report:x",
        idempotency_key=key,
        payload={"report_json": '{"a": "é\\n"}', "content_digest": "d" * 64},
        prompt_inputs={"facts": "Revenue = 1,240,000,000.00 USD\nNet — ✓"},
        identifiers={"name": ["Ünïcode Holder"]},
        sender="key-1",
    )


def test_driver_inserts_store_what_sqlalchemy_stores(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    table = Job.__table__  # type: ignore[attr-defined]
    now = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
    rows = [
        {
            "id": f"job-{n}",
            "work_item_id": "wi",
            "tenant": "t1",
            "channel": "finance",
            "task": "financial_summary",
            "status": "queued",
            "attempts": 0,
            "max_attempts": 3,
            "last_error": None if n else "naïve ✓",
            "created_at": now,
            "updated_at": now + timedelta(seconds=n),
            "due_at": now + timedelta(minutes=5),
        }
        for n in range(4)
    ]
    work_item = {
        "id": "wi",
        "tenant": "t1",
        "channel": "finance",
        "adapter": "finance",
        "task": "financial_summary",
        "source_ref": "x",
        "idempotency_key": "k",
        "sealed": b"\x00\x01",
        "created_at": now,
    }
    with engine.begin() as conn:
        insert_many(conn, WorkItemRow.__table__, [work_item])  # type: ignore[attr-defined]
        insert_many(conn, table, rows[:2])
        conn.execute(insert(table), rows[2:])
    with engine.connect() as conn:
        raw = conn.exec_driver_sql(
            "SELECT created_at, updated_at, due_at, last_error FROM jobs ORDER BY id"
        ).all()
    with Session(engine) as s:
        read = s.exec(select(Job).order_by(Job.id)).all()
        stored = s.exec(select(WorkItemRow)).one()
    # Stored text in the same format either way, and read back as the same values.
    assert [type(r[0]) for r in raw] == [str] * 4 and raw[0][0] == raw[2][0]
    assert stored.sealed == b"\x00\x01" and stored.created_at == now
    assert [(j.created_at, j.updated_at, j.last_error) for j in read] == [
        (r["created_at"], r["updated_at"], r["last_error"]) for r in rows
    ]


def test_an_item_serialised_ahead_opens_as_the_item(migrated_engine: sa.Engine) -> None:
    """On SQLite and on PostgreSQL (its one-statement path)."""
    engine = migrated_engine
    plain, ahead = item("a"), item("b")
    accepted = accept(
        engine, SEALER, "finance", [plain, Encoded.of(ahead)], max_attempts=3, lease_s=60
    )
    assert all(a.created for a in accepted)
    with Session(engine) as s:
        rows = {r.idempotency_key: r for r in s.exec(select(WorkItemRow)).all()}
        assert open_item(SEALER, rows["a"]) == plain
        assert open_item(SEALER, rows["b"]) == ahead
        assert audit.verify_chain(s, "t1") is None
        kinds = [e.type for e in s.exec(select(audit.AuditEvent)).all()]
        assert kinds == ["received", "validated"] * 2
    # A re-post of the encoded item finds the original job.
    [again] = accept(engine, SEALER, "finance", [Encoded.of(ahead)], max_attempts=3, lease_s=60)
    assert not again.created and again.job_id == accepted[1].job_id


def test_ids_are_uuid7_in_time_order() -> None:
    first = [ordered_id() for _ in range(50)]
    time.sleep(0.002)
    later = ordered_id()
    parsed = [uuid.UUID(i) for i in [*first, later]]
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(first)) == 50
    assert all(i < later for i in first)
    stamp = int(later.replace("-", "")[:12], 16) / 1000
    assert abs(stamp - time.time()) < 5


def test_ids_drawn_together_are_uuid7_and_distinct() -> None:
    batch = ordered_ids(2000)
    parsed = [uuid.UUID(i) for i in batch]
    assert [str(u) for u in parsed] == batch  # canonical lower-case text
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(batch)) == 2000
    # The random part really varies: each of its 74 bits is set in some id, clear in another.
    bits = [b for b in range(80) if b not in (62, 63, 76, 77, 78, 79)]
    assert len(bits) == 74
    for bit in bits:
        assert 0 < sum(u.int >> bit & 1 for u in parsed) < len(parsed)
    time.sleep(0.002)
    assert max(batch) < ordered_ids(1)[0]


def test_expecting_new_items_still_finds_stored_ones(migrated_engine: sa.Engine) -> None:
    """A bulk batch inserts without looking first; one stored item sends it the checking way."""
    engine = migrated_engine

    def put(items: list[WorkItem]) -> list[Accepted]:
        return accept(engine, SEALER, "finance", items, max_attempts=3, lease_s=60, expect_new=True)

    first = put([item("a"), item("b")])
    assert [a.created for a in first] == [True, True]
    # "c" is new, "b" (last, so its insert fails after "c"'s) and "a" were stored.
    mixed = [item("c"), item("a"), item("c"), item("b")]
    again = put(mixed)
    assert [a.created for a in again] == [True, False, False, False]
    assert again[1].job_id == first[0].job_id and again[3].job_id == first[1].job_id
    assert again[2].job_id == again[0].job_id
    with Session(engine) as s:
        keys = sorted(r.idempotency_key for r in s.exec(select(WorkItemRow)).all())
        assert keys == ["a", "b", "c"]
        assert len(s.exec(select(Job)).all()) == 3
        assert audit.verify_chain(s, "t1") is None
        kinds = [e.type for e in s.exec(select(audit.AuditEvent)).all()]
        assert kinds == ["received", "validated"] * 3
