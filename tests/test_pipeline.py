"""The job state machine: claim, succeed, retry, fail, sweep, dead-letter, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from sluicegate.core import audit
from sluicegate.core.ingest import accept
from sluicegate.core.interfaces import Sensitivity, WorkItem
from sluicegate.core.pipeline import execute, sweep
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.tables import AuditEvent, Job, OutboxMessage, Result, utcnow
from tests.conftest import FAKE_INFERENCE, make_settings


def radiology_item(key: str = "k1") -> WorkItem:
    return WorkItem(
        tenant="default",
        channel="fhir",
        task="radiology_report",
        source_ref="Bundle/b1",
        idempotency_key=key,
        payload={"subject": {"reference": "Patient/p1"}},
        prompt_inputs={
            "procedure": "CT chest",
            "modality": "CT",
            "clinical_history": "",
            "findings": "2 cm nodule right upper lobe.",
        },
        identifiers={"name": ["Jane Testperson"]},
    )


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    settings = make_settings(
        tmp_path,
        inference=FAKE_INFERENCE,
        pipeline={
            "max_attempts": 3,
            "retry_backoff_s": 0.01,
            "retry_backoff_max_s": 0.02,
            "lease_s": 120,
        },
    )
    rt = build_runtime(settings)
    yield rt
    rt.close()


def submit(runtime: Runtime, key: str = "k1") -> str:
    [accepted] = accept(
        runtime.engine, runtime.sealer, "fhir", [radiology_item(key)], max_attempts=3, lease_s=120
    )
    return accepted.job_id


def job(runtime: Runtime, job_id: str) -> Job:
    with Session(runtime.engine) as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def results(runtime: Runtime, job_id: str) -> list[Result]:
    with Session(runtime.engine) as s:
        return list(s.exec(select(Result).where(Result.job_id == job_id)).all())


def events(runtime: Runtime, job_id: str) -> list[str]:
    with Session(runtime.engine) as s:
        rows = s.exec(
            select(AuditEvent).where(AuditEvent.job_id == job_id).order_by(AuditEvent.seq)
        ).all()
        return [e.type for e in rows]


def test_success_stores_exactly_one_sealed_result(runtime, scripted) -> None:
    job_id = submit(runtime)
    assert execute(runtime, job_id) == "succeeded"
    done = job(runtime, job_id)
    assert done.status == "succeeded" and done.attempts == 1 and done.finished_at
    [result] = results(runtime, job_id)
    assert result.media_type == "application/fhir+json" and result.backend_id == "fake"
    assert b"No acute findings" not in result.sealed_body
    assert events(runtime, job_id) == [
        "received",
        "validated",
        "started",
        "classified",
        "routed",
        "model_call",
        "succeeded",
    ]
    [request] = scripted.RECEIVED
    assert request.sensitivity is Sensitivity.PHI


def test_duplicate_delivery_does_nothing(runtime, scripted) -> None:
    job_id = submit(runtime)
    assert execute(runtime, job_id) == "succeeded"
    assert execute(runtime, job_id) == "skipped"
    assert len(results(runtime, job_id)) == 1
    assert len(scripted.RECEIVED) == 1


def test_unavailable_backend_retries_with_backoff_then_fails(runtime, scripted) -> None:
    scripted.SCRIPT.extend(["unavailable"] * 3)
    job_id = submit(runtime)
    assert execute(runtime, job_id) == "retrying"
    waiting = job(runtime, job_id)
    assert waiting.status == "queued" and waiting.not_before is not None
    assert "unreachable" in (waiting.last_error or "")
    for _ in range(2):
        _relay_published_everything(runtime)
        _wait_past(waiting.not_before)
        assert sweep(runtime) == 1  # backoff over: the sweeper publishes it again
        execute(runtime, job_id)
        waiting = job(runtime, job_id)
    final = job(runtime, job_id)
    assert final.status == "failed" and final.attempts == 3
    assert final.last_error and final.last_error.startswith("gave up after 3 attempts")
    assert results(runtime, job_id) == []
    with Session(runtime.engine) as s:
        assert len(s.exec(select(OutboxMessage).where(OutboxMessage.job_id == job_id)).all()) == 3


def test_permanent_error_fails_at_once(runtime, scripted) -> None:
    scripted.SCRIPT.append("failed")
    job_id = submit(runtime)
    assert execute(runtime, job_id) == "failed"
    assert "rejected" in (job(runtime, job_id).last_error or "")
    assert len(scripted.RECEIVED) == 1


def test_lost_worker_is_requeued_then_dead_lettered(runtime, scripted) -> None:
    job_id = submit(runtime)
    for attempt in range(1, 4):
        _simulate_worker_lost(runtime, job_id)
        assert sweep(runtime) == 1
        status = job(runtime, job_id)
        if attempt < 3:
            assert status.status == "queued" and "worker lost" in (status.last_error or "")
    dead = job(runtime, job_id)
    assert dead.status == "dead" and "worker lost during attempt 3" in (dead.last_error or "")
    assert execute(runtime, job_id) == "skipped"
    with Session(runtime.engine) as s:
        assert audit.verify_chain(s, "default") is None


def test_a_worker_that_outlived_its_lease_cannot_write(runtime, scripted) -> None:
    job_id = submit(runtime)
    from sluicegate.core import pipeline

    claimed = pipeline.claim(runtime, job_id)
    assert claimed is not None
    _expire(runtime, job_id)
    sweep(runtime)  # another worker may now take it
    assert execute(runtime, job_id) == "succeeded"
    from sluicegate.core.interfaces import Generation, Rendered, Zone

    late = Generation(text="late", backend_id="x", model="m", zone=Zone.ONPREM, latency_s=1)
    rendered = Rendered(b"{}", "application/fhir+json")
    assert pipeline._succeed(runtime, claimed, late, rendered) == "discarded"
    assert len(results(runtime, job_id)) == 1


def _relay_published_everything(runtime: Runtime) -> None:
    with Session(runtime.engine) as s:
        for message in s.exec(select(OutboxMessage)).all():
            message.published_at = message.published_at or utcnow()
            s.add(message)
        s.commit()


def _simulate_worker_lost(runtime: Runtime, job_id: str) -> None:
    from sluicegate.core import pipeline

    assert pipeline.claim(runtime, job_id) is not None
    _expire(runtime, job_id)


def _expire(runtime: Runtime, job_id: str) -> None:
    with Session(runtime.engine) as s:
        found = s.get(Job, job_id)
        assert found is not None
        found.due_at = utcnow() - timedelta(seconds=1)
        s.add(found)
        s.commit()


def _wait_past(moment) -> None:
    import time

    while utcnow() <= moment:
        time.sleep(0.005)
