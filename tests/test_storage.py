"""Schema migrations and the durable ingest transaction, on SQLite and real PostgreSQL."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from contextlib import closing

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from sluicegate.core import audit, db
from sluicegate.core.crypto import Sealer
from sluicegate.core.ingest import accept, open_item
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.tables import AuditEvent, Job, OutboxMessage, WorkItemRow

TABLES = {
    "work_items",
    "jobs",
    "results",
    "outbox",
    "webhook_deliveries",
    "audit_events",
    "audit_heads",
}
SEALER = Sealer({"k": bytes(32)}, "k")


def item(key: str = "k1", name: str = "Jane Testperson") -> WorkItem:
    return WorkItem(
        tenant="t1",
        channel="fhir",
        task="radiology_report",
        source_ref="Bundle/b1",
        idempotency_key=key,
        payload={"subject": "Patient/p1"},
        prompt_inputs={"findings": f"Nodule. Patient {name}."},
        identifiers={"name": [name]},
    )


@pytest.fixture
def engine(migrated_engine):
    return migrated_engine


def test_migrations_create_every_table(engine) -> None:
    assert set(sa.inspect(engine).get_table_names()) >= TABLES


def test_accept_writes_item_job_outbox_and_audit_together(engine) -> None:
    [accepted] = accept(engine, SEALER, "fhir", [item()], max_attempts=3, lease_s=60)
    assert accepted.created
    with Session(engine) as s:
        job = s.get(Job, accepted.job_id)
        assert job is not None and job.status == "queued" and job.max_attempts == 3
        assert s.exec(select(OutboxMessage).where(OutboxMessage.job_id == job.id)).one()
        row = s.get(WorkItemRow, job.work_item_id)
        assert row is not None
        assert b"Testperson" not in row.sealed  # sealed at rest
        assert open_item(SEALER, row) == item()
        assert audit.verify_chain(s, "t1") is None


def test_resubmission_returns_the_original_job(engine) -> None:
    [first] = accept(engine, SEALER, "fhir", [item()], max_attempts=3, lease_s=60)
    [again] = accept(engine, SEALER, "fhir", [item()], max_attempts=3, lease_s=60)
    assert again.job_id == first.job_id and not again.created
    with Session(engine) as s:
        assert len(s.exec(select(Job)).all()) == 1
        assert len(s.exec(select(OutboxMessage)).all()) == 1


def test_failure_mid_transaction_leaves_nothing(engine, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    # The audit rows come last (after the item, job and outbox inserts) on
    # both paths: the locking one and PostgreSQL's one statement.
    monkeypatch.setattr(audit, "chain_rows", broken)
    with pytest.raises(RuntimeError):
        accept(engine, SEALER, "fhir", [item("a"), item("b")], max_attempts=3, lease_s=60)
    with Session(engine) as s:
        for table in (WorkItemRow, Job, OutboxMessage):
            assert s.exec(select(table)).all() == []


def test_plaintext_never_reaches_the_sqlite_file(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    accept(engine, SEALER, "fhir", [item(name="Zebulon Quxworth")], max_attempts=3, lease_s=60)
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite*"))
    assert b"Quxworth" not in raw


def test_audit_chain_detects_an_edit(engine) -> None:
    accept(engine, SEALER, "fhir", [item("a"), item("b")], max_attempts=3, lease_s=60)
    with Session(engine) as s:
        assert audit.verify_chain(s, "t1") is None
        s.execute(sa.text("UPDATE audit_events SET type = 'edited' WHERE seq = 2"))
        s.commit()
        assert audit.verify_chain(s, "t1") == 2


def test_group_commit_answers_each_sender_after_its_commit(engine) -> None:
    """Concurrent senders share transactions; each gets its own jobs, duplicates resolve."""
    from concurrent.futures import wait

    from sluicegate.core.ingest import GroupCommitter

    committer = GroupCommitter(engine, SEALER, max_attempts=3, lease_s=60)
    try:
        futures = [committer.submit("fhir", [item(f"k{i}")]) for i in range(40)]
        futures.append(committer.submit("fhir", [item("k0")]))  # same content again
        wait(futures, timeout=60)
        results = [f.result()[0] for f in futures]
    finally:
        committer.close()
    assert all(r.created for r in results[:40])
    assert not results[40].created and results[40].job_id == results[0].job_id
    with Session(engine) as s:
        assert len(s.exec(select(Job)).all()) == 40
        assert len(s.exec(select(OutboxMessage)).all()) == 40
        assert audit.verify_chain(s, "t1") is None


def test_group_commit_isolates_a_failing_sender(engine, monkeypatch) -> None:
    """A batch that fails is retried sender by sender: only the bad one fails."""
    from sluicegate.core import ingest
    from sluicegate.core.ingest import GroupCommitter

    real_seal = ingest.seal_item

    def seal(sealer, row_id, it):
        if it.source_ref == "poison":
            raise RuntimeError("cannot seal")
        return real_seal(sealer, row_id, it)

    monkeypatch.setattr(ingest, "seal_item", seal)
    committer = GroupCommitter(engine, SEALER, max_attempts=3, lease_s=60)
    try:
        bad = item("p")
        bad = dataclasses.replace(bad, source_ref="poison")
        futures = [committer.submit("fhir", [item(f"g{i}")]) for i in range(5)]
        poisoned = committer.submit("fhir", [bad])
        good = [f.result(timeout=60)[0] for f in futures]
        with pytest.raises(RuntimeError):
            poisoned.result(timeout=60)
    finally:
        committer.close()
    assert all(r.created for r in good)
    with Session(engine) as s:
        assert len(s.exec(select(Job)).all()) == 5


@pytest.mark.parametrize("append_with", ["record", "append"])
def test_two_writers_starting_a_new_chain_both_succeed(migrated_engine, append_with) -> None:
    """Two API replicas record their first event of a tenant at the same moment.

    The first holds its new chain head uncommitted while the second appends: the
    second must wait for it and continue the chain, not start its own at seq 1.
    """
    engine = migrated_engine

    def write(label: str) -> None:
        if append_with == "record":
            with db.transaction(engine) as session:
                audit.record(session, "fresh-tenant", "config_changed", None, by=label)
        else:
            with engine.begin() as conn:
                audit.append(conn, "fresh-tenant", [("config_changed", None, {"by": label})])

    first_written = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            if append_with == "record":
                with db.transaction(engine) as session:
                    audit.record(session, "fresh-tenant", "config_changed", None, by="first")
                    session.flush()
                    first_written.set()
                    release.wait(10)
            else:
                with engine.begin() as conn:
                    audit.append(conn, "fresh-tenant", [("config_changed", None, {"by": "first"})])
                    first_written.set()
                    release.wait(10)
        except BaseException as exc:  # reported below
            errors.append(exc)
            first_written.set()

    def second() -> None:
        try:
            write("second")
        except BaseException as exc:
            errors.append(exc)

    one = threading.Thread(target=first)
    one.start()
    assert first_written.wait(10)
    two = threading.Thread(target=second)
    two.start()
    two.join(0.5)  # on PostgreSQL it waits for the first; SQLite serialises writers
    release.set()
    one.join(10)
    two.join(10)
    assert errors == []
    with Session(engine) as session:
        seqs = session.exec(select(AuditEvent.seq).where(AuditEvent.tenant == "fresh-tenant")).all()
        assert sorted(seqs) == [1, 2]
        assert audit.verify(session, "fresh-tenant").ok


def test_sqlite_commits_are_on_disk_before_they_return(tmp_path) -> None:
    """WAL (set by the migration, so no process has to switch a file others
    use) with synchronous=FULL on every connection: an acknowledged commit
    survives a power cut (NORMAL only survives a crashed process)."""
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    db.upgrade(url)
    with closing(sqlite3.connect(tmp_path / "durable.db")) as plain:  # before any engine
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    engine = db.make_engine(url)
    for _ in range(2):  # a fresh pooled connection each time
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        engine.dispose()
