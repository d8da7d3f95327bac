"""No plaintext identifiers in the database files, a PostgreSQL dump, or the logs.

One end-to-end run (ingest over HTTP with a key, the job, result and FHIR read,
the audit trail) and then a byte-level search for the sample patient's
identifiers; then `keys rotate-data` re-wraps everything under a new key.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from sluicegate.app import create_app
from sluicegate.core import audit
from sluicegate.core.config import LoggingConfig
from sluicegate.core.crypto import Sealer
from sluicegate.core.logging import configure_logging
from sluicegate.core.pipeline import execute
from sluicegate.core.security import keys
from sluicegate.core.security.rotation import SEALED, key_id_of, rotate_data
from tests.conftest import FAKE_INFERENCE, make_settings

IDENTIFIERS = ["MRN-0048213", "0048213", "Testperson", "555-0142", "Example Lane"]
FHIR = {"Content-Type": "application/fhir+json"}
KEY_A = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # base64 of 32 bytes
KEY_B = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="


def run_end_to_end(settings: Any, sample_bundle: bytes) -> tuple[Any, str]:
    app = create_app(settings, run_relay=False)
    runtime = app.state.runtime
    _, key = keys.create(runtime.engine, runtime.sealer, "default", ["admin"])
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        posted = client.post("/fhir/r4/Bundle", content=sample_bundle, headers={**FHIR, **auth})
        assert posted.status_code == 202
        job_id = posted.headers["content-location"].rsplit("/", 1)[1]
        assert execute(runtime, job_id) == "succeeded"
        result = client.get(f"/jobs/{job_id}/result", headers=auth)
        assert result.status_code == 200
        assert result.content  # the report itself, opened from its sealed row
        assert client.get(f"/jobs/{job_id}/audit", headers=auth).status_code == 200
        assert client.get("/audit/events?format=fhir", headers=auth).status_code == 200
    return runtime, job_id


@pytest.fixture
def log_stream() -> Any:
    stream = io.StringIO()
    configure_logging(LoggingConfig(format="json", level="DEBUG"))
    logging.getLogger().handlers[0].stream = stream  # type: ignore[attr-defined]
    yield stream
    configure_logging(LoggingConfig())


def assert_no_identifiers(blob: bytes, where: str) -> None:
    for value in IDENTIFIERS:
        assert value.encode() not in blob, f"{value!r} in plaintext in {where}"


def test_sqlite_file_and_logs_hold_no_identifiers(
    tmp_path: Path, scripted: Any, sample_bundle: bytes, log_stream: io.StringIO
) -> None:
    assert b"MRN-0048213" in sample_bundle and b"Testperson" in sample_bundle
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE, security={"auth": "enabled"})
    runtime, _ = run_end_to_end(settings, sample_bundle)
    runtime.engine.dispose()
    files = [p for p in tmp_path.rglob("*.db*") if p.is_file()]
    assert any(p.name == "sluicegate.db" for p in files)
    for path in files:  # the database, its WAL, the broker
        assert_no_identifiers(path.read_bytes(), path.name)
    assert log_stream.getvalue(), "the run logged nothing: the scan would prove nothing"
    assert_no_identifiers(log_stream.getvalue().encode(), "logs")


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump not installed")
def test_postgres_dump_holds_no_identifiers(
    tmp_path: Path, scripted: Any, sample_bundle: bytes, pg_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        inference=FAKE_INFERENCE,
        database={"url": pg_url, "auto_migrate": True},
        security={"auth": "enabled"},
    )
    runtime, _ = run_end_to_end(settings, sample_bundle)
    runtime.engine.dispose()
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    dump = subprocess.run(
        ["pg_dump", "--data-only", "--no-owner", dsn], capture_output=True, check=True, timeout=120
    ).stdout
    assert b"COPY public.work_items" in dump and b"COPY public.audit_events" in dump
    assert_no_identifiers(dump, "pg_dump")


def test_rotate_data_rewraps_every_sealed_row(
    tmp_path: Path, scripted: Any, sample_bundle: bytes
) -> None:
    settings = make_settings(
        tmp_path,
        inference=FAKE_INFERENCE,
        encryption={"keys": {"a": KEY_A}, "active_key_id": "a"},
    )
    runtime, job_id = run_end_to_end(settings, sample_bundle)
    with Session(runtime.engine) as session:
        payload = audit.sealed_payload(runtime.sealer, {"prompt": "Jane Testperson"})
        audit.record(session, "default", "sealed_sample", job_id, request=payload)
        session.commit()
    rotated = settings.model_copy(
        update={
            "encryption": settings.encryption.model_copy(
                update={"keys": {"a": KEY_A, "b": KEY_B}, "active_key_id": "b"}
            )
        }
    )
    app = create_app(rotated, run_relay=False)
    new_runtime = app.state.runtime
    counts = rotate_data(new_runtime.engine, new_runtime.sealer)
    assert counts["work_items"] == 1 and counts["results"] == 1 and counts["vaults"] >= 0
    with Session(new_runtime.engine) as session:
        for spec in SEALED:
            for row in session.exec(select(spec.table)).all():
                blob = getattr(row, spec.column)
                assert key_id_of(blob) == "b"
                new_runtime.sealer.open(blob, spec.aad(row))
        event = session.exec(
            select(audit.AuditEvent).where(audit.AuditEvent.type == "sealed_sample")
        ).one()
    sealed = json.loads(event.data)["request"]
    assert sealed["key_id"] == "a"  # audit payloads keep their key: the chain covers them
    assert audit.open_payload(new_runtime.sealer, sealed) == {"prompt": "Jane Testperson"}
    only_b = Sealer({"b": base64.b64decode(KEY_B)}, "b")
    with Session(new_runtime.engine) as session:
        for spec in SEALED:
            for row in session.exec(select(spec.table)).all():
                only_b.open(getattr(row, spec.column), spec.aad(row))  # old key not needed
        assert audit.verify(session, "default", new_runtime.sealer).ok
