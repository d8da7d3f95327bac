"""PostgreSQL's one-statement accept, on a real server: atomic, chained, and safe under races.

The statement commits by itself, so these tests check what the locking path
gets from its transaction: a failure anywhere in it stores nothing; an audit
head moved by another writer, or an item stored already, fails it without a
trace and ``accept`` finishes on the locking path with one intact chain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from sluicegate.core import audit, db, ingest, ingest_pg
from sluicegate.core.crypto import Sealer
from sluicegate.core.ingest import accept
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.tables import AuditEvent, Job, OutboxMessage, WorkItemRow

SEALER = Sealer({"k": bytes(32)}, "k")


def item(key: str, tenant: str = "t1") -> WorkItem:
    return WorkItem(
        tenant=tenant,
        channel="hl7v2",
        task="radiology_report",
        source_ref="HL7 ORU^R01",
        idempotency_key=key,
        payload={},
        prompt_inputs={"findings": "No acute abnormality."},
        identifiers={},
    )


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    db.upgrade(pg_url)
    engine = db.make_engine(pg_url, pre_ping=False)
    yield engine
    engine.dispose()


def counts(engine: sa.Engine) -> dict[str, int]:
    with Session(engine) as s:
        return {
            t.__tablename__: len(s.exec(select(t)).all())
            for t in (WorkItemRow, Job, OutboxMessage, AuditEvent)
        }


def chain_ok(engine: sa.Engine, tenant: str = "t1") -> bool:
    with Session(engine) as s:
        return audit.verify_chain(s, tenant) is None


def test_accept_takes_the_one_statement_path(engine, monkeypatch) -> None:
    calls: list[int] = []
    real = ingest_pg.write

    def counted(*args: Any) -> None:
        calls.append(1)
        real(*args)

    monkeypatch.setattr(ingest_pg, "write", counted)
    first = accept(engine, SEALER, "hl7v2", [item("a"), item("b")], max_attempts=3, lease_s=60)
    second = accept(engine, SEALER, "hl7v2", [item("c", "t2")], max_attempts=3, lease_s=60)
    assert calls == [1, 1] and all(a.created for a in first + second)
    assert counts(engine) == {"work_items": 3, "jobs": 3, "outbox": 3, "audit_events": 6}
    assert chain_ok(engine, "t1") and chain_ok(engine, "t2")


def test_a_failure_in_the_last_part_of_the_statement_stores_nothing(engine, monkeypatch) -> None:
    """The audit events are the statement's last insert; one bad row undoes the items too."""
    real = audit.chain_rows

    def bad_hash(*args: Any) -> list[dict[str, Any]]:
        rows = real(*args)
        rows[-1]["hash"] = None  # NOT NULL
        return rows

    monkeypatch.setattr(audit, "chain_rows", bad_hash)
    rows = ingest._Rows.build(SEALER, "hl7v2", [item("a")], {}, 3, 60)
    with engine.connect() as conn, pytest.raises(IntegrityError):
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        ingest_pg.write(auto, rows.items, rows.jobs, rows.outbox, rows.events)
    assert counts(engine) == {"work_items": 0, "jobs": 0, "outbox": 0, "audit_events": 0}


def test_a_head_moved_meanwhile_fails_the_statement_then_the_locking_path_stores(
    engine, monkeypatch
) -> None:
    accept(engine, SEALER, "hl7v2", [item("a")], max_attempts=3, lease_s=60)
    real = audit.chain_rows
    raced: list[bool] = []

    def another_writer_first(*args: Any) -> list[dict[str, Any]]:
        if not raced:  # between our read of the head and our statement
            raced.append(True)
            with Session(engine) as s:
                audit.record(s, "t1", "config_changed", None)
                s.commit()
        return real(*args)

    monkeypatch.setattr(audit, "chain_rows", another_writer_first)
    [done] = accept(engine, SEALER, "hl7v2", [item("b")], max_attempts=3, lease_s=60)
    assert done.created and raced
    assert counts(engine) == {"work_items": 2, "jobs": 2, "outbox": 2, "audit_events": 5}
    assert chain_ok(engine)


def test_an_item_stored_already_is_answered_with_its_job(engine) -> None:
    [first] = accept(engine, SEALER, "hl7v2", [item("a")], max_attempts=3, lease_s=60)
    again = accept(engine, SEALER, "hl7v2", [item("a"), item("b")], max_attempts=3, lease_s=60)
    assert again[0].job_id == first.job_id and not again[0].created and again[1].created
    assert counts(engine) == {"work_items": 2, "jobs": 2, "outbox": 2, "audit_events": 4}
    assert chain_ok(engine)


def test_too_many_rows_for_one_statement_take_the_locking_path(engine, monkeypatch) -> None:
    monkeypatch.setattr(ingest_pg, "MAX_PARAMETERS", 10)
    called: list[int] = []
    monkeypatch.setattr(ingest_pg, "write", lambda *a: called.append(1))
    accept(engine, SEALER, "hl7v2", [item("a")], max_attempts=3, lease_s=60)
    assert called == [] and counts(engine)["jobs"] == 1 and chain_ok(engine)


def test_a_locking_appender_holding_the_head_meanwhile(engine, monkeypatch) -> None:
    """A worker's appender holds the head's lock while the statement runs: the
    statement waits for it (heads move first), fails on the moved head, and
    accept stores through the locking path; both writers succeed, one chain."""
    accept(engine, SEALER, "hl7v2", [item("a")], max_attempts=3, lease_s=60)
    outcome: dict[str, Any] = {}
    failed: list[Exception] = []
    real = ingest_pg.write

    def watched(*args: Any) -> None:
        try:
            real(*args)
        except Exception as exc:
            failed.append(exc)
            raise

    monkeypatch.setattr(ingest_pg, "write", watched)

    def ingest_now() -> None:
        try:
            outcome["accepted"] = accept(
                engine, SEALER, "hl7v2", [item("b")], max_attempts=3, lease_s=60
            )
        except Exception as exc:  # reported below
            outcome["error"] = exc

    with Session(engine) as s:
        audit.record(s, "t1", "job_started", None)  # locks the head row
        other = threading.Thread(target=ingest_now)
        other.start()
        time.sleep(0.5)  # the statement is under way, waiting for the lock
        s.commit()
    other.join(30)
    assert "error" not in outcome and outcome["accepted"][0].created
    assert [type(e) for e in failed] == [IntegrityError], failed  # the moved head, not a deadlock
    assert counts(engine) == {"work_items": 2, "jobs": 2, "outbox": 2, "audit_events": 5}
    assert chain_ok(engine)
