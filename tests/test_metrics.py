"""Prometheus metrics: families after real requests, bounded labels, multiprocess
collection, access control, and `sluicegate status` against a running server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from sluicegate.app import create_app
from sluicegate.cli import app as cli_app
from sluicegate.core import metrics, webhooks
from sluicegate.core.pipeline import execute
from sluicegate.status_view import parse_metrics, render, take_snapshot
from tests.conftest import FAKE_INFERENCE, free_port, make_settings

FHIR = {"Content-Type": "application/fhir+json"}
INSIDE = ("127.0.0.1", 50000)
OUTSIDE = ("203.0.113.9", 50000)
OPEN = {"auth": "disabled"}

Samples = dict[str, list[tuple[dict[str, str], float]]]


def settings_for(home: Path, database_url: str | None = None, **sections: Any) -> Any:
    extra: dict[str, Any] = {"inference": FAKE_INFERENCE, "security": OPEN, **sections}
    if database_url:
        extra["database"] = {"url": database_url, "auto_migrate": True}
    return make_settings(home, **extra)


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path, scripted: Any) -> Iterator[TestClient]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    if url:
        from sluicegate.core import db

        db.upgrade(url)
    app = create_app(settings_for(tmp_path, url), run_relay=False)
    with TestClient(app, client=INSIDE) as test_client:
        yield test_client


def runtime_of(client: TestClient) -> Any:
    app: Any = client.app
    return app.state.runtime


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse_metrics(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v
        for lab, v in samples.get(name, [])
        if all(lab.get(key) == want for key, want in labels.items())
    )


def label_values(samples: Samples, label: str) -> set[str]:
    return {lab[label] for series in samples.values() for lab, _ in series if label in lab}


def test_metrics_after_real_requests(client: TestClient, sample_bundle: bytes) -> None:
    before = scrape(client)
    post = {"adapter": "fhir", "route": "/fhir/r4/Bundle", "method": "POST", "status": "202"}
    accepted = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR)
    assert accepted.status_code == 202
    job_id = accepted.headers["content-location"].rsplit("/", 1)[1]
    assert client.get(f"/jobs/{job_id}").status_code == 200
    queued = scrape(client)

    assert value(queued, "sluicegate_http_requests_total", **post) == (
        value(before, "sluicegate_http_requests_total", **post) + 1
    )
    route = {"adapter": "jobs", "route": "/jobs/{job_id}", "method": "GET"}
    assert value(queued, "sluicegate_http_request_duration_seconds_count", **route) >= 1
    assert value(queued, "sluicegate_http_request_duration_seconds_bucket", le="+Inf", **route) >= 1
    assert value(queued, "sluicegate_database_up") == 1
    assert value(queued, "sluicegate_jobs", status="queued") == 1
    assert value(queued, "sluicegate_queue_depth") == 1
    assert value(queued, "sluicegate_outbox_backlog") == 1
    assert value(queued, "sluicegate_queue_oldest_age_seconds") >= 0
    assert value(queued, "sluicegate_delivery_backlog", kind="webhook", status="dead") == 0

    assert execute(runtime_of(client), job_id) == "succeeded"
    done = scrape(client)
    assert value(done, "sluicegate_jobs", status="queued") == 0
    assert value(done, "sluicegate_jobs", status="succeeded") == 1
    assert value(done, "sluicegate_queue_oldest_age_seconds") == 0

    every_label = {v for series in done.values() for lab, _ in series for v in lab.values()}
    assert not any(job_id in v for v in every_label), "a job id leaked into a label"


def test_metrics_scrapes_are_not_counted_as_traffic(client: TestClient) -> None:
    for _ in range(3):
        scrape(client)
    assert "/metrics" not in label_values(scrape(client), "route")


def test_fifty_ids_and_paths_do_not_make_fifty_series(client: TestClient) -> None:
    # The registry is per process: other tests' routes may already be there,
    # so what is checked is what these 150 requests add.
    routes_before = label_values(scrape(client), "route")
    ids = [uuid.uuid4().hex for _ in range(50)]
    for one in ids:
        assert client.get(f"/jobs/{one}").status_code == 404
        assert client.get(f"/no/such/{one}").status_code == 404
        client.post(f"/fhir/r4/Bundle/{one}", content=b"{}", headers=FHIR)
    samples = scrape(client)
    routes = label_values(samples, "route")
    assert "/jobs/{job_id}" in routes and "<unmatched>" in routes
    every_label = {v for series in samples.values() for lab, _ in series for v in lab.values()}
    assert not [v for v in every_label if any(one in v for one in ids)]
    assert len(routes - routes_before) <= 3  # /jobs/{job_id}, <unmatched>, one FHIR route
    per_route = [
        lab
        for lab, _ in samples["sluicegate_http_requests_total"]
        if lab["route"] in ("/jobs/{job_id}", "<unmatched>")
    ]
    assert len(per_route) <= 6  # a few (method, status) pairs, not one series per id


def test_label_values_are_capped_and_enumerations_enforced() -> None:
    cap = metrics._Bounded(limit=5)
    seen = {cap("route", f"/x/{i}") for i in range(50)}
    assert len(seen) == 6 and metrics.OTHER in seen
    assert cap("outcome", "payment_required", metrics.INFERENCE_OUTCOMES) == "payment_required"
    assert cap("outcome", "Patient John Smith", metrics.INFERENCE_OUTCOMES) == metrics.OTHER


def test_library_calls_feed_their_families(tmp_path: Path) -> None:
    metrics.job_accepted("finance", 2)
    metrics.job_finished("financial_summary", "cloud", "succeeded", 1.5)
    metrics.job_error("financial_summary", "made-up cause")
    metrics.inference_call("deepseek", "cloud", "payment_required", 0.2, 100, 20, 0.003)
    metrics.breaker_state("deepseek", "open")
    metrics.guard_blocked("mrn")
    metrics.cache_lookup(True)
    metrics.cache_lookup(False)
    metrics.webhook_delivery("mllp", "retry")
    metrics.audit_verified(False)
    metrics.breaker_state("deepseek", "sideways")  # ignored (logged), never raised
    assert metrics.since(datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)) >= 5
    samples = parse_metrics(generate_latest(metrics.registry()).decode())
    assert value(samples, "sluicegate_jobs_accepted_total", adapter="finance") >= 2
    assert value(samples, "sluicegate_job_duration_seconds_count", task="financial_summary") >= 1
    assert value(samples, "sluicegate_job_errors_total", cause="other") >= 1
    assert value(samples, "sluicegate_inference_requests_total", outcome="payment_required") >= 1
    assert value(samples, "sluicegate_inference_tokens_total", kind="completion") >= 20
    assert value(samples, "sluicegate_inference_cost_total", backend="deepseek") > 0
    assert value(samples, "sluicegate_breaker_state", backend="deepseek") == 2
    assert value(samples, "sluicegate_guard_blocks_total", kind="mrn") >= 1
    assert value(samples, "sluicegate_cache_lookups_total", result="hit") >= 1
    assert value(samples, "sluicegate_deliveries_total", kind="mllp", outcome="retry") >= 1
    assert value(samples, "sluicegate_audit_verifications_total", result="failed") >= 1


CHILD = textwrap.dedent(
    """
    import sys
    from sluicegate.core import metrics
    metrics.job_accepted("fhir", int(sys.argv[1]))
    metrics.inference_call("local-triton", "onprem", "ok", 0.3, 10, 5)
    metrics.breaker_state("local-triton", sys.argv[2])
    print("done", flush=True)
    """
)


def test_multiprocess_mode_adds_up_two_processes(
    tmp_path: Path, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "prom"
    metrics.prepare_multiprocess_dir(shared)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "PATH": ""}
    for count, state in ((3, "closed"), (4, "open")):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(count), state],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert "done" in out.stdout
    assert len(list(shared.glob("*.db"))) >= 2  # one file set per process

    samples = parse_metrics(generate_latest(metrics.registry(multiproc_dir=shared)).decode())
    assert value(samples, "sluicegate_jobs_accepted_total", adapter="fhir") == 7
    assert value(samples, "sluicegate_inference_requests_total", backend="local-triton") == 2
    assert value(samples, "sluicegate_inference_duration_seconds_count") == 2
    # livemax: the worst breaker state over the processes that wrote one
    [breaker] = samples["sluicegate_breaker_state"]
    assert breaker[1] == 2

    # The API's /metrics reads the same directory when the variable is set.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    app = create_app(settings_for(tmp_path / "home"), run_relay=False)
    with TestClient(app, client=INSIDE) as api:
        served = scrape(api)
    assert value(served, "sluicegate_jobs_accepted_total", adapter="fhir") == 7
    assert value(served, "sluicegate_database_up") == 1
    assert value(served, "process_cpu_seconds_total") > 0


@pytest.mark.parametrize(
    ("sections", "peer", "expected"),
    [
        ({}, INSIDE, 200),
        ({}, ("10.1.2.3", 1), 200),
        ({}, OUTSIDE, 403),
        ({"metrics": {"allow_from": ["203.0.113.0/24"]}}, OUTSIDE, 200),
        ({"metrics": {"allow_from": ["203.0.113.0/24"]}}, INSIDE, 403),
        ({"metrics": {"allow_from": ["::/0"]}}, ("::1", 1), 200),
        ({"metrics": {"allow_from": ["::/0"]}}, INSIDE, 403),
        ({"metrics": {"enabled": False}}, INSIDE, 404),
    ],
)
def test_metrics_access_control(
    tmp_path: Path, scripted: Any, sections: dict[str, Any], peer: tuple[str, int], expected: int
) -> None:
    app = create_app(settings_for(tmp_path, **sections), run_relay=False)
    with TestClient(app, client=peer) as test_client:
        response = test_client.get("/metrics")
        assert response.status_code == expected
        if expected != 200:
            assert response.headers["content-type"] == "application/problem+json"
            assert "sluicegate_" not in response.text
        assert test_client.get("/healthz").status_code == 200  # only /metrics is fenced


def test_bad_cidr_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allow_from"):
        make_settings(tmp_path, metrics={"allow_from": ["10.0.0.0/33"]})


def test_webhook_outcomes_are_counted(tmp_path: Path, scripted: Any) -> None:
    from tests.test_webhooks import SECRET, Receiver, make_due, run_job

    receiver = Receiver()
    try:
        settings = settings_for(
            tmp_path,
            adapters={
                "fhir": {
                    "factory": "sluicegate.adapters.fhir:FhirAdapter",
                    "webhook": {
                        "url": receiver.url,
                        "secret": SECRET,
                        "max_attempts": 2,
                        "backoff_s": 0.01,
                        "backoff_max_s": 0.02,
                        **({"allow_private": True} if _webhook_allows_private() else {}),
                    },
                }
            },
            pipeline={"max_attempts": 1},
        )
        receiver.script.extend([503, 500, 204])
        with TestClient(create_app(settings, run_relay=False), client=INSIDE) as api:
            runtime = runtime_of(api)
            before = scrape(api)
            run_job(runtime, "a")
            for _ in range(2):
                make_due(runtime)
                webhooks.deliver_due(runtime)
            run_job(runtime, "b")
            webhooks.deliver_due(runtime)
            after = scrape(api)
    finally:
        receiver.server.shutdown()

    def delta(outcome: str) -> float:
        key = {"kind": "webhook", "outcome": outcome}
        return value(after, "sluicegate_deliveries_total", **key) - value(
            before, "sluicegate_deliveries_total", **key
        )

    assert (delta("retry"), delta("dead"), delta("delivered")) == (1, 1, 1)
    assert value(after, "sluicegate_delivery_backlog", kind="webhook", status="dead") == 1
    assert value(after, "sluicegate_delivery_backlog", kind="webhook", status="pending") == 0


def _webhook_allows_private() -> bool:
    from sluicegate.core.config import WebhookConfig

    return "allow_private" in WebhookConfig.model_fields


@pytest.fixture
def live_server(tmp_path: Path, scripted: Any) -> Iterator[str]:
    """The real app on uvicorn in a thread: `sluicegate status` talks HTTP to it."""
    port = free_port()
    app = create_app(settings_for(tmp_path), run_relay=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=30)


def test_status_once_shows_queues_backends_and_throughput(
    live_server: str, sample_bundle: bytes
) -> None:
    httpx.post(f"{live_server}/fhir/r4/Bundle", content=sample_bundle, headers=FHIR, timeout=30)
    result = CliRunner().invoke(cli_app, ["status", "--once", "--url", live_server])
    assert result.exit_code == 0, result.output
    for heading in ("Queues", "Backends", "Throughput", "jobs queued", "outbox unpublished"):
        assert heading in result.output
    assert "READY" in result.output


def test_status_rates_come_from_two_scrapes(live_server: str, sample_bundle: bytes) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as http:
        first = take_snapshot(http)
        http.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR)
        second = take_snapshot(http)
    assert second.total("sluicegate_jobs_accepted_total") >= first.total(
        "sluicegate_jobs_accepted_total"
    )
    from rich.console import Console

    console = Console(width=140, record=True)
    console.print(render(live_server, second, first))
    text = console.export_text()
    assert "/s" in text and "jobs queued" in text


def test_status_against_nothing_exits_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli_app, ["status", "--once", "--url", url])
    assert result.exit_code == 1
    assert "ConnectError" in result.output


def test_metric_text_is_valid_exposition(client: TestClient) -> None:
    text = client.get("/metrics").text
    names = {family.name for family in text_string_to_metric_families(text)}
    for family in (
        "sluicegate_http_requests",
        "sluicegate_http_request_duration_seconds",
        "sluicegate_jobs",
        "sluicegate_queue_oldest_age_seconds",
        "sluicegate_outbox_backlog",
        "sluicegate_delivery_backlog",
    ):
        assert family in names


def _exporter_value(port: int, name: str, **labels: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    return value(parse_metrics(text), name, **labels)


@pytest.mark.e2e
def test_relay_process_exports_its_delivery_counts(tmp_path: Path, scripted: Any) -> None:
    from sluicegate.core.runtime import build_runtime
    from tests.processes import start_cli, stop_group, wait_for, write_config
    from tests.test_webhooks import SECRET, Receiver, run_job

    receiver = Receiver()
    port = free_port()
    hook = {"url": receiver.url, "secret": SECRET, "max_attempts": 2, "backoff_s": 0.01}
    if _webhook_allows_private():
        hook["allow_private"] = True
    settings = settings_for(
        tmp_path,
        adapters={"fhir": {"factory": "sluicegate.adapters.fhir:FhirAdapter", "webhook": hook}},
        pipeline={"max_attempts": 1},
        metrics={"exporter_port": port, "exporter_host": "127.0.0.1"},
    )
    config = write_config(settings, tmp_path / "sluicegate.yaml")
    runtime = build_runtime(settings)
    log = tmp_path / "relay.log"
    proc = start_cli(["relay", "--config", str(config)], log, env={"PROMETHEUS_MULTIPROC_DIR": ""})
    try:
        run_job(runtime)
        wait_for(lambda: receiver.received, 90, "the webhook", log)
        delivered = {"kind": "webhook", "outcome": "delivered"}
        wait_for(
            lambda: _exporter_value(port, "sluicegate_deliveries_total", **delivered) == 1,
            60,
            "the relay's exporter to count the delivery",
            log,
        )
        assert (tmp_path / "metrics").is_dir()  # its private multiprocess directory
    finally:
        stop_group(proc)
        receiver.server.shutdown()
        runtime.close()


@pytest.mark.e2e
def test_worker_process_serves_its_exporter(tmp_path: Path, scripted: Any) -> None:
    from tests.processes import start_cli, stop_group, wait_for, write_config

    port = free_port()
    settings = settings_for(tmp_path, metrics={"exporter_port": port, "exporter_host": "127.0.0.1"})
    config = write_config(settings, tmp_path / "sluicegate.yaml")
    log = tmp_path / "worker.log"
    proc = start_cli(
        ["worker", "--config", str(config), "--concurrency", "2"],
        log,
        env={"PROMETHEUS_MULTIPROC_DIR": ""},
    )
    try:
        cpu = wait_for(
            lambda: _exporter_value(port, "process_cpu_seconds_total"), 120, "the exporter", log
        )
        assert cpu > 0
        [directory] = (tmp_path / "metrics").glob("worker-*")
        assert directory.is_dir()
    finally:
        stop_group(proc)
