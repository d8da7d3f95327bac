"""Every route x every role x two tenants: only the intended combinations get through.

The walk reads the app's route table at run time, so routes that adapters add
later are covered (and must fit the policy) without touching this test.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from sluicegate.app import create_app
from sluicegate.core.pipeline import execute
from sluicegate.core.security import keys
from sluicegate.core.security.auth import route_table
from sluicegate.core.tables import AuditEvent
from tests.conftest import FAKE_INFERENCE, make_settings

ROLES = ["ingest", "read_results", "audit", "admin"]
PUBLIC = {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
# What each core route is meant to need (written out here, not read from the policy).
CORE = {
    ("GET", "/jobs/{job_id}"): "read_results",
    ("GET", "/jobs/{job_id}/result"): "read_results",
    ("GET", "/jobs/{job_id}/audit"): "audit",
    ("GET", "/audit/events"): "audit",
    ("GET", "/audit/verify"): "audit",
    ("GET", "/webhooks/deliveries"): "admin",
    ("POST", "/webhooks/deliveries/{delivery_id}/replay"): "admin",
    ("GET", "/keys"): "admin",
    ("POST", "/keys"): "admin",
    ("DELETE", "/keys/{key_id}"): "admin",
    ("GET", "/metrics"): "admin",
}
ADAPTER_PREFIXES = ("/fhir/", "/hl7", "/finance")
FHIR = {"Content-Type": "application/fhir+json"}


def secured(tmp_path: Any, **extra: Any) -> Any:
    return make_settings(
        tmp_path,
        inference=FAKE_INFERENCE,
        security={"auth": "enabled", **extra},
    )


@pytest.fixture
def world(tmp_path, scripted, sample_bundle):
    app = create_app(secured(tmp_path), run_relay=False)
    runtime = app.state.runtime
    issued: dict[tuple[str, str], str] = {}
    for tenant in ("default", "other"):
        for role in ROLES:
            issued[(tenant, role)] = keys.create(runtime.engine, runtime.sealer, tenant, [role])[1]
    with TestClient(app) as client:
        posted = client.post(
            "/fhir/r4/Bundle",
            content=sample_bundle,
            headers={**FHIR, "Authorization": f"Bearer {issued[('default', 'ingest')]}"},
        )
        assert posted.status_code == 202, posted.text
        job_id = posted.headers["content-location"].rsplit("/", 1)[1]
        assert execute(runtime, job_id) == "succeeded"
        yield client, issued, job_id


def expected_role(method: str, path: str) -> str | None:
    if path in PUBLIC:
        return "public"
    lookup = "GET" if method == "HEAD" else method
    if (lookup, path) in CORE:
        return CORE[(lookup, path)]
    if path.startswith(ADAPTER_PREFIXES):
        return "read_results" if lookup == "GET" else "ingest"
    return None


def concrete(path: str, job_id: str) -> str:
    path = path.replace("{job_id}", job_id)
    return re.sub(r"\{[^}]+\}", "x", path)


def all_routes(client: TestClient) -> list[tuple[str, str]]:
    return [
        (method, info.path) for info in route_table(client.app) for method in sorted(info.methods)
    ]


def is_job_route(path: str) -> bool:
    return "{job_id}" in path


def test_route_table_by_role_and_tenant(world) -> None:
    client, issued, job_id = world
    routes = all_routes(client)
    assert len(routes) > 15  # the adapters' routes are in the walk
    undeclared = [(m, p) for m, p in routes if expected_role(m, p) is None]
    assert not undeclared, f"routes with no intended role: {undeclared}"
    failures: list[str] = []

    def call(method: str, path: str, key: str | None) -> int:
        """The status, or 0 when the handler (not the policy) answered 401/403."""
        headers = {"X-API-Key": key} if key else {}
        response = client.request(method, concrete(path, job_id), headers=headers)
        if response.status_code in (401, 403) and "refused_by" not in response.text:
            return 0  # e.g. /metrics' own address allowlist
        return response.status_code

    for method, path in routes:
        role = expected_role(method, path)
        if role == "public":
            if call(method, path, None) in (401, 403):
                failures.append(f"{method} {path}: public route refused")
            continue
        for key, label in ((None, "no key"), ("sg_nope_forged", "bad key")):
            if (status := call(method, path, key)) != 401:
                failures.append(f"{method} {path} with {label}: {status}, wanted 401")
        for (tenant, held), key in issued.items():
            status = call(method, path, key)
            allowed = held == role or held == "admin"
            if not allowed:
                if status != 403:
                    failures.append(f"{method} {path} as {tenant}/{held}: {status}, wanted 403")
            elif tenant == "default":
                if status in (401, 403) or (is_job_route(path) and status == 404):
                    failures.append(f"{method} {path} as {tenant}/{held}: refused ({status})")
            elif is_job_route(path) or (path.startswith(ADAPTER_PREFIXES) and method == "GET"):
                if status != 404:  # another tenant's ids look absent
                    failures.append(f"{method} {path} as {tenant}/{held}: {status}, wanted 404")
            elif path.startswith(ADAPTER_PREFIXES):
                if status != 403:  # another tenant's channel
                    failures.append(f"{method} {path} as {tenant}/{held}: {status}, wanted 403")
            elif status in (401, 403):
                failures.append(f"{method} {path} as {tenant}/{held}: refused ({status})")
    assert not failures, "\n".join(failures)


def test_a_route_without_a_declared_role_is_refused(world) -> None:
    client, issued, _ = world

    @client.app.get("/undeclared")
    def undeclared() -> dict[str, str]:
        return {"leak": "yes"}

    response = client.get("/undeclared", headers={"X-API-Key": issued[("default", "admin")]})
    assert response.status_code == 403
    assert client.get("/undeclared").status_code == 401


def test_other_tenant_sees_none_of_the_trail_or_deliveries(world) -> None:
    client, issued, job_id = world
    mine = client.get(f"/jobs/{job_id}/audit", headers={"X-API-Key": issued[("default", "audit")]})
    assert mine.status_code == 200
    types = [e["type"] for e in mine.json()["events"]]
    assert types[0] == "received" and "succeeded" in types
    other = {"Authorization": f"Bearer {issued[('other', 'audit')]}"}
    exported = client.get("/audit/events", headers=other)
    assert exported.status_code == 200
    assert job_id not in exported.text
    assert all(line.count('"tenant":"other"') for line in exported.text.splitlines())


def test_bad_keys_are_audited_and_revocation_is_immediate(world) -> None:
    client, issued, job_id = world
    runtime = client.app.state.runtime
    assert client.get(f"/jobs/{job_id}", headers={"X-API-Key": "sg_x_guess"}).status_code == 401
    key = issued[("default", "read_results")]
    assert client.get(f"/jobs/{job_id}", headers={"X-API-Key": key}).status_code == 200
    key_id = key.split("_")[1]
    admin = {"X-API-Key": issued[("default", "admin")]}
    assert client.delete(f"/keys/{key_id}", headers=admin).status_code == 204
    assert client.get(f"/jobs/{job_id}", headers={"X-API-Key": key}).status_code == 401
    with Session(runtime.engine) as session:
        kinds = [(e.tenant, e.type) for e in session.exec(select(AuditEvent)).all()]
        security = [
            e.data for e in session.exec(select(AuditEvent)).all() if e.type == "auth_failed"
        ]
    assert ("_security", "auth_failed") in kinds and ("default", "key_revoked") in kinds
    assert all("sg_x_guess" not in data for data in security)  # the key itself is never kept


def test_admin_creates_a_key_shown_once(world) -> None:
    client, issued, job_id = world
    admin = {"X-API-Key": issued[("default", "admin")]}
    made = client.post("/keys", json={"roles": ["read_results"], "name": "etl"}, headers=admin)
    assert made.status_code == 201
    key = made.json()["key"]
    assert (
        client.get(f"/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    )
    listed = client.get("/keys", headers=admin).json()
    assert "key" not in listed[0] and key not in str(listed)
    assert {k["tenant"] for k in listed} == {"default"}


def test_bootstrap_admin_key_from_environment(tmp_path, scripted, monkeypatch) -> None:
    monkeypatch.setenv("SLUICEGATE_BOOTSTRAP_ADMIN_KEY", "boot-strap-key-0123456789")
    app = create_app(secured(tmp_path), run_relay=False)
    with TestClient(app) as client:
        ok = client.get("/keys", headers={"Authorization": "Bearer boot-strap-key-0123456789"})
        assert ok.status_code == 200
        assert (
            client.get("/keys", headers={"X-API-Key": "boot-strap-key-012345678"}).status_code
            == 401
        )


def test_metrics_can_be_made_public(tmp_path, scripted) -> None:
    app = create_app(secured(tmp_path, public_paths=["/healthz", "/metrics"]), run_relay=False)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 401  # no longer listed as public
        assert client.get("/metrics").status_code != 401


def test_key_bound_to_source_networks(tmp_path, scripted) -> None:
    app = create_app(secured(tmp_path), run_relay=False)
    runtime = app.state.runtime
    _, key = keys.create(
        runtime.engine, runtime.sealer, "default", ["admin"], allow_from=["10.20.0.0/16"]
    )
    with pytest.raises(ValueError):
        keys.create(runtime.engine, runtime.sealer, "default", ["admin"], allow_from=["nope"])
    headers = {"X-API-Key": key}
    with TestClient(app, client=("10.20.3.4", 40000)) as inside:
        assert inside.get("/keys", headers=headers).status_code == 200
        listed = inside.get("/keys", headers=headers).json()
        assert listed[0]["allow_from"] == ["10.20.0.0/16"]
    with TestClient(app, client=("10.21.3.4", 40000)) as outside:
        refused = outside.get("/keys", headers=headers)
        assert refused.status_code == 403 and "address" in refused.json()["detail"]


def test_demo_ends_with_the_chain_verification(world) -> None:
    import io

    from rich.console import Console

    from sluicegate.demo import _print_audit_verification

    client, issued, _ = world
    out = io.StringIO()
    client.headers["X-API-Key"] = issued[("default", "audit")]
    assert _print_audit_verification(Console(file=out, width=200), client) == 0
    assert "Audit chain default:" in out.getvalue() and "intact" in out.getvalue()


def test_config_changes_are_audited(tmp_path, scripted) -> None:
    def start(**security: Any) -> list[AuditEvent]:
        app = create_app(secured(tmp_path, **security), run_relay=False)
        with TestClient(app), Session(app.state.runtime.engine) as session:
            return list(
                session.exec(select(AuditEvent).where(AuditEvent.type == "config_changed")).all()
            )

    assert len(start()) == 1
    assert len(start()) == 1  # same config again: nothing new
    changed = start(metrics_role="audit")
    assert len(changed) == 2 and changed[0].tenant == "_security"
    assert "metrics_role" not in changed[1].data  # a keyed digest, not the config


def test_sealed_payloads_are_revealed_only_on_request_and_on_record(world) -> None:
    from sluicegate.core import audit
    from sluicegate.core.db import transaction

    client, issued, job_id = world
    runtime = client.app.state.runtime
    with transaction(runtime.engine) as session:
        sealed = audit.sealed_payload(runtime.sealer, {"prompt": "Jane Testperson"})
        audit.record(session, "default", "sealed_sample", job_id, request=sealed)
    headers = {"X-API-Key": issued[("default", "audit")]}
    plain = client.get(f"/jobs/{job_id}/audit", headers=headers)
    assert "Testperson" not in plain.text and sealed["sealed"] in plain.text
    revealed = client.get(f"/jobs/{job_id}/audit?reveal=true", headers=headers).json()
    sample = next(e for e in revealed["events"] if e["type"] == "sealed_sample")
    assert sample["data"]["request"] == {"prompt": "Jane Testperson"}
    trail = client.get(f"/jobs/{job_id}/audit", headers=headers).json()["events"]
    assert trail[-1]["type"] == "payload_revealed"
    assert trail[-1]["data"]["key_id"] == issued[("default", "audit")].split("_")[1]


def test_key_bound_to_channels(tmp_path, scripted, sample_bundle) -> None:
    app = create_app(secured(tmp_path), run_relay=False)
    runtime = app.state.runtime
    _, finance_only = keys.create(
        runtime.engine, runtime.sealer, "default", ["ingest", "read_results"], channels=["finance"]
    )
    _, fhir_only = keys.create(
        runtime.engine, runtime.sealer, "default", ["ingest", "read_results"], channels=["fhir"]
    )
    with TestClient(app) as client:
        refused = client.post(
            "/fhir/r4/Bundle", content=sample_bundle, headers={**FHIR, "X-API-Key": finance_only}
        )
        assert refused.status_code == 403
        hidden = client.get("/fhir/r4/DiagnosticReport", headers={"X-API-Key": finance_only})
        assert hidden.status_code == 404
        accepted = client.post(
            "/fhir/r4/Bundle", content=sample_bundle, headers={**FHIR, "X-API-Key": fhir_only}
        )
        assert accepted.status_code == 202
        job = accepted.headers["content-location"]
        assert client.get(job, headers={"X-API-Key": fhir_only}).status_code == 200
        assert client.get(job, headers={"X-API-Key": finance_only}).status_code == 404


@pytest.mark.parametrize("cache_s", [0.0, 3600.0])
def test_revocation_by_another_process_and_the_key_cache(tmp_path, scripted, cache_s) -> None:
    app = create_app(secured(tmp_path, key_cache_s=cache_s), run_relay=False)
    runtime = app.state.runtime
    row, key = keys.create(runtime.engine, runtime.sealer, "default", ["admin"])
    with TestClient(app) as client:
        assert client.get("/keys", headers={"X-API-Key": key}).status_code == 200
        assert keys.revoke(runtime.engine, row.id)  # what `sluicegate keys revoke` does
        status = client.get("/keys", headers={"X-API-Key": key}).status_code
        assert status == (401 if cache_s == 0 else 200)  # documented: within key_cache_s
        client.app.state.key_cache.clear()
        assert client.get("/keys", headers={"X-API-Key": key}).status_code == 401


def test_a_flood_of_bad_keys_is_summarised_in_the_audit(world) -> None:
    client, _, job_id = world
    runtime = client.app.state.runtime
    for n in range(60):
        assert (
            client.get(f"/jobs/{job_id}", headers={"X-API-Key": f"sg_bad_{n}"}).status_code == 401
        )
    with Session(runtime.engine) as session:
        failures = session.exec(select(AuditEvent).where(AuditEvent.type == "auth_failed")).all()
    assert 0 < len(failures) <= 30  # the rest are counted, not written one by one


def test_refusal_limiter_reports_what_it_left_out() -> None:
    from sluicegate.core.security.auth import RefusalLimiter

    limiter = RefusalLimiter(per_minute=3)
    assert [limiter.admit("10.0.0.1") for _ in range(5)] == [0, 0, 0, None, None]
    assert limiter.admit("10.0.0.2") == 0  # per client
    start, admitted, dropped = limiter._windows["10.0.0.1"]
    limiter._windows["10.0.0.1"] = (start - 61, admitted, dropped)  # a minute later
    assert limiter.admit("10.0.0.1") == 2
