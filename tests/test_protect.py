"""The protect step end to end: what the cloud receives, what the hospital gets back.

Real parts: the FHIR adapter parses the sample bundle, the real privacy
engine de-identifies and guards, the real router and policy route, the
pipeline re-identifies. Only the model is replaced, by a backend that records
exactly what it was sent (``tests.fakes.RecordingBackend``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import Session, select

from sluicegate.adapters.fhir import FhirAdapter
from sluicegate.core.ingest import accept
from sluicegate.core.pipeline import execute, result_aad
from sluicegate.core.privacy.engine import PrivacyEngine
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.tables import AuditEvent, Result, VaultRow
from tests.conftest import make_settings
from tests.fakes import RecordingBackend

BACKENDS = {
    "onprem": {"factory": "tests.fakes:RecordingBackend", "zone": "onprem"},
    "cloud": {"factory": "tests.fakes:RecordingBackend", "zone": "cloud", "model": "cloud-1"},
}
ROUTE_ALL = {"phi": ["onprem"], "pii": ["onprem"], "deidentified": ["cloud"], "public": ["cloud"]}


def make_runtime(tmp_path, **policy: Any) -> Runtime:
    settings = make_settings(
        tmp_path,
        inference={
            "backends": BACKENDS,
            "policy": {"rules": [ROUTE_ALL], **policy},
            "cache": {"enabled": False},
        },
    )
    return build_runtime(settings)


@pytest.fixture
def runtime(tmp_path):
    rt = make_runtime(tmp_path)
    yield rt
    rt.close()


def submit(runtime: Runtime, sample_bundle: bytes) -> tuple[str, Any]:
    [item] = FhirAdapter().parse(
        sample_bundle, "application/fhir+json", tenant="default", channel="fhir"
    )
    [accepted] = accept(runtime.engine, runtime.sealer, "fhir", [item], max_attempts=3, lease_s=120)
    return accepted.job_id, item


def identifier_values(item: Any) -> list[str]:
    return sorted({v for values in item.identifiers.values() for v in values if v.strip()})


def audit_of(runtime: Runtime, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    with Session(runtime.engine) as s:
        rows = s.exec(
            select(AuditEvent).where(AuditEvent.job_id == job_id).order_by(AuditEvent.seq)
        ).all()
        return [(e.type, json.loads(e.data)) for e in rows]


def result_text(runtime: Runtime, job_id: str) -> str:
    with Session(runtime.engine) as s:
        row = s.exec(select(Result).where(Result.job_id == job_id)).one()
        return runtime.sealer.open(row.sealed_body, result_aad(job_id)).decode()


def test_cloud_sees_only_deidentified_text_and_the_hospital_gets_real_details(
    runtime, sample_bundle
) -> None:
    job_id, item = submit(runtime, sample_bundle)
    assert execute(runtime, job_id) == "succeeded"

    assert RecordingBackend.sent["onprem"] == []
    [request] = RecordingBackend.sent["cloud"]
    assert request.sensitivity == "deidentified"
    assert request.clearance is not None and request.clearance.covers(request.inputs)
    cloud_text = json.dumps(request.inputs).lower()
    leaked = [v for v in identifier_values(item) if v.lower() in cloud_text]
    assert leaked == [], "structured identifiers reached the cloud"
    assert "[patient_1]" in cloud_text  # the patient named in the findings became a surrogate

    body = result_text(runtime, job_id)
    assert "Testperson" in body  # re-identified on-prem
    assert "[PATIENT_1]" not in body

    events = audit_of(runtime, job_id)
    kinds = [k for k, _ in events]
    assert kinds.index("deidentified") < kinds.index("routed") < kinds.index("reidentified")
    routed = dict(events)["routed"]
    assert routed["zone"] == "cloud" and routed["cleared"] is True
    assert dict(events)["reidentified"]["restored"] >= 1
    assert sum(dict(events)["deidentified"]["replaced"].values()) >= 1
    everything = json.dumps(events).lower()
    assert not [v for v in identifier_values(item) if len(v) > 3 and v.lower() in everything]

    with Session(runtime.engine) as s:
        vault = s.get(VaultRow, job_id)
        assert vault is not None and b"Testperson" not in vault.sealed


def test_a_guard_finding_keeps_the_work_on_prem(runtime, sample_bundle, monkeypatch) -> None:
    """The de-identifier missed an MRN: the independent guard stops the cloud call."""
    real = PrivacyEngine.deidentify

    def leaky(self: PrivacyEngine, item: Any) -> Any:
        done = real(self, item)
        done.inputs["findings"] += " MRN-0048213"
        return done

    monkeypatch.setattr(PrivacyEngine, "deidentify", leaky)
    job_id, item = submit(runtime, sample_bundle)
    assert execute(runtime, job_id) == "succeeded"

    assert RecordingBackend.sent["cloud"] == []
    [request] = RecordingBackend.sent["onprem"]
    assert request.inputs == item.prompt_inputs and request.clearance is None
    events = dict(audit_of(runtime, job_id))
    assert events["guard_blocked"]["action"] == "onprem"
    assert events["guard_blocked"]["kinds"]
    assert "0048213" not in json.dumps(events)
    assert events["routed"]["zone"] == "onprem"
    assert "reidentified" not in events


def test_a_privacy_engine_error_fails_closed(runtime, sample_bundle, monkeypatch) -> None:
    def broken(self: PrivacyEngine, item: Any) -> Any:
        raise ValueError("detector crashed near Jane Q. Testperson")

    monkeypatch.setattr(PrivacyEngine, "deidentify", broken)
    job_id, _ = submit(runtime, sample_bundle)
    assert execute(runtime, job_id) == "succeeded"
    assert RecordingBackend.sent["cloud"] == []
    assert len(RecordingBackend.sent["onprem"]) == 1
    events = audit_of(runtime, job_id)
    assert ("privacy_error", {"error": "ValueError"}) in events
    assert "Testperson" not in json.dumps(events)


def test_a_cloud_never_channel_is_not_even_deidentified(tmp_path, sample_bundle) -> None:
    runtime = make_runtime(tmp_path, channels={"fhir": {"cloud": "never"}})
    try:
        job_id, item = submit(runtime, sample_bundle)
        assert execute(runtime, job_id) == "succeeded"
        assert RecordingBackend.sent["cloud"] == []
        [request] = RecordingBackend.sent["onprem"]
        assert request.inputs == item.prompt_inputs
        kinds = [k for k, _ in audit_of(runtime, job_id)]
        assert "deidentified" not in kinds and "routed" in kinds
    finally:
        runtime.close()
