"""Storing a batch's successes in one transaction, on real PostgreSQL.

The shared transaction must still judge each job on its own: a job this
attempt no longer holds is discarded (no result, no webhook), and a success
that cannot be stored costs only its own job. The audit chain verifies after
either, and the relay is told (NOTIFY) only by a commit that owes it work.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from sluicegate.core import audit, db, webhooks
from sluicegate.core.claims import Claim, Success, succeed_many
from sluicegate.core.ingest import accept
from sluicegate.core.interfaces import Generation, Publication, Rendered, WorkItem, Zone
from sluicegate.core.pipeline import claim_many
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.tables import Job, PublishedResource, Result, WebhookDelivery
from tests.conftest import make_settings

SECRET = "whsec_c2NhbGUtb3V0LWJlbmNobWFyay1zZWNyZXQtMzJieXQ="
ANSWER = Generation(
    text="IMPRESSION: as described.",
    backend_id="triton",
    model="m",
    zone=Zone.ONPREM,
    latency_s=0.01,
)


@pytest.fixture
def runtime(tmp_path: Any, pg_url: str) -> Iterator[Runtime]:
    hook = {"url": "https://receiver.example/hook", "secret": SECRET}
    settings = make_settings(
        tmp_path,
        database={"url": pg_url},
        adapters={"fhir": {"factory": "sluicegate.adapters.fhir:FhirAdapter", "webhook": hook}},
    )
    db.upgrade(pg_url)
    rt = build_runtime(settings)
    yield rt
    rt.close()


def claimed_jobs(runtime: Runtime, n: int) -> list[Claim]:
    items = [
        WorkItem(
            tenant="default",
            channel="fhir",
            task="radiology_report",
            source_ref=f"Bundle/b{i}",
            idempotency_key=uuid.uuid4().hex,
            payload={},
            prompt_inputs={"findings": "2 cm nodule."},
        )
        for i in range(n)
    ]
    accepted = accept(runtime.engine, runtime.sealer, "fhir", items, max_attempts=3, lease_s=60)
    claims = claim_many(runtime, [a.job_id for a in accepted])
    assert all(isinstance(c, Claim) for c in claims)
    return [c for c in claims if isinstance(c, Claim)]


def success(claimed: Claim, resource_id: str | None = None) -> Success:
    rid = resource_id or f"r-{claimed.job_id}"
    pub = Publication("DiagnosticReport", rid, b"{}", {"subject": ["Patient/1"]})
    return Success(claimed, ANSWER, Rendered(b"{}", "application/fhir+json"), [pub])


def stored(runtime: Runtime) -> tuple[set[str], set[str], set[str]]:
    with Session(runtime.engine) as s:
        results = {r.job_id for r in s.exec(select(Result)).all()}
        hooks = {d.job_id for d in s.exec(select(WebhookDelivery)).all()}
        published = {p.job_id for p in s.exec(select(PublishedResource)).all()}
    return results, hooks, published


def chain_ok(runtime: Runtime) -> bool:
    with Session(runtime.engine) as s:
        return all(audit.verify(s, t).ok for t in audit.tenants(s))


def test_a_job_lost_meanwhile_is_discarded_and_the_others_stored(runtime: Runtime) -> None:
    first, lost, third = claimed_jobs(runtime, 3)
    with runtime.engine.begin() as conn:  # its lease expired and another worker took it
        conn.execute(
            update(Job).where(col(Job.id) == lost.job_id).values(attempts=Job.attempts + 1)
        )
    lost.pending.append(("classified", lost.job_id, {"sensitivity": "phi"}))
    outcomes = succeed_many(runtime, [success(first), success(lost), success(third)])
    assert outcomes == ["succeeded", "discarded", "succeeded"]
    ours = {first.job_id, third.job_id}
    assert stored(runtime) == (ours, ours, ours)
    with Session(runtime.engine) as s:
        assert s.get(Job, lost.job_id).status == "running"  # type: ignore[union-attr]
        kinds = [e.type for e in audit.export_rows(s, job_id=lost.job_id)]
    assert kinds[-1] == "classified"  # the lost attempt's events stay on record
    assert chain_ok(runtime)


def test_a_success_that_cannot_be_stored_costs_only_its_own_job(runtime: Runtime) -> None:
    first, bad, third = claimed_jobs(runtime, 3)
    too_long = "x" * 200  # published_resources.resource_id is varchar(64) on PostgreSQL
    outcomes = succeed_many(runtime, [success(first), success(bad, too_long), success(third)])
    assert outcomes == ["succeeded", "store_failed", "succeeded"]
    ours = {first.job_id, third.job_id}
    assert stored(runtime) == (ours, ours, ours)
    with Session(runtime.engine) as s:
        job = s.get(Job, bad.job_id)
    assert job is not None and job.status == "running"  # its lease brings it back
    assert chain_ok(runtime)


def test_the_relay_hears_a_commit_that_owes_it_work_and_not_a_rollback(
    runtime: Runtime,
) -> None:
    heard: list[float] = []
    stop = threading.Event()
    listener = threading.Thread(
        target=db.listen, args=(runtime.engine, lambda: heard.append(time.monotonic()), stop)
    )
    listener.start()
    try:
        time.sleep(0.5)  # LISTEN is in place
        [claimed] = claimed_jobs(runtime, 1)
        heard.clear()  # ingest notified too
        rows = webhooks.owed(runtime, claimed.job_id, "fhir", "succeeded", "fhir")
        with pytest.raises(RuntimeError), runtime.engine.begin() as conn:
            webhooks.insert_rows(conn, rows)
            raise RuntimeError("rolled back")
        time.sleep(0.5)
        assert heard == []
        with runtime.engine.begin() as conn:
            webhooks.insert_rows(conn, rows)
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(heard) == 1
    finally:
        stop.set()
        listener.join(timeout=5)
    assert not listener.is_alive()
