"""Tampering with the audit table directly (SQLite and PostgreSQL) is caught and located."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from sluicegate.core import audit
from sluicegate.core.crypto import Sealer
from sluicegate.core.db import transaction
from sluicegate.core.tables import AuditCheckpoint, AuditEvent

EVENTS = 10


@pytest.fixture
def sealer() -> Sealer:
    return Sealer({"k1": os.urandom(32)}, "k1")


@pytest.fixture
def chain(migrated_engine: sa.Engine, sealer: Sealer) -> sa.Engine:
    for tenant in ("t1", "t2"):
        for n in range(EVENTS):
            with transaction(migrated_engine) as session:
                audit.record(session, tenant, "step", f"job-{n % 3}", n=n)
    return migrated_engine


def verdict(engine: sa.Engine, sealer: Sealer, tenant: str = "t1") -> audit.Verdict:
    with Session(engine) as session:
        return audit.verify(session, tenant, sealer)


def sql(engine: sa.Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def row(engine: sa.Engine, seq: int) -> dict[str, object]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT * FROM audit_events WHERE tenant='t1' AND seq=:s"), {"s": seq}
        )
        return dict(found.mappings().one())


def forged_hash(tenant: str, seq: int, at: datetime, data: dict[str, object], prev: str) -> str:
    content = {
        "tenant": tenant,
        "seq": seq,
        "job_id": None,
        "type": "step",
        "at": at.isoformat(),
        "data": data,
        "prev_hash": prev,
    }
    return hashlib.sha256(audit.canonical(content)).hexdigest()


def test_intact_chain_verifies(chain, sealer) -> None:
    result = verdict(chain, sealer)
    assert result.ok and result.events == EVENTS
    assert audit.verify_chain(Session(chain), "t1") is None


def test_edit_is_named(chain, sealer) -> None:
    sql(chain, "UPDATE audit_events SET data=:d WHERE tenant='t1' AND seq=4", d='{"n":99}')
    result = verdict(chain, sealer)
    assert (result.first_bad_seq, result.ok) == (4, False)
    assert "edited" in (result.reason or "")
    assert verdict(chain, sealer, "t2").ok  # the other tenant's chain is untouched


def test_edit_with_recomputed_hash_is_named(chain, sealer) -> None:
    original = row(chain, 4)
    at = original["at"] if isinstance(original["at"], datetime) else None
    at = (at or datetime.fromisoformat(str(original["at"]))).replace(tzinfo=UTC)
    new_hash = forged_hash("t1", 4, at, {"n": 99}, str(original["prev_hash"]))
    sql(
        chain,
        "UPDATE audit_events SET data=:d, job_id=NULL, hash=:h WHERE tenant='t1' AND seq=4",
        d='{"n":99}',
        h=new_hash,
    )
    assert verdict(chain, sealer).first_bad_seq == 4


def test_deletion_is_named(chain, sealer) -> None:
    sql(chain, "DELETE FROM audit_events WHERE tenant='t1' AND seq=5")
    result = verdict(chain, sealer)
    assert result.first_bad_seq == 5 and "deleted" in (result.reason or "")


def test_tail_deletion_is_caught_by_the_head_and_checkpoints(chain, sealer) -> None:
    with transaction(chain) as session:
        audit.checkpoint(session, sealer, "t1")
    sql(chain, "DELETE FROM audit_events WHERE tenant='t1' AND seq>=9")
    sql(chain, "UPDATE audit_heads SET last_seq=8 WHERE tenant='t1'")  # cover the tracks
    result = verdict(chain, sealer)
    assert result.first_bad_seq == 9 and "missing" in (result.reason or "")


def test_insertion_is_named(chain, sealer) -> None:
    prev = str(row(chain, 5)["hash"])
    sql(chain, "UPDATE audit_events SET seq=seq+1000 WHERE tenant='t1' AND seq>5")
    sql(chain, "UPDATE audit_events SET seq=seq-999 WHERE tenant='t1' AND seq>1000")
    at = datetime.now(UTC)
    with chain.begin() as conn:
        conn.execute(
            sa.insert(AuditEvent.__table__).values(
                tenant="t1",
                seq=6,
                job_id=None,
                type="step",
                at=at,
                data=json.dumps({"n": 42}),
                prev_hash=prev,
                hash=forged_hash("t1", 6, at, {"n": 42}, prev),
            )
        )
    result = verdict(chain, sealer)
    assert result.first_bad_seq == 6 and "inserted" in (result.reason or "")


def test_append_behind_the_gateway_is_named(chain, sealer) -> None:
    last = row(chain, EVENTS)
    at = datetime.now(UTC)
    data = {"n": 77}
    with chain.begin() as conn:
        conn.execute(
            sa.insert(AuditEvent.__table__).values(
                tenant="t1",
                seq=EVENTS + 1,
                job_id=None,
                type="step",
                at=at,
                data=json.dumps(data),
                prev_hash=last["hash"],
                hash=forged_hash("t1", EVENTS + 1, at, data, str(last["hash"])),
            )
        )
    assert verdict(chain, sealer).first_bad_seq == EVENTS + 1


def test_reordering_is_named(chain, sealer) -> None:
    sql(chain, "UPDATE audit_events SET seq=-1 WHERE tenant='t1' AND seq=3")
    sql(chain, "UPDATE audit_events SET seq=3 WHERE tenant='t1' AND seq=4")
    sql(chain, "UPDATE audit_events SET seq=4 WHERE tenant='t1' AND seq=-1")
    assert verdict(chain, sealer).first_bad_seq == 3


def test_forged_checkpoint_is_refused(chain, sealer) -> None:
    with transaction(chain) as session:
        audit.checkpoint(session, sealer, "t1")
    sql(chain, "UPDATE audit_checkpoints SET seq=9 WHERE tenant='t1'")
    result = verdict(chain, sealer)
    assert not result.ok and "signature" in (result.reason or "")


def test_purge_keeps_the_rest_verifiable(chain, sealer) -> None:
    with Session(chain) as session:
        sixth = session.exec(
            sa.select(AuditEvent).where(AuditEvent.tenant == "t1", AuditEvent.seq == 6)
        ).scalar_one()
    with transaction(chain) as session:
        assert audit.purge_before(session, sealer, "t1", sixth.at) == 5
    result = verdict(chain, sealer)
    assert result.ok and result.events == EVENTS - 5 and result.checkpoints == 1
    sql(chain, "DELETE FROM audit_events WHERE tenant='t1' AND seq=6")
    assert verdict(chain, sealer).first_bad_seq == 6  # the anchor still pins the start
    with Session(chain) as session:
        anchor = session.exec(sa.select(AuditCheckpoint)).scalar_one()
    assert anchor.kind == "anchor" and anchor.seq == 5


def test_the_relay_signs_chain_heads_periodically(tmp_path) -> None:
    """Periodic signed checkpoints without cron: the relay signs each busy chain."""
    from sqlmodel import Session, select

    from sluicegate.core.ingest import accept
    from sluicegate.core.interfaces import WorkItem
    from sluicegate.core.relay import checkpoint_chains
    from sluicegate.core.runtime import build_runtime
    from sluicegate.core.tables import AuditCheckpoint
    from tests.conftest import make_settings

    runtime = build_runtime(make_settings(tmp_path, security={"audit_checkpoint_every": 5}))
    try:
        items = [
            WorkItem("default", "fhir", "radiology_report", "Bundle/x", f"k{i}", {}, {})
            for i in range(2)
        ]
        accept(runtime.engine, runtime.sealer, "fhir", items, max_attempts=3, lease_s=60)
        assert checkpoint_chains(runtime) == 0  # 4 events (received, validated x2): fewer than 5
        third = WorkItem("default", "fhir", "radiology_report", "Bundle/x", "k9", {}, {})
        accept(runtime.engine, runtime.sealer, "fhir", [third], max_attempts=3, lease_s=60)
        assert checkpoint_chains(runtime) == 1
        with Session(runtime.engine) as s:
            [mark] = s.exec(select(AuditCheckpoint)).all()
        assert mark.seq == 6 and mark.kind == "periodic"
        assert checkpoint_chains(runtime) == 0  # nothing new since
    finally:
        runtime.close()
