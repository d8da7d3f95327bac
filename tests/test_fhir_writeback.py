"""FHIR write-back, end to end: our result filed on a real FHIR server over HTTP,
with the Location recorded on the job, retries, dead-lettering and both modes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from sluicegate.app import create_app
from sluicegate.core import webhooks
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import Job, WebhookDelivery, utcnow
from tests.conftest import FAKE_INFERENCE, make_settings
from tests.fhir_server import FhirServerProcess
from tests.test_webhooks import SECRET, Receiver, deliveries, make_due, run_job


@pytest.fixture
def his() -> Iterator[FhirServerProcess]:
    """The hospital's FHIR server: a separate process speaking real FHIR REST."""
    server = FhirServerProcess().start()
    yield server
    server.stop()


@pytest.fixture
def make_client(tmp_path, scripted, his) -> Iterator[Callable[..., TestClient]]:
    """A gateway whose fhir channel writes back to ``his`` (and optionally has a webhook)."""
    clients: list[TestClient] = []

    def build(mode: str = "transaction", webhook_url: str | None = None) -> TestClient:
        channel: dict[str, Any] = {
            "factory": "sluicegate.adapters.fhir:FhirAdapter",
            "options": {
                "write_back": {
                    "base_url": his.base_url,
                    "mode": mode,
                    "headers": {"Authorization": "Bearer his-token"},
                    "max_attempts": 4,
                    "backoff_s": 0.01,
                    "backoff_max_s": 0.02,
                }
            },
        }
        if webhook_url:
            channel["webhook"] = {"url": webhook_url, "secret": SECRET}
        settings = make_settings(
            tmp_path / f"home{len(clients)}",
            inference=FAKE_INFERENCE,
            adapters={"fhir": channel},
            pipeline={"max_attempts": 1},
        )
        client = TestClient(create_app(settings, run_relay=False))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def our_result(client: TestClient, job_id: str) -> dict[str, Any]:
    bundle: dict[str, Any] = client.get(f"/jobs/{job_id}/result").json()
    return bundle


def resource_of(bundle: dict[str, Any], rtype: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)


def external_location(runtime: Runtime, job_id: str) -> str | None:
    with Session(runtime.engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job.external_location


def test_transaction_files_report_and_provenance_and_records_location(make_client, his) -> None:
    client = make_client()
    runtime = client.app.state.runtime
    job_id = run_job(runtime)
    assert webhooks.deliver_due(runtime) == 1

    [delivery] = deliveries(runtime)
    assert delivery.event == "writeback" and delivery.status == "delivered"
    assert delivery.url == his.base_url  # the target, never a credential
    location = external_location(runtime, job_id)
    assert location and location.startswith("DiagnosticReport/") and "/_history/1" in location
    assert client.get(f"/jobs/{job_id}").json()["external_location"] == location

    [request] = his.received
    assert request.headers["authorization"] == "Bearer his-token"
    assert request.headers["prefer"] == "return=minimal"
    ours = resource_of(our_result(client, job_id), "DiagnosticReport")
    stored = his.read(location)
    assert stored["status"] == "preliminary"
    for key in ("conclusion", "code", "subject", "category", "presentedForm"):
        assert stored[key] == ours[key], key
    [provenance] = his.store["Provenance"].values()
    [target] = provenance["target"]
    assert target["reference"] == location.split("/_history")[0]  # urn:uuid resolved
    assert {c["resourceType"] for c in provenance["contained"]} == {"Device"}
    assert "Device" not in his.store  # generating devices ride inside the Provenance


def test_server_outage_is_retried_honouring_retry_after_then_succeeds(make_client, his) -> None:
    client = make_client()
    runtime = client.app.state.runtime
    his.fail_next(503, retry_after="120")
    his.fail_next(503, 2)
    job_id = run_job(runtime)
    webhooks.deliver_due(runtime)
    [delivery] = deliveries(runtime)
    assert delivery.status == "pending" and delivery.last_status_code == 503
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at > utcnow() + timedelta(seconds=100)  # Retry-After: 120
    assert webhooks.deliver_due(runtime) == 0  # not due yet
    for _ in range(3):
        make_due(runtime)
        webhooks.deliver_due(runtime)
    [delivery] = deliveries(runtime)
    assert delivery.status == "delivered" and delivery.attempts == 4
    assert len(his.store["DiagnosticReport"]) == 1
    assert external_location(runtime, job_id)


def test_retry_after_a_lost_answer_does_not_file_a_second_report(make_client, his) -> None:
    """The report is created conditionally on its stable identifier."""
    client = make_client()
    runtime = client.app.state.runtime
    job_id = run_job(runtime)
    webhooks.deliver_due(runtime)
    first = external_location(runtime, job_id)
    webhooks.replay(runtime)  # nothing dead: a no-op
    with Session(runtime.engine) as s:  # pretend the answer was lost: send again
        [d] = s.exec(select(WebhookDelivery)).all()
        d.status, d.next_attempt_at = "pending", utcnow() - timedelta(seconds=1)
        s.add(d)
        s.commit()
    webhooks.deliver_due(runtime)
    assert len(his.store["DiagnosticReport"]) == 1
    assert external_location(runtime, job_id) == first


def test_unprocessable_is_dead_lettered_at_once_with_the_servers_reason(make_client, his) -> None:
    client = make_client()
    runtime = client.app.state.runtime
    his.fail_next(422, diagnostics="DiagnosticReport.subject: Patient/p1 is unknown " + "x" * 500)
    job_id = run_job(runtime)
    webhooks.deliver_due(runtime)
    [delivery] = deliveries(runtime)
    assert delivery.status == "dead" and delivery.attempts == 1
    assert delivery.last_status_code == 422
    error = delivery.last_error or ""
    assert error.startswith("FHIR server answered 422: DiagnosticReport.subject")
    assert len(error) < 300 and "nodule" not in error and "No acute" not in error
    assert external_location(runtime, job_id) is None
    assert "external_location" not in client.get(f"/jobs/{job_id}").json()

    assert client.post(f"/webhooks/deliveries/{delivery.id}/replay").status_code == 202
    webhooks.deliver_due(runtime)  # the server accepts it now
    assert deliveries(runtime)[0].status == "delivered"
    assert external_location(runtime, job_id)


def test_connection_errors_are_retried(make_client, his) -> None:
    client = make_client()
    runtime = client.app.state.runtime
    his.stop()
    run_job(runtime)
    webhooks.deliver_due(runtime)
    [delivery] = deliveries(runtime)
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert "Connect" in (delivery.last_error or "")


def test_create_mode_posts_the_report_alone(make_client, his) -> None:
    client = make_client(mode="create")
    runtime = client.app.state.runtime
    job_id = run_job(runtime)
    webhooks.deliver_due(runtime)
    [request] = his.received
    assert request.path == "/fhir/DiagnosticReport"
    assert request.headers["if-none-exist"].startswith("identifier=urn:ietf:rfc:3986|urn:uuid:")
    location = external_location(runtime, job_id)
    assert location and location.startswith(f"{his.base_url}/DiagnosticReport/")
    stored = his.read(location)
    ours = resource_of(our_result(client, job_id), "DiagnosticReport")
    assert stored["status"] == "preliminary" and stored["conclusion"] == ours["conclusion"]
    assert "Provenance" not in his.store


def test_write_back_and_webhook_on_the_same_channel(make_client, his) -> None:
    receiver = Receiver()
    try:
        client = make_client(webhook_url=receiver.url)
        runtime = client.app.state.runtime
        job_id = run_job(runtime)
        assert webhooks.deliver_due(runtime) == 2
        assert sorted(d.event for d in deliveries(runtime)) == ["job.succeeded", "writeback"]
        assert {d.status for d in deliveries(runtime)} == {"delivered"}
        [(_, body)] = receiver.received
        assert json.loads(body)["data"]["job_id"] == job_id
        assert len(his.store["DiagnosticReport"]) == 1
    finally:
        receiver.server.shutdown()


def test_failed_job_gets_no_write_back(make_client, his, scripted) -> None:
    client = make_client()
    runtime = client.app.state.runtime
    scripted.SCRIPT.append("failed")
    run_job(runtime)
    assert deliveries(runtime) == []
    assert webhooks.deliver_due(runtime) == 0 and his.received == []


def test_bad_write_back_options_fail_at_construction() -> None:
    from pydantic import ValidationError

    from sluicegate.adapters.fhir import FhirAdapter

    with pytest.raises(ValidationError):
        FhirAdapter({"write_back": {"base_url": "ftp://his", "mode": "upsert"}})
    assert FhirAdapter({}).write_back_policy() is None
    policy = FhirAdapter({"write_back": {"base_url": "https://his/fhir/"}}).write_back_policy()
    assert policy is not None and policy.target == "https://his/fhir" and policy.max_attempts == 8


def test_core_never_imports_adapters() -> None:
    import ast

    from tests.conftest import REPO

    for path in (REPO / "sluicegate" / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.startswith("sluicegate.adapters") for n in names), path
