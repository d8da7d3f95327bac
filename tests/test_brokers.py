"""The whole pipeline on each supported broker/database pair, with real parts:
real PostgreSQL, Redis and RabbitMQ servers, a real Celery worker process and
the real local Triton server."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle

from sluicegate.app import create_app
from tests.conftest import AMQP_URL, REDIS_URL, make_settings
from tests.processes import (
    audit_types,
    job_in,
    results_of,
    triton_inference,
    wait_for,
    worker,
    write_config,
)

pytestmark = pytest.mark.integration
FHIR = {"Content-Type": "application/fhir+json"}


def broker_url(kind: str) -> str | None:
    if kind == "redis":
        return f"{REDIS_URL}/{random.randint(1, 15)}"
    if kind == "rabbitmq":
        return AMQP_URL
    return None  # embedded: kombu's SQLAlchemy transport on SQLite


@pytest.mark.parametrize(
    ("database", "broker"),
    [("postgresql", "redis"), ("postgresql", "rabbitmq"), ("sqlite", "embedded")],
)
def test_bundle_to_report_through_a_real_worker(
    request, tmp_path, local_triton, sample_bundle, database, broker
) -> None:
    db_url = request.getfixturevalue("pg_url") if database == "postgresql" else None
    settings = make_settings(
        tmp_path,
        database={"url": db_url, "auto_migrate": True},
        broker={"url": broker_url(broker)},
        inference=triton_inference(local_triton),
    )
    config = write_config(settings, tmp_path / "config.yaml")
    log = tmp_path / "worker.log"
    with TestClient(create_app(settings, run_relay=True)) as client, worker(config, log):
        accepted = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR)
        assert accepted.status_code == 202
        location = accepted.headers["content-location"]
        job_id = location.rsplit("/", 1)[1]
        engine = client.app.state.runtime.engine
        done = wait_for(
            lambda: job_in(engine, job_id, "succeeded", "failed", "dead"),
            120,
            "the job to finish",
            log,
        )
        assert done.status == "succeeded", done.last_error
        assert done.attempts == 1
        result = client.get(f"{location}/result")
        bundle = Bundle.model_validate(result.json())
        report = bundle.entry[0].resource
        assert report.status == "preliminary"
        assert report.conclusion  # the model's text, whatever its wording
        assert report.meta.source.startswith("sluicegate/local-triton/")
    assert len(results_of(engine, job_id)) == 1
    assert audit_types(engine, job_id)[-2:] == ["model_call", "succeeded"]
