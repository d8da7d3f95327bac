"""No identifier anywhere it should not be, end to end through real processes.

`sluicegate serve` (API + relay + its worker) runs with DEBUG logs; radiology
work may go to a cloud backend once de-identified. The cloud is the DeepSeek
wire-format server from ``tests.deepseek_fault_server``, which records every
request it receives, and it answers with the surrogate it was given so that
re-identification has work to do. After a good bundle and a bad one (whose
rejected content is full of identifiers), every place data could leak is
scanned for the sample patient's identifiers: what the cloud received, every
log file, the audit trail, error responses, the raw database files.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from sluicegate.adapters.fhir import FhirAdapter
from sluicegate.core import db
from sluicegate.core.pipeline import result_aad
from sluicegate.core.runtime import build_runtime
from sluicegate.core.tables import AuditEvent, Result
from tests.conftest import free_port, make_settings
from tests.deepseek_fault_server import FaultServer, Reply, completion
from tests.processes import job_in, start_cli, stop_group, triton_inference, wait_for, write_config

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def cloud():
    server = FaultServer().start()
    yield server
    server.stop()


def identifiers(sample_bundle: bytes) -> list[str]:
    """The sample patient's identifiers, as the FHIR adapter harvests them."""
    [item] = FhirAdapter().parse(sample_bundle, FHIR["Content-Type"], tenant="d", channel="fhir")
    found = {v for values in item.identifiers.values() for v in values if len(v.strip()) >= 4}
    assert {"Testperson", "MRN-0048213", "1961-04-17"} <= found
    return sorted(found)


def leaks(text: str, values: list[str]) -> list[str]:
    low = text.lower()
    return [v for v in values if v.lower() in low]


def test_no_identifier_reaches_cloud_logs_audit_or_disk(
    tmp_path: Path, local_triton: Any, sample_bundle: bytes, sample_json: dict[str, Any], cloud
) -> None:
    known = identifiers(sample_bundle)
    inference = triton_inference(local_triton)
    inference["backends"]["cloud"] = {
        "factory": "sluicegate.inference.deepseek:DeepSeekBackend",
        "zone": "cloud",
        "url": cloud.base_url,
        "model": "deepseek-flash",
        "api_key": "test-key",
        "chat_template": "none",
        "max_retries": 0,
    }
    inference["policy"] = {
        "rules": [{"task": "radiology_report", "deidentified": ["cloud"]}],
    }
    inference["cache"] = {"enabled": False}
    port = free_port()
    settings = make_settings(
        tmp_path,
        api={"port": port},
        inference=inference,
        logging={"level": "DEBUG", "format": "json"},
    )
    config = write_config(settings, tmp_path / "config.yaml")
    cloud.script(
        Reply(json=completion("IMPRESSION: 1. Nodule, follow up [PATIENT_1] in 3 months."))
    )
    log = tmp_path / "serve.log"
    server = start_cli(["serve", "--config", str(config)], log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ok(f"{base}/readyz"), 90, "serve to be ready", log)
        # Scripted after readiness: the health checks (GET /models) take script entries too.
        answer = "IMPRESSION: 1. Nodule, follow up [PATIENT_1] in 3 months."
        cloud.script(Reply(json=completion(answer)))
        accepted = httpx.post(f"{base}/fhir/r4/Bundle", content=sample_bundle, headers=FHIR)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.headers["Content-Location"].rsplit("/", 1)[-1]

        bad = dict(
            sample_json, entry=[*sample_json["entry"], {"resource": {"resourceType": "Nope"}}]
        )
        refused = httpx.post(f"{base}/fhir/r4/Bundle", content=json.dumps(bad), headers=FHIR)
        assert refused.status_code == 422
        assert leaks(refused.text, known) == [], "an error response echoed identifiers"

        runtime = build_runtime(settings)
        try:
            wait_for(
                lambda: job_in(runtime.engine, job_id, "succeeded", "failed"), 120, "the job", log
            )
            assert job_in(runtime.engine, job_id, "succeeded"), "the job did not succeed"
            with Session(runtime.engine) as s:
                result = s.exec(select(Result).where(Result.job_id == job_id)).one()
                report = runtime.sealer.open(result.sealed_body, result_aad(job_id)).decode()
                events = [e.data for e in s.exec(select(AuditEvent)).all()]
            assert result.zone == "cloud"
        finally:
            runtime.close()
    finally:
        stop_group(server)

    # 1. The cloud received de-identified text only, and the hospital got the real name back.
    [post] = cloud.posts()
    assert leaks(json.dumps(post.body), known) == [], "identifiers reached the cloud"
    assert "[PATIENT_1]" in json.dumps(post.body)
    drafted = _report_text(report)
    assert "Testperson" in drafted and "[PATIENT_1]" not in drafted

    # 2. Logs of every process (serve, its worker; JSON at DEBUG), 3. the audit trail.
    logs = (
        [log, *sorted((tmp_path / "logs").rglob("*.log"))]
        if (tmp_path / "logs").exists()
        else [log]
    )
    text = "\n".join(p.read_text(errors="replace") for p in logs if p.exists())
    assert "job.succeeded" in text  # the logs are really there
    assert leaks(text, known) == [], "identifiers in the logs"
    assert leaks("\n".join(events), known) == [], "identifiers in the audit trail"

    # 4. The database files at rest (SQLite: main file and WAL).
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("sluicegate.db*"))
    assert raw, "no database file found"
    assert leaks(raw.decode("latin-1"), known) == [], "identifiers stored in plaintext"


def _report_text(bundle_json: str) -> str:
    """The draft's text/plain presentedForm (base64 in the FHIR JSON)."""
    bundle = json.loads(bundle_json)
    [report] = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    ]
    return base64.b64decode(report["presentedForm"][0]["data"]).decode()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_db_module_is_used(tmp_path: Path) -> None:
    """Guard against a silent change of the database location the scan above relies on."""
    settings = make_settings(tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'sluicegate.db'}"
    assert db.make_engine(settings.database_url).url.database.endswith("sluicegate.db")
