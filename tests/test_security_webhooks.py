"""Webhook SSRF protection, key id header, no redirects, schedule in hours, audit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import Session, select
from standardwebhooks import Webhook

from sluicegate.core import webhooks
from sluicegate.core.ingest import accept
from sluicegate.core.pipeline import execute
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.security import callbacks
from sluicegate.core.tables import AuditEvent, WebhookDelivery, utcnow
from tests.conftest import FAKE_INFERENCE, make_settings
from tests.test_pipeline import radiology_item
from tests.test_webhooks import SECRET, Receiver


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.100.100.200/x",
        "http://[::1]/x",
        "http://[fd00:ec2::254]/x",
        "http://[::ffff:127.0.0.1]/x",
    ],
)
def test_private_and_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(callbacks.UnsafeCallback):
        callbacks.check(url, [url], allow_private=False)


def test_allowlist_and_scheme_are_enforced() -> None:
    with pytest.raises(callbacks.UnsafeCallback, match="allowlist"):
        callbacks.check("https://93.184.216.34/b", ["https://93.184.216.34/a"], False)
    with pytest.raises(callbacks.UnsafeCallback, match="http"):
        callbacks.check("file:///etc/passwd", ["file://"], True)
    target = callbacks.check("https://93.184.216.34:8443/a/b?c=1", ["https://93.184.216.34"], False)
    assert target.url == "https://93.184.216.34:8443/a/b?c=1"
    assert target.host_header == "93.184.216.34:8443"
    assert callbacks.check("http://127.0.0.1:9/x", ["http://127.0.0.1"], True).url


class Redirector:
    """Answers every POST with a redirect to ``location`` (a real server)."""

    def __init__(self, location: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(307)
                self.send_header("location", location)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def runtime_for(tmp_path: Any, url: str, private: str, **hook: Any) -> Runtime:
    settings = make_settings(
        tmp_path,
        inference=FAKE_INFERENCE,
        adapters={
            "fhir": {
                "factory": "sluicegate.adapters.fhir:FhirAdapter",
                "webhook": {"url": url, "secret": SECRET, "key_id": "2026-11", **hook},
            }
        },
        pipeline={"max_attempts": 1},
        security={"callback_private_addresses": private},
    )
    return build_runtime(settings)


def run_job(runtime: Runtime) -> str:
    [accepted] = accept(
        runtime.engine, runtime.sealer, "fhir", [radiology_item("k1")], max_attempts=1, lease_s=60
    )
    execute(runtime, accepted.job_id)
    webhooks.deliver_due(runtime)
    return accepted.job_id


def deliveries(runtime: Runtime) -> list[WebhookDelivery]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(WebhookDelivery)).all())


def test_loopback_receiver_is_refused_by_default(tmp_path, scripted, receiver) -> None:
    runtime = runtime_for(tmp_path, receiver.url, "refuse")
    run_job(runtime)
    [delivery] = deliveries(runtime)
    assert delivery.status == webhooks.DEAD and "refused" in (delivery.last_error or "")
    assert receiver.received == []
    runtime.close()


def test_allowed_delivery_is_signed_with_key_id_and_audited(tmp_path, scripted, receiver) -> None:
    runtime = runtime_for(tmp_path, receiver.url, "refuse", allow_private=True)
    job_id = run_job(runtime)
    [(headers, body)] = receiver.received
    assert headers["webhook-key-id"] == "2026-11"
    Webhook(SECRET).verify(body, headers)
    with Session(runtime.engine) as session:
        types = [
            e.type for e in session.exec(select(AuditEvent).where(AuditEvent.job_id == job_id))
        ]
    assert types[-1] == "delivered"
    runtime.close()


def test_redirects_are_not_followed(tmp_path, scripted, receiver) -> None:
    redirector = Redirector(receiver.url)
    try:
        runtime = runtime_for(tmp_path, redirector.url, "allow", retry_schedule_h=[2, 6])
        before = utcnow()
        run_job(runtime)
        [delivery] = deliveries(runtime)
        assert receiver.received == []  # the redirect target never heard from us
        assert delivery.status == webhooks.PENDING and delivery.last_status_code == 307
        wait = delivery.next_attempt_at - before
        assert timedelta(hours=2) <= wait < timedelta(hours=2, minutes=1)  # schedule, in hours
        runtime.close()
    finally:
        redirector.server.shutdown()


def test_schedule_sets_attempts() -> None:
    from sluicegate.core.config import WebhookConfig

    hook = WebhookConfig(url="https://x.example/h", secret=SECRET, retry_schedule_h=[0.5, 1, 24])
    retry = webhooks._retry_of(hook)
    assert retry.max_attempts == 4
    assert [webhooks._backoff_s(retry, n) for n in (1, 2, 3)] == [1800.0, 3600.0, 86400.0]
