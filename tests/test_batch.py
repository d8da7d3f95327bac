"""Batch step: several jobs in flight together, each ending on its own.

The backend here records how many requests it holds at once, which is what
a dynamic batcher needs (Triton groups only requests that overlap). The
relay's grouping is checked on a real Redis broker by reading the message it
published.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from kombu import Connection
from sqlmodel import Session, select

from sluicegate.core.batch import execute_many
from sluicegate.core.ingest import accept
from sluicegate.core.interfaces import GenerationFailed, GenerationRequest, WorkItem
from sluicegate.core.relay import publish_pending
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.tables import AuditEvent, Job, Result
from tests.conftest import REDIS_URL, make_settings
from tests.fakes import RecordingBackend


class OverlapBackend(RecordingBackend):
    """Answers after a pause; counts the most requests it held at once."""

    in_flight = 0
    most = 0

    async def generate(self, request: GenerationRequest):  # type: ignore[no-untyped-def]
        cls = OverlapBackend
        cls.in_flight += 1
        cls.most = max(cls.most, cls.in_flight)
        try:
            await asyncio.sleep(0.2)
            if "poison" in request.inputs.get("findings", ""):
                raise GenerationFailed("backend 'overlap' rejected the request (400)")
            return await super().generate(request)
        finally:
            cls.in_flight -= 1


def item(n: int, findings: str = "2 cm nodule.") -> WorkItem:
    return WorkItem(
        tenant="default",
        channel="fhir",
        task="radiology_report",
        source_ref=f"Bundle/b{n}",
        idempotency_key=f"k{n}-{uuid.uuid4().hex}",
        payload={},
        prompt_inputs={"procedure": "CT", "modality": "CT", "findings": findings},
    )


@pytest.fixture
def runtime(tmp_path) -> Any:
    OverlapBackend.in_flight = OverlapBackend.most = 0
    backend = {"factory": "tests.test_batch:OverlapBackend", "zone": "onprem"}
    settings = make_settings(
        tmp_path,
        inference={"backends": {"triton": backend}, "cache": {"enabled": False}},
        adapters={"fhir": {"factory": "sluicegate.adapters.fhir:FhirAdapter"}},
    )
    rt = build_runtime(settings)
    yield rt
    rt.close()


def submit(runtime: Runtime, items: list[WorkItem]) -> list[str]:
    accepted = accept(runtime.engine, runtime.sealer, "fhir", items, max_attempts=3, lease_s=120)
    return [a.job_id for a in accepted]


def test_jobs_run_together_and_each_ends_on_its_own(runtime) -> None:
    jobs = submit(runtime, [item(1), item(2), item(3, "poison"), item(4)])
    outcomes = execute_many(runtime, [*jobs, jobs[0]])  # a duplicate delivery in the batch
    assert outcomes == ["succeeded", "succeeded", "failed", "succeeded", "skipped"]
    assert OverlapBackend.most == 4  # all four were in flight at once: batchable
    with Session(runtime.engine) as s:
        results = s.exec(select(Result)).all()
        assert sorted(r.job_id for r in results) == sorted([jobs[0], jobs[1], jobs[3]])
        failed = s.get(Job, jobs[2])
        assert failed is not None and "rejected" in (failed.last_error or "")
        for job_id in jobs:  # each attempt audited as if it had run alone
            kinds = [
                e.type for e in s.exec(select(AuditEvent).where(AuditEvent.job_id == job_id)).all()
            ]
            assert kinds[:3] == ["received", "validated", "started"]
            assert kinds[-1] == ("failed" if job_id == jobs[2] else "succeeded")
            assert ("model_call" in kinds) is (job_id != jobs[2])


def test_the_relay_sends_one_task_for_a_batch(tmp_path) -> None:
    broker = f"{REDIS_URL}/12"
    settings = make_settings(
        tmp_path,
        broker={"url": broker},
        pipeline={"batch_size": 3},
        inference={"backends": {"triton": {"factory": "tests.test_batch:OverlapBackend"}}},
    )
    runtime = build_runtime(settings)
    try:
        with Connection(broker) as conn:
            conn.SimpleQueue("sluicegate").clear()
            jobs = submit(runtime, [item(n) for n in range(5)])
            assert publish_pending(runtime) == 5
            queue = conn.SimpleQueue("sluicegate")
            bodies = []
            for _ in range(2):
                message = queue.get(timeout=10)
                bodies.append((message.headers["task"], message.decode()[0]))
                message.ack()
            queue.close()
    finally:
        runtime.close()
    assert bodies == [("sluicegate.run_batch", [jobs[:3]]), ("sluicegate.run_batch", [jobs[3:]])]
    assert json.dumps(bodies)  # plain JSON on the wire
