"""Signed webhook delivery: retries, dead-lettering, replay — against a real HTTP
receiver, with signatures checked by the independent `standardwebhooks` library."""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from sluicegate.app import create_app
from sluicegate.core import webhooks
from sluicegate.core.ingest import accept
from sluicegate.core.pipeline import execute
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import WebhookDelivery, utcnow
from tests.conftest import FAKE_INFERENCE, make_settings
from tests.test_pipeline import radiology_item

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


class Receiver:
    """A real HTTP server answering with scripted status codes, recording what came."""

    def __init__(self) -> None:
        self.script: deque[int] = deque()
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.script.popleft() if receiver.script else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sluicegate"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def app_client(tmp_path, scripted, receiver) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path,
        inference=FAKE_INFERENCE,
        adapters={
            "fhir": {
                "factory": "sluicegate.adapters.fhir:FhirAdapter",
                "webhook": {
                    "url": receiver.url,
                    "secret": SECRET,
                    "max_attempts": 3,
                    "backoff_s": 0.01,
                    "backoff_max_s": 0.02,
                },
            }
        },
        pipeline={"max_attempts": 1},
    )
    with TestClient(create_app(settings, run_relay=False)) as client:
        yield client


def run_job(runtime: Runtime, key: str = "k1") -> str:
    [accepted] = accept(
        runtime.engine, runtime.sealer, "fhir", [radiology_item(key)], max_attempts=1, lease_s=120
    )
    execute(runtime, accepted.job_id)
    return accepted.job_id


def deliveries(runtime: Runtime) -> list[WebhookDelivery]:
    with Session(runtime.engine) as s:
        return list(s.exec(select(WebhookDelivery)).all())


def make_due(runtime: Runtime) -> None:
    with Session(runtime.engine) as s:
        for d in s.exec(select(WebhookDelivery)).all():
            if d.next_attempt_at is not None:
                d.next_attempt_at = utcnow() - timedelta(seconds=1)
                s.add(d)
        s.commit()


def test_success_is_announced_signed_and_without_patient_data(app_client, receiver) -> None:
    runtime = app_client.app.state.runtime
    job_id = run_job(runtime)
    assert webhooks.deliver_due(runtime) == 1
    [(headers, body)] = receiver.received
    payload = Webhook(SECRET).verify(body, headers)  # raises on a bad signature
    assert payload["type"] == "job.succeeded"
    assert payload["data"]["job_id"] == job_id
    assert payload["data"]["result_url"] == f"/jobs/{job_id}/result"
    assert b"Testperson" not in body and b"nodule" not in body
    [delivery] = deliveries(runtime)
    assert delivery.status == "delivered" and delivery.last_status_code == 204
    assert webhooks.deliver_due(runtime) == 0  # delivered once


def test_tampered_body_fails_verification(app_client, receiver) -> None:
    runtime = app_client.app.state.runtime
    run_job(runtime)
    webhooks.deliver_due(runtime)
    [(headers, body)] = receiver.received
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"succeeded", b"failed!!!"), headers)


def test_receiver_errors_are_retried_then_dead_lettered_and_replayable(
    app_client, receiver
) -> None:
    runtime = app_client.app.state.runtime
    receiver.script.extend([503, 500, 502])
    run_job(runtime)
    for attempt in range(1, 4):
        make_due(runtime)
        assert webhooks.deliver_due(runtime) == 1
        [delivery] = deliveries(runtime)
        assert delivery.attempts == attempt
    assert delivery.status == "dead" and delivery.last_status_code == 502
    ids = {h["webhook-id"] for h, _ in receiver.received}
    assert ids == {delivery.id}  # the same message id on every retry (receivers dedupe)

    listed = app_client.get("/webhooks/deliveries", params={"status": "dead"}).json()
    assert [d["id"] for d in listed] == [delivery.id]
    replayed = app_client.post(f"/webhooks/deliveries/{delivery.id}/replay")
    assert replayed.status_code == 202
    assert app_client.post(f"/webhooks/deliveries/{delivery.id}/replay").status_code == 409
    assert webhooks.deliver_due(runtime) == 1
    assert deliveries(runtime)[0].status == "delivered"


def test_gone_stops_at_once_and_connection_errors_retry(app_client, receiver) -> None:
    runtime = app_client.app.state.runtime
    receiver.script.append(410)
    run_job(runtime, "a")
    webhooks.deliver_due(runtime)
    assert deliveries(runtime)[0].status == "dead"

    receiver.server.shutdown()
    receiver.server.server_close()
    run_job(runtime, "b")
    webhooks.deliver_due(runtime)
    pending = [d for d in deliveries(runtime) if d.status == "pending"]
    assert len(pending) == 1 and pending[0].attempts == 1
    assert "Connect" in (pending[0].last_error or "")


def test_failed_jobs_are_announced_too(app_client, receiver, scripted) -> None:
    runtime = app_client.app.state.runtime
    scripted.SCRIPT.append("failed")
    job_id = run_job(runtime)
    webhooks.deliver_due(runtime)
    [(headers, body)] = receiver.received
    payload = json.loads(body)
    assert payload["type"] == "job.failed" and payload["data"]["job_id"] == job_id
    assert payload["data"]["result_url"] is None
    Webhook(SECRET).verify(body, headers)


def test_cli_replays_dead_deliveries(app_client, receiver, tmp_path) -> None:
    from typer.testing import CliRunner

    from sluicegate.cli import app
    from tests.processes import write_config

    runtime = app_client.app.state.runtime
    receiver.script.append(410)
    run_job(runtime)
    webhooks.deliver_due(runtime)
    config = write_config(runtime.settings, tmp_path / "config.yaml")
    result = CliRunner().invoke(app, ["webhooks", "replay", "--all-dead", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert deliveries(runtime)[0].status == "pending"


def test_backoff_stays_within_its_cap_however_many_attempts() -> None:
    """A delivery retried until answered (no max_attempts) reaches attempt 1,000+
    in weeks: the delay stays between half the cap and the cap, never overflows."""
    retry = webhooks.Retry(None, 5.0, 3600.0)
    for attempt in (1, 2, 12, 1100, 10**6):
        delay = webhooks._backoff_s(retry, attempt)
        ceiling = min(3600.0, 5.0 * 2 ** min(attempt - 1, 60))
        assert ceiling / 2 <= delay <= ceiling
