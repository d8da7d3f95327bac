"""The audit and keys CLIs as an operator runs them: verify, checkpoint, export, purge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from typer.testing import CliRunner

from sluicegate.cli import app
from sluicegate.core import audit
from sluicegate.core.crypto import Sealer
from sluicegate.core.ingest import accept
from sluicegate.core.pipeline import execute
from sluicegate.core.runtime import build_runtime
from tests.conftest import FAKE_INFERENCE, make_settings
from tests.processes import write_config
from tests.test_pipeline import radiology_item

runner = CliRunner()


@pytest.fixture
def setup(tmp_path: Path, scripted: Any) -> tuple[Path, list[str], sa.Engine]:
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE)
    config = write_config(settings, tmp_path / "config.yaml")
    runtime = build_runtime(settings)
    jobs = []
    for key in ("a", "b"):
        [accepted] = accept(
            runtime.engine,
            runtime.sealer,
            "fhir",
            [radiology_item(key)],
            max_attempts=1,
            lease_s=60,
        )
        assert execute(runtime, accepted.job_id) == "succeeded"
        jobs.append(accepted.job_id)
    runtime.close()
    from sluicegate.core import db

    return config, jobs, db.make_engine(settings.database_url)


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_verify_reports_ok_then_names_the_tampered_event(setup) -> None:
    config, _, engine = setup
    ok = cli("audit", "verify", "-c", str(config))
    assert ok.exit_code == 0, ok.output
    assert "OK   default" in ok.stdout
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET data='{}' WHERE seq=3 AND tenant='default'"))
    bad = cli("audit", "verify", "-c", str(config))
    assert bad.exit_code == 1
    assert "first bad event seq 3" in bad.stdout


def test_checkpoint_then_truncation_is_caught(setup) -> None:
    config, _, engine = setup
    signed = cli("audit", "checkpoint", "-c", str(config))
    assert signed.exit_code == 0 and "signed head at seq" in signed.stdout
    assert cli("audit", "checkpoint", "-c", str(config)).stdout == ""  # nothing new to sign
    assert cli("audit", "checkpoint", "--auto", "-c", str(config)).stdout == ""
    with engine.begin() as conn:
        last = conn.execute(sa.text("SELECT max(seq) FROM audit_events")).scalar_one()
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq=:s"), {"s": last})
        conn.execute(sa.text("UPDATE audit_heads SET last_seq=last_seq-1"))
    bad = cli("audit", "verify", "-c", str(config))
    assert bad.exit_code == 1 and f"seq {last}" in bad.stdout


def test_export_filters_by_job_channel_and_time(setup) -> None:
    config, jobs, _ = setup
    everything = cli("audit", "export", "-c", str(config)).stdout.splitlines()
    one = [
        json.loads(line)
        for line in cli("audit", "export", "--job", jobs[0], "-c", str(config)).stdout.splitlines()
    ]
    assert one and {e["job_id"] for e in one} == {jobs[0]}
    assert one[0]["type"] == "received" and one[-1]["type"] == "succeeded"
    by_channel = cli("audit", "export", "--channel", "fhir", "-c", str(config)).stdout.splitlines()
    assert len(by_channel) == len(everything)
    assert cli("audit", "export", "--channel", "finance", "-c", str(config)).stdout == ""
    future = cli("audit", "export", "--since", "2999-01-01T00:00:00", "-c", str(config))
    assert future.exit_code == 0 and future.stdout == ""


def test_export_as_fhir_audit_events_validates(setup) -> None:
    config, jobs, _ = setup
    lines = cli(
        "audit", "export", "--fhir", "--job", jobs[1], "-c", str(config)
    ).stdout.splitlines()
    assert lines
    for line in lines:
        resource = FhirAuditEvent.model_validate(json.loads(line))
        assert resource.recorded is not None and resource.agent
        assert any(e.what.identifier.value == jobs[1] for e in resource.entity if e.what.identifier)


def test_purge_needs_a_retention(setup) -> None:
    config, _, _ = setup
    result = cli("audit", "purge", "-c", str(config))
    assert result.exit_code == 2
    kept = cli("audit", "purge", "--older-than-days", "30", "-c", str(config))
    assert kept.exit_code == 0 and "purged 0 events" in kept.stdout


def test_keys_cli_shows_a_key_once(setup) -> None:
    config, _, engine = setup
    made = cli(
        "keys",
        "create",
        "--role",
        "ingest",
        "--role",
        "audit",
        "--tenant",
        "bank",
        "-c",
        str(config),
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("sg_")
    key_id = key.split("_")[1]
    listed = cli("keys", "list", "-c", str(config)).stdout
    assert key_id in listed and "audit,ingest" in listed and key not in listed
    with engine.connect() as conn:
        dump = " ".join(str(r) for r in conn.execute(sa.text("SELECT * FROM api_keys")))
    assert key.split("_", 2)[2] not in dump  # only the keyed hash is stored
    assert cli("keys", "create", "--role", "root", "-c", str(config)).exit_code == 2
    assert cli("keys", "revoke", key_id, "-c", str(config)).exit_code == 0
    assert "revoked" in cli("keys", "list", "-c", str(config)).stdout
    assert cli("keys", "revoke", key_id, "-c", str(config)).exit_code == 1


def test_sealed_payload_round_trip() -> None:
    sealer = Sealer({"k1": b"\x01" * 32}, "k1")
    payload = audit.sealed_payload(sealer, {"prompt": "Jane Testperson", "n": 1})
    assert payload["key_id"] == "k1" and payload["alg"] == "A256GCM"
    assert "Testperson" not in json.dumps(payload)
    assert audit.open_payload(sealer, payload) == {"prompt": "Jane Testperson", "n": 1}
