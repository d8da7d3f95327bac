"""End to end through real processes: `sluicegate serve` (uvicorn + relay + worker
child) against the real local Triton, and `sluicegate demo` exactly as a newcomer
runs it (its own Triton, cold start, under two minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.conftest import free_port, make_settings
from tests.processes import start_cli, triton_inference, wait_for, write_config

pytestmark = pytest.mark.e2e
FHIR = {"Content-Type": "application/fhir+json"}


def test_serve_end_to_end(tmp_path, local_triton, sample_bundle, sample_json) -> None:
    port = free_port()
    settings = make_settings(tmp_path, api={"port": port}, inference=triton_inference(local_triton))
    config = write_config(settings, tmp_path / "config.yaml")
    log = tmp_path / "serve.log"
    server = start_cli(["serve", "--config", str(config)], log)
    children: list[int] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            def ready() -> bool:
                try:
                    return client.get("/readyz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, 60, "serve to be ready", log)
            bad = client.post("/fhir/r4/Bundle", content=b"{not json", headers=FHIR)
            assert bad.status_code == 400
            assert bad.json()["resourceType"] == "OperationOutcome"

            accepted = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR)
            assert accepted.status_code == 202
            location = accepted.headers["content-location"]
            job = wait_for(
                lambda: (
                    (j := client.get(location).json())["status"] in ("succeeded", "failed", "dead")
                    and j
                ),
                120,
                "the job to finish",
                log,
            )
            assert job["status"] == "succeeded", job["last_error"]
            result = client.get(job["result"])
            assert result.headers["content-type"] == "application/fhir+json"
            report = Bundle.model_validate(result.json()).entry[0].resource
            assert report.status == "preliminary"
            text = report.presentedForm[0].data.decode()  # the model decodes base64
            assert text.strip() == report.conclusion.strip()
            assert {t.code for t in report.meta.tag} >= {"AIAST"}
            _async_transaction_round_trip(client, sample_json, log)
        children = _children(server.pid)
        assert children, "serve should run its worker as a child process"
    finally:
        server.terminate()  # SIGTERM to serve alone: it must stop its children itself
        server.wait(60)
    assert not [pid for pid in children if _alive(pid)]
    # Privacy: no identifier of the sample patient in any log or at rest in the database.
    logs = b"".join(p.read_bytes() for p in tmp_path.rglob("*.log"))
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("sluicegate.db*"))
    assert logs and stored
    for value in (b"Testperson", b"MRN-0048213", b"555-0142", b"1961-04-17"):
        assert value not in logs, f"{value!r} leaked into a log"
        assert value not in stored, f"{value!r} stored in plaintext"


def _async_transaction_round_trip(client: httpx.Client, sample: dict, log: Path) -> None:
    """A transaction with Prefer: respond-async, polled at its FHIR status location."""
    doc = json.loads(json.dumps(sample))
    doc.update(id="e2e-async-transaction", type="transaction")
    for entry in doc["entry"]:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    answer = client.post("/fhir/r4", json=doc, headers={**FHIR, "Prefer": "respond-async"})
    assert answer.status_code == 202, answer.text
    status_url = answer.headers["content-location"]
    assert status_url.startswith("/fhir/r4/_async/")
    final = wait_for(
        lambda: (r := client.get(status_url)).status_code == 200 and r,
        120,
        "the async status to complete",
        log,
    )
    bundle = Bundle.model_validate(final.json())
    assert bundle.type == "batch-response"
    [entry] = bundle.entry
    assert entry.response.status == "201 Created"
    read = client.get("/fhir/r4/" + entry.response.location.removesuffix("/_history/1"))
    assert read.status_code == 200 and read.json()["status"] == "preliminary"


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


def test_demo_command_prints_a_preliminary_report_in_time(tmp_path: Path) -> None:
    env = {**os.environ, "SLUICEGATE_HOME": str(tmp_path / "home")}
    env.pop("SLUICEGATE_CONFIG", None)
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "sluicegate.cli", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert '"resourceType": "DiagnosticReport"' in output
    assert '"status": "preliminary"' in output
    # The FHIR transaction round trip: response entries, a new job, search and read.
    assert "transaction-response: 200, 1 job(s) created" in output
    assert output.count("200 OK") == 3 and "202 Accepted" in output
    assert output.count("Job succeeded after 1 attempt(s)") >= 2  # bundle, transaction, more
    assert "Report found by MRN search and read back" in output
    assert "→ searchset, 2 match(es), the new DiagnosticReport among them" in output
    assert "→ status preliminary" in output
    assert "FHIR transaction round trip complete." in output
    # Privacy: the first draft went to the cloud stand-in de-identified, came back re-identified.
    assert "Privacy: the same job, three views" in output
    assert "[PATIENT_1]" in output
    assert "No identifier left the building" in output
    # HL7 over MLLP (on-prem), a financial summary (on-prem), the audit chain verified.
    assert "MSA|AA|" in output and "HL7 v2: ACKed over MLLP" in output
    assert "Financial summary:" in output
    assert ", intact" in output
    # The routes on record: radiology via the cloud stand-in, HL7 and finance on-prem.
    assert "Where each job was drafted" in output
    assert "cloud-standin" in output and "local-triton" in output
    assert elapsed < 120, f"demo took {elapsed:.0f}s"
    assert (tmp_path / "home" / "sluicegate.db").exists()  # state stays in SLUICEGATE_HOME
