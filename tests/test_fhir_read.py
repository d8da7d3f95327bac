"""FHIR read and search of produced reports, as an HIS polls for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.provenance import Provenance

from sluicegate.app import create_app
from sluicegate.core.pipeline import execute
from tests.conftest import FAKE_INFERENCE, make_settings

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def produced(tmp_path, scripted, sample_bundle, sample_json):
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE)
    with TestClient(create_app(settings, run_relay=False)) as client:
        location = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR).headers[
            "content-location"
        ]
        job_id = location.rsplit("/", 1)[1]
        assert execute(client.app.state.runtime, job_id) == "succeeded"
        result = client.get(f"{location}/result").json()
        yield client, result, sample_json


def _sample_patient(sample_json):
    return next(
        e["resource"] for e in sample_json["entry"] if e["resource"]["resourceType"] == "Patient"
    )


def _ids(searchset: dict) -> list[str]:
    Bundle.model_validate(searchset)
    assert searchset["type"] == "searchset"
    return [e["resource"]["id"] for e in searchset["entry"] if e["search"]["mode"] == "match"]


def test_read_report_and_provenance(produced) -> None:
    client, result, _ = produced
    report = result["entry"][0]["resource"]
    read = client.get(f"/fhir/r4/DiagnosticReport/{report['id']}")
    assert read.status_code == 200
    assert read.headers["content-type"] == "application/fhir+json"
    assert read.headers["etag"] == 'W/"1"'
    served = DiagnosticReport.model_validate(read.json())
    assert served.status == "preliminary" and served.meta.lastUpdated is not None

    prov_id = next(
        e["resource"]["id"]
        for e in result["entry"]
        if e["resource"]["resourceType"] == "Provenance"
    )
    prov = client.get(f"/fhir/r4/Provenance/{prov_id}").json()
    Provenance.model_validate(prov)
    assert prov["target"][0]["reference"] == f"DiagnosticReport/{report['id']}"
    contained = {c["id"] for c in prov["contained"]}
    assert {a["who"]["reference"][1:] for a in prov["agent"]} <= contained


def test_unknown_ids_and_types_are_operation_outcomes(produced) -> None:
    client, _, _ = produced
    missing = client.get("/fhir/r4/DiagnosticReport/nope")
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    assert missing.json()["issue"][0]["code"] == "not-found"
    assert client.get("/fhir/r4/Patient/x").status_code == 404
    assert client.get("/fhir/r4/metadata").json()["resourceType"] == "CapabilityStatement"


def test_search_by_patient_identifier_order_and_last_updated(produced) -> None:
    client, result, sample = produced
    report_id = result["entry"][0]["resource"]["id"]
    ident = _sample_patient(sample)["identifier"][0]
    by_pair = client.get(
        "/fhir/r4/DiagnosticReport",
        params={"subject:identifier": f"{ident['system']}|{ident['value']}"},
    )
    assert _ids(by_pair.json()) == [report_id]
    assert _ids(
        client.get(
            "/fhir/r4/DiagnosticReport", params={"subject:identifier": ident["value"]}
        ).json()
    ) == [report_id]
    assert (
        _ids(
            client.get(
                "/fhir/r4/DiagnosticReport", params={"subject:identifier": "urn:x|someone-else"}
            ).json()
        )
        == []
    )

    order = next(
        e["resource"] for e in sample["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    )
    assert _ids(
        client.get(
            "/fhir/r4/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}
        ).json()
    ) == [report_id]

    today = datetime.now(UTC).date()
    since = client.get("/fhir/r4/DiagnosticReport", params={"_lastUpdated": f"ge{today}"})
    assert _ids(since.json()) == [report_id]
    tomorrow = today + timedelta(days=1)
    assert (
        _ids(
            client.get("/fhir/r4/DiagnosticReport", params={"_lastUpdated": f"ge{tomorrow}"}).json()
        )
        == []
    )
    bad = client.get("/fhir/r4/DiagnosticReport", params={"_lastUpdated": "geyesterday"})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"


def test_provenance_search_by_target_and_unknown_params_reported(produced) -> None:
    client, result, _ = produced
    report_id = result["entry"][0]["resource"]["id"]
    found = client.get(
        "/fhir/r4/Provenance", params={"target": f"DiagnosticReport/{report_id}", "foo": "bar"}
    ).json()
    assert len(_ids(found)) == 1
    outcome = [e for e in found["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "foo" in outcome[0]["resource"]["issue"][0]["diagnostics"]


def test_identifiers_are_not_stored_in_plaintext(produced) -> None:
    client, _, sample = produced
    from sqlmodel import Session, select

    from sluicegate.core.tables import PublishedResource, SearchToken

    value = _sample_patient(sample)["identifier"][0]["value"].encode()
    with Session(client.app.state.runtime.engine) as s:
        blobs = [r.sealed_body for r in s.exec(select(PublishedResource)).all()]
        tokens = [t.token.encode() for t in s.exec(select(SearchToken)).all()]
    assert blobs and tokens
    assert not any(value in b for b in blobs + tokens)
