"""HTTP behaviour of ingest and the job API (in-process; model calls scripted)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlmodel import Session, select

from sluicegate.app import create_app
from sluicegate.core.pipeline import execute
from sluicegate.core.tables import Job, OutboxMessage, WorkItemRow
from tests.conftest import FAKE_INFERENCE, make_settings

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def client(tmp_path, scripted):
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE)
    app = create_app(settings, run_relay=False)
    with TestClient(app) as test_client:
        yield test_client


def stored_rows(client: TestClient) -> int:
    with Session(client.app.state.runtime.engine) as s:
        return sum(len(s.exec(select(t)).all()) for t in (WorkItemRow, Job, OutboxMessage))


def test_bundle_is_accepted_with_content_location(client, sample_bundle) -> None:
    response = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR)
    assert response.status_code == 202
    location = response.headers["content-location"]
    assert location.startswith("/jobs/")
    OperationOutcome.model_validate(response.json())
    job = client.get(location).json()
    assert job["status"] == "queued" and job["task"] == "radiology_report"
    assert stored_rows(client) == 3  # item + job + outbox, in one transaction


def test_job_result_flow(client, sample_bundle) -> None:
    location = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR).headers[
        "content-location"
    ]
    pending = client.get(f"{location}/result")
    assert pending.status_code == 409
    assert pending.headers["content-type"] == "application/problem+json"
    assert execute(client.app.state.runtime, location.rsplit("/", 1)[1]) == "succeeded"
    job = client.get(location).json()
    assert job["status"] == "succeeded" and job["result"] == f"{location}/result"
    result = client.get(f"{location}/result")
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/fhir+json"
    report = result.json()["entry"][0]["resource"]
    assert report["resourceType"] == "DiagnosticReport" and report["status"] == "preliminary"


def test_same_bundle_twice_returns_the_same_job(client, sample_bundle) -> None:
    first = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR)
    second = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR)
    assert first.headers["content-location"] == second.headers["content-location"]
    assert stored_rows(client) == 3


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"resourceType": "Bundle", "type": ', "application/fhir+json", 400),
        (b"MSH|^~\\&|not json", "application/fhir+json", 400),
        (b'{"hello": "world"}', "application/json", 400),
        (b'{"resourceType": "Patient", "id": "p"}', "application/fhir+json", 400),
        (b'{"resourceType": "Bundle", "type": "collection"}', "text/plain", 415),
        (b'{"resourceType": "Bundle", "type": "nonsense"}', "application/fhir+json", 422),
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": []}',
            "application/fhir+json",
            422,
        ),
    ],
)
def test_bad_input_gets_operation_outcome_and_stores_nothing(
    client, body, content_type, status
) -> None:
    response = client.post("/fhir/r4/Bundle", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue and outcome.issue[0].severity in ("error", "fatal")
    assert stored_rows(client) == 0


def test_oversized_body_is_refused_before_parsing(tmp_path, scripted) -> None:
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE, api={"max_body_bytes": 2048})
    with TestClient(create_app(settings, run_relay=False)) as client:
        body = json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Basic"}}] * 200,
            }
        ).encode()
        response = client.post("/fhir/r4/Bundle", content=body, headers=FHIR)
        assert response.status_code == 413
        assert OperationOutcome.model_validate(response.json()).issue[0].code == "too-costly"
        assert stored_rows(client) == 0


def test_unknown_job_is_problem_json(client) -> None:
    for path in ("/jobs/nope", "/jobs/nope/result", "/no/such/route"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"] and checks["backend:fake"]["ok"]


def test_readiness_reports_a_dead_broker(tmp_path, scripted) -> None:
    from tests.conftest import free_port

    settings = make_settings(
        tmp_path, inference=FAKE_INFERENCE, broker={"url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    with TestClient(create_app(settings, run_relay=False)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False and body["checks"]["broker"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True


def test_openapi_lists_the_routes(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/healthz",
        "/readyz",
        "/jobs/{job_id}",
        "/jobs/{job_id}/result",
        "/fhir/r4/Bundle",
    } <= set(paths)
    assert client.get("/docs").status_code == 200


def test_the_received_event_names_the_sender(client, sample_bundle) -> None:
    """Audit: who sent the work (here the client address; with auth on, the key id)."""
    from sluicegate.core.tables import AuditEvent

    response = client.post(
        "/fhir/r4/Bundle", content=sample_bundle, headers={"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 202
    with Session(client.app.state.runtime.engine) as s:
        [event] = s.exec(select(AuditEvent).where(AuditEvent.type == "received")).all()
    assert json.loads(event.data)["sender"] == "ip:testclient"
