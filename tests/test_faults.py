"""Faults the foundation must survive: a worker killed mid-job, a broker that is
down at ingest, an on-prem model server that cannot be reached. Real processes
throughout (Celery worker, Triton, redis-server)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from sluicegate.app import create_app
from sluicegate.core.tables import OutboxMessage
from tests.conftest import free_port, make_settings
from tests.processes import (
    audit_types,
    job_in,
    job_row,
    results_of,
    start_cli,
    stop_group,
    triton_inference,
    wait_for,
    worker,
    write_config,
)

pytestmark = pytest.mark.e2e
FHIR = {"Content-Type": "application/fhir+json"}


def post_sample(client: TestClient, body: bytes) -> str:
    started = time.monotonic()
    response = client.post("/fhir/r4/Bundle", content=body, headers=FHIR)
    assert response.status_code == 202, response.text
    assert time.monotonic() - started < 5, "ingest must not wait on the broker or the model"
    return str(response.headers["content-location"].rsplit("/", 1)[1])


def test_worker_killed_mid_job_completes_once_after_restart(
    tmp_path, local_triton, sample_bundle
) -> None:
    # A long generation keeps the job running long enough to kill the worker in it;
    # the lease is short so the sweeper notices the lost worker quickly.
    settings = make_settings(
        tmp_path,
        inference=triton_inference(local_triton, max_tokens=400, timeout_s=20),
        pipeline={"lease_s": 25, "max_attempts": 3},
    )
    config = write_config(settings, tmp_path / "config.yaml")
    with TestClient(create_app(settings, run_relay=True)) as client:
        engine = client.app.state.runtime.engine
        first = start_cli(
            ["worker", "--config", str(config), "--concurrency", "1"], tmp_path / "worker-1.log"
        )
        try:
            job_id = post_sample(client, sample_bundle)
            wait_for(
                lambda: job_in(engine, job_id, "running"),
                60,
                "the job to start",
                tmp_path / "worker-1.log",
            )
        finally:
            stop_group(first, signal.SIGKILL)  # parent and pool children, no warning
        assert job_row(engine, job_id).status == "running"
        with worker(config, tmp_path / "worker-2.log"):
            done = wait_for(
                lambda: job_in(engine, job_id, "succeeded", "failed", "dead"),
                150,
                "the job to finish after restart",
                tmp_path / "worker-2.log",
            )
        assert done.status == "succeeded", done.last_error
        assert done.attempts == 2
        assert len(results_of(engine, job_id)) == 1
        events = audit_types(engine, job_id)
        assert events.count("requeued") == 1 and events.count("succeeded") == 1
        assert client.get(f"/jobs/{job_id}/result").status_code == 200


def test_broker_down_at_ingest_then_back(tmp_path, local_triton, sample_bundle) -> None:
    redis_server = shutil.which("redis-server")
    assert redis_server, "redis-server is needed (Debian package redis-server)"
    port = free_port()
    settings = make_settings(
        tmp_path,
        broker={"url": f"redis://127.0.0.1:{port}/0"},
        relay={"poll_interval_s": 0.2},
        inference=triton_inference(local_triton),
    )
    config = write_config(settings, tmp_path / "config.yaml")
    with TestClient(create_app(settings, run_relay=True)) as client:
        engine = client.app.state.runtime.engine
        job_id = post_sample(client, sample_bundle)
        assert job_row(engine, job_id).status == "queued"

        def publish_failed() -> bool:
            from sqlmodel import Session, select

            with Session(engine) as s:
                row = s.exec(select(OutboxMessage).where(OutboxMessage.job_id == job_id)).one()
                return row.publish_attempts >= 1 and row.published_at is None

        wait_for(publish_failed, 30, "the relay to find the broker down")
        broker = subprocess.Popen(
            [
                redis_server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with worker(config, tmp_path / "worker.log"):
                done = wait_for(
                    lambda: job_in(engine, job_id, "succeeded", "failed", "dead"),
                    120,
                    "the job to run once the broker is back",
                    tmp_path / "worker.log",
                )
        finally:
            broker.terminate()
            broker.wait(10)
        assert done.status == "succeeded", done.last_error
        assert len(results_of(engine, job_id)) == 1


def test_triton_unreachable_fails_clearly_after_retries(tmp_path, sample_bundle) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(
        tmp_path,
        inference={
            "backends": {"local-triton": {"url": dead_url, "timeout_s": 5}},
            "local_triton": {"enabled": False},
        },
        pipeline={"max_attempts": 3, "retry_backoff_s": 0.5, "retry_backoff_max_s": 1},
        relay={"poll_interval_s": 0.2},
    )
    config = write_config(settings, tmp_path / "config.yaml")
    with (
        TestClient(create_app(settings, run_relay=True)) as client,
        worker(config, tmp_path / "worker.log"),
    ):
        engine = client.app.state.runtime.engine
        job_id = post_sample(client, sample_bundle)
        done = wait_for(
            lambda: job_in(engine, job_id, "succeeded", "failed", "dead"),
            90,
            "the job to give up",
            tmp_path / "worker.log",
        )
        view = client.get(f"/jobs/{job_id}").json()
    assert done.status == "failed" and done.attempts == 3
    assert view["status"] == "failed"
    assert view["last_error"].startswith("gave up after 3 attempts")
    assert "local-triton" in view["last_error"] and dead_url.split("//")[1] in view["last_error"]
    assert results_of(engine, job_id) == []
    assert audit_types(engine, job_id).count("retry_scheduled") == 2
