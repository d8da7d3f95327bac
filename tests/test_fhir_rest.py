"""FHIR R4 REST surface: transaction/batch, single-resource create, negotiation,
asynchronous requests, $validate and the CapabilityStatement (in-process)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlmodel import Session, select

from sluicegate.app import create_app
from sluicegate.core.pipeline import execute
from sluicegate.core.tables import Job, OutboxMessage, WorkItemRow
from tests.conftest import FAKE_INFERENCE, make_settings

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FHIR_VALID = CORPUS / "fhir" / "valid"
FHIR = {"Content-Type": "application/fhir+json"}
ASYNC = {**FHIR, "Prefer": "respond-async"}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def client(tmp_path, scripted):
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE)
    with TestClient(create_app(settings, run_relay=False)) as test_client:
        yield test_client


def stored_rows(client: TestClient) -> int:
    app: Any = client.app
    with Session(app.state.runtime.engine) as s:
        return sum(len(s.exec(select(t)).all()) for t in (WorkItemRow, Job, OutboxMessage))


def corpus(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FHIR_VALID / name).read_text(encoding="utf-8-sig"))
    return data


def as_request_bundle(sample: dict[str, Any], kind: str, method: str = "POST") -> dict[str, Any]:
    """The radiology sample as a transaction or batch: every entry a POST (or PUT)."""
    doc = copy.deepcopy(sample)
    doc["type"] = kind
    for entry in doc["entry"]:
        res = entry["resource"]
        url = res["resourceType"] if method == "POST" else f"{res['resourceType']}/{res['id']}"
        entry["request"] = {"method": method, "url": url}
    return doc


def post(client: TestClient, path: str, doc: Any, headers: dict[str, str] = FHIR) -> Any:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return client.post(path, content=body, headers=headers)


def assert_outcome(response: Any, status: int, code: str | None = None) -> OperationOutcome:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = OperationOutcome.model_validate(response.json())
    if code is not None:
        assert code in {i.code for i in outcome.issue}
    return outcome


def statuses(bundle: dict[str, Any]) -> list[str]:
    return [e["response"]["status"] for e in bundle["entry"]]


# --- transaction ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_transaction_answers_one_response_per_entry(client, sample_json, method) -> None:
    response = post(client, "/fhir/r4", as_request_bundle(sample_json, "transaction", method))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction-response"
    # Patient, ServiceRequest and ImagingStudy are context; the report became the job.
    assert statuses(bundle) == ["200 OK", "200 OK", "200 OK", "202 Accepted"]
    location = bundle["entry"][3]["response"]["location"]
    assert location.startswith("/jobs/")
    assert client.get(location).json()["status"] == "queued"
    assert stored_rows(client) == 3


def _retype(entry: dict[str, Any], rtype: str) -> None:
    entry["resource"]["resourceType"] = entry["request"]["url"] = rtype


@pytest.mark.parametrize(
    ("spoil", "status", "code", "where"),
    [
        (lambda d: d["entry"][1]["resource"].update(bogus=1), 422, "structure", "entry[1]"),
        (lambda d: d["entry"][0]["request"].update(method="DELETE"), 405, "not-supported", "[0]"),
        (lambda d: d["entry"][2].pop("request"), 400, "required", "entry[2].request"),
        (lambda d: d["entry"][3]["request"].update(url="Patient"), 400, "invalid", "entry[3]"),
        (lambda d: _retype(d["entry"][0], "Nope"), 422, "structure", "entry[0].resource"),
    ],
)
def test_transaction_is_all_or_nothing(client, sample_json, spoil, status, code, where) -> None:
    doc = as_request_bundle(sample_json, "transaction")
    spoil(doc)
    outcome = assert_outcome(post(client, "/fhir/r4", doc), status, code)
    assert any(where in str(i.expression) for i in outcome.issue)
    assert stored_rows(client) == 0


def test_put_must_name_the_resource_id(client, sample_json) -> None:
    doc = as_request_bundle(sample_json, "transaction", "PUT")
    doc["entry"][3]["request"]["url"] = "DiagnosticReport/someone-else"
    assert_outcome(post(client, "/fhir/r4", doc), 400, "invalid")
    assert stored_rows(client) == 0


def test_transaction_without_radiology_work_is_rejected(client, sample_json) -> None:
    doc = as_request_bundle(sample_json, "transaction")
    doc["entry"] = doc["entry"][:1]  # the Patient alone
    assert_outcome(post(client, "/fhir/r4", doc), 422, "business-rule")
    assert stored_rows(client) == 0


# --- batch ---------------------------------------------------------------------


def test_batch_accepts_good_entries_and_answers_bad_ones(client, sample_json) -> None:
    doc = as_request_bundle(sample_json, "batch")
    # The ServiceRequest is invalid; the report that refers to it is still judged alone.
    doc["entry"][1]["resource"]["bogus"] = 1
    doc["entry"].append({"request": {"method": "GET", "url": "Patient/x"}})
    doc["entry"].append({"request": {"method": "POST", "url": "Foo"}, "resource": {"x": 1}})
    response = post(client, "/fhir/r4", doc)
    assert response.status_code == 200
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "batch-response"
    assert statuses(bundle) == [
        "200 OK",
        "422 Unprocessable Entity",
        "200 OK",
        "202 Accepted",
        "405 Method Not Allowed",
        "422 Unprocessable Entity",
    ]
    bad = OperationOutcome.model_validate(bundle["entry"][1]["response"]["outcome"])
    assert bad.issue[0].expression == ["Bundle.entry[1].resource.bogus"]
    assert bundle["entry"][5]["response"]["outcome"]["issue"][0]["code"] == "structure"
    assert client.get(bundle["entry"][3]["response"]["location"]).status_code == 200
    assert stored_rows(client) == 3


def test_batch_refuses_entries_whose_full_url_is_the_problem(client, sample_json) -> None:
    doc = as_request_bundle(sample_json, "batch")
    note = {"resourceType": "Basic", "code": {"text": "note"}}
    request = {"method": "POST", "url": "Basic"}
    doc["entry"].append({"fullUrl": "not a url", "resource": note, "request": request})
    doc["entry"].append(copy.deepcopy(doc["entry"][0]))  # the Patient again: same fullUrl
    bundle = post(client, "/fhir/r4", doc).json()
    assert statuses(bundle)[3:] == ["202 Accepted", *["422 Unprocessable Entity"] * 2]
    codes = [e["response"]["outcome"]["issue"][0]["code"] for e in bundle["entry"][4:]]
    assert codes == ["invalid", "duplicate"]
    assert stored_rows(client) == 3


def test_batch_with_nothing_to_do_stores_nothing(client, sample_json) -> None:
    doc = as_request_bundle(sample_json, "batch")
    doc["entry"] = doc["entry"][:1]
    bundle = post(client, "/fhir/r4", doc).json()
    assert statuses(bundle) == ["422 Unprocessable Entity"]
    assert bundle["entry"][0]["response"]["outcome"]["issue"][0]["code"] == "business-rule"
    assert stored_rows(client) == 0


def test_batch_with_a_broken_bundle_is_rejected_whole(client, sample_json) -> None:
    doc = as_request_bundle(sample_json, "batch")
    doc["timestamp"] = "not a date"
    outcome = assert_outcome(post(client, "/fhir/r4", doc), 422)
    assert outcome.issue[0].expression == ["Bundle.timestamp"]
    assert stored_rows(client) == 0


# --- which Bundle goes where -----------------------------------------------------


@pytest.mark.parametrize("kind", ["collection", "message", "document", "searchset"])
def test_base_url_points_other_bundles_to_bundle_endpoint(client, sample_json, kind) -> None:
    doc = {**sample_json, "type": kind}
    outcome = assert_outcome(post(client, "/fhir/r4", doc), 422, "not-supported")
    assert "/fhir/r4/Bundle" in (outcome.issue[0].diagnostics or "")
    assert stored_rows(client) == 0


def test_oversized_transaction_is_refused(tmp_path, scripted, sample_json) -> None:
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE, api={"max_body_bytes": 2048})
    with TestClient(create_app(settings, run_relay=False)) as small:
        doc = as_request_bundle(sample_json, "transaction")
        assert_outcome(post(small, "/fhir/r4", doc), 413, "too-costly")
        assert stored_rows(small) == 0


def test_base_url_refuses_non_bundles(client) -> None:
    assert_outcome(post(client, "/fhir/r4", corpus("hl7-r4-Patient-example.json")), 400)
    assert_outcome(post(client, "/fhir/r4", b"{not json"), 400, "structure")
    assert stored_rows(client) == 0


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_bundle_endpoint_points_transactions_to_base_url(client, sample_json, kind) -> None:
    doc = as_request_bundle(sample_json, kind)
    outcome = assert_outcome(post(client, "/fhir/r4/Bundle", doc), 422, "not-supported")
    assert "/fhir/r4" in (outcome.issue[0].diagnostics or "")
    assert stored_rows(client) == 0


def test_bundle_endpoint_still_accepts_a_collection(client, sample_bundle) -> None:
    response = post(client, "/fhir/r4/Bundle", sample_bundle)
    assert response.status_code == 202
    assert response.headers["content-location"].startswith("/jobs/")


# --- one resource ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("DiagnosticReport", "hl7-r4-DiagnosticReport-f201.json"),
        ("ImagingStudy", "hl7-r4-ImagingStudy-example-xr.json"),
    ],
)
def test_single_resource_becomes_a_job(client, path, name) -> None:
    resource = corpus(name)
    response = post(client, f"/fhir/r4/{path}", resource)
    assert_outcome(response, 202, "informational")
    location = response.headers["content-location"]
    assert client.get(location).json()["status"] == "queued"
    again = post(client, f"/fhir/r4/{path}", resource)
    assert again.headers["content-location"] == location  # same content, same job
    assert stored_rows(client) == 3


def test_service_request_without_findings_is_refused(client) -> None:
    response = post(client, "/fhir/r4/ServiceRequest", corpus("hl7-r4-ServiceRequest-di.json"))
    outcome = assert_outcome(response, 422, "business-rule")
    assert outcome.issue[0].expression == ["ServiceRequest"]
    assert stored_rows(client) == 0


def test_imaging_service_request_with_notes_is_accepted(client) -> None:
    order = corpus("hl7-r4-ServiceRequest-di.json")
    order["category"] = [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005"}]}]
    order["note"] = [{"text": "Follow-up of a 7 mm right upper lobe nodule."}]
    response = post(client, "/fhir/r4/ServiceRequest", order)
    assert response.status_code == 202 and response.headers["content-location"]


def test_single_resource_issues_point_into_the_resource(client) -> None:
    report = corpus("hl7-r4-DiagnosticReport-f201.json")
    report["bogus"] = True
    outcome = assert_outcome(post(client, "/fhir/r4/DiagnosticReport", report), 422)
    assert outcome.issue[0].expression == ["DiagnosticReport.bogus"]


def test_single_resource_cannot_point_at_bundle_entries(client, sample_json) -> None:
    """urn:uuid references resolve only inside a Bundle: send those as a transaction."""
    report = sample_json["entry"][3]["resource"]
    outcome = assert_outcome(post(client, "/fhir/r4/DiagnosticReport", report), 422, "not-found")
    assert ["DiagnosticReport.subject"] in [i.expression for i in outcome.issue]
    assert stored_rows(client) == 0


def test_url_type_must_match_the_resource(client) -> None:
    report = corpus("hl7-r4-DiagnosticReport-f201.json")
    assert_outcome(post(client, "/fhir/r4/ImagingStudy", report), 400, "invalid")
    assert stored_rows(client) == 0


def test_create_of_other_types_is_not_supported(client) -> None:
    response = post(client, "/fhir/r4/Patient", corpus("hl7-r4-Patient-example.json"))
    assert_outcome(response, 404, "not-supported")
    assert stored_rows(client) == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_update_and_delete_are_not_supported(client, method) -> None:
    assert_outcome(client.request(method, "/fhir/r4/DiagnosticReport/f201"), 405)


# --- content negotiation -----------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["", "?_format=json", "?_format=application/fhir%2Bjson", "?_format=application/fhir+json"],
)
def test_json_formats_are_honoured(client, sample_bundle, query) -> None:
    response = post(client, f"/fhir/r4/Bundle{query}", sample_bundle)
    assert response.status_code == 202


@pytest.mark.parametrize("fmt", ["xml", "application/fhir%2Bxml", "text/xml", "ttl"])
def test_other_formats_are_415(client, sample_bundle, sample_json, fmt) -> None:
    for path, body in (
        ("/fhir/r4/Bundle", sample_bundle),
        ("/fhir/r4", json.dumps(as_request_bundle(sample_json, "batch")).encode()),
    ):
        assert_outcome(post(client, f"{path}?_format={fmt}", body), 415, "not-supported")
    assert_outcome(client.get(f"/fhir/r4/metadata?_format={fmt}"), 415)
    assert stored_rows(client) == 0


@pytest.mark.parametrize("content_type", ["application/json", "application/fhir+json"])
def test_json_request_bodies_are_read(client, sample_json, content_type) -> None:
    doc = as_request_bundle(sample_json, "transaction")
    response = post(client, "/fhir/r4", doc, headers={"Content-Type": content_type})
    assert response.status_code == 200


@pytest.mark.parametrize("content_type", ["application/fhir+xml", "text/plain", ""])
def test_other_request_bodies_are_415(client, sample_json, content_type) -> None:
    doc = as_request_bundle(sample_json, "transaction")
    for path in ("/fhir/r4", "/fhir/r4/Bundle", "/fhir/r4/DiagnosticReport"):
        response = post(client, path, doc, headers={"Content-Type": content_type})
        assert_outcome(response, 415, "not-supported")
    assert stored_rows(client) == 0


def test_accept_without_json_is_406(client) -> None:
    response = client.get("/fhir/r4/metadata", headers={"Accept": "application/fhir+xml"})
    assert_outcome(response, 406)
    ok = client.get("/fhir/r4/metadata", headers={"Accept": "text/html, */*;q=0.8"})
    assert ok.status_code == 200


# --- asynchronous request pattern -----------------------------------------------------


def test_prefer_respond_async_on_a_transaction(client, sample_json) -> None:
    doc = as_request_bundle(sample_json, "transaction")
    response = post(client, "/fhir/r4", doc, headers=ASYNC)
    outcome = assert_outcome(response, 202, "informational")
    location = response.headers["content-location"]
    assert location.startswith("/fhir/r4/_async/")
    [issue] = outcome.issue
    assert issue.expression == ["Bundle.entry[3]"] and "/jobs/" in (issue.diagnostics or "")
    job_id = re.search(UUID, issue.diagnostics or "").group(0)

    pending = client.get(location)  # the FHIR async status endpoint, while the job waits
    assert pending.status_code == 202 and pending.headers["x-progress"] == "0 of 1 jobs finished"
    OperationOutcome.model_validate(pending.json())

    assert execute(client.app.state.runtime, job_id) == "succeeded"
    final = client.get(location)
    assert final.status_code == 200
    bundle = Bundle.model_validate(final.json())
    assert bundle.type == "batch-response"
    [entry] = bundle.entry
    assert entry.response.status == "201 Created"
    report_path = entry.response.location.removesuffix("/_history/1")
    report = client.get(f"/fhir/r4/{report_path}")
    assert report.status_code == 200 and report.json()["status"] == "preliminary"


def test_async_status_locations_cannot_be_forged(client, sample_bundle) -> None:
    response = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=ASYNC)
    location = response.headers["content-location"]
    assert response.status_code == 202 and location.startswith("/fhir/r4/_async/")
    assert client.get(location).status_code == 202
    payload, mac = location.rsplit("/", 1)[1].split(".")
    for forged in (f"{payload}.{'0' * len(mac)}", payload, "garbage", f"{payload[:-2]}.{mac}"):
        refused = client.get(f"/fhir/r4/_async/{forged}")
        assert refused.status_code == 404
        assert refused.json()["resourceType"] == "OperationOutcome"


def test_async_status_reports_a_failed_job(client, sample_bundle, scripted) -> None:
    scripted.SCRIPT.append("failed")
    response = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=ASYNC)
    location = response.headers["content-location"]
    job_id = re.search(UUID, response.json()["issue"][0]["diagnostics"]).group(0)
    assert execute(client.app.state.runtime, job_id) == "failed"
    [entry] = client.get(location).json()["entry"]
    assert entry["response"]["status"].startswith("500")
    assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_prefer_respond_async_on_a_batch_reports_refused_entries(client, sample_json) -> None:
    doc = as_request_bundle(sample_json, "batch")
    doc["entry"].append({"request": {"method": "DELETE", "url": "Patient/x"}})
    outcome = assert_outcome(post(client, "/fhir/r4", doc, headers=ASYNC), 202)
    by_severity = {i.severity: i.expression for i in outcome.issue}
    assert by_severity["information"] == ["Bundle.entry[3]"]
    assert by_severity["error"] == ["Bundle.entry[4].request.method"]


def test_prefer_respond_async_without_any_job_answers_synchronously(client, sample_json) -> None:
    doc = as_request_bundle(sample_json, "batch")
    doc["entry"] = doc["entry"][:1]
    response = post(client, "/fhir/r4", doc, headers=ASYNC)
    assert response.status_code == 200 and response.json()["type"] == "batch-response"


@pytest.mark.parametrize("path", ["/fhir/r4/Bundle", "/fhir/r4/DiagnosticReport"])
def test_single_work_endpoints_are_always_async(client, sample_json, path) -> None:
    doc = sample_json if path.endswith("Bundle") else corpus("hl7-r4-DiagnosticReport-f201.json")
    for headers in (FHIR, ASYNC):
        response = post(client, path, doc, headers=headers)
        assert response.status_code == 202 and response.headers["content-location"]


# --- $validate -------------------------------------------------------------------------


def parameters(resource: dict[str, Any], *extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": resource}, *extra],
    }


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/fhir/r4/$validate", "hl7-r4-Patient-example.json"),
        ("/fhir/r4/DiagnosticReport/$validate", "hl7-r4-DiagnosticReport-f201.json"),
        ("/fhir/r4/ServiceRequest/$validate", "hl7-r4-ServiceRequest-di.json"),
    ],
)
def test_validate_a_valid_resource(client, path, name) -> None:
    for body in (corpus(name), parameters(corpus(name))):
        outcome = assert_outcome(post(client, path, body), 200)
        assert outcome.issue[0].severity == "information"
        assert outcome.issue[0].diagnostics == "All OK"
        assert not [i for i in outcome.issue if i.severity in ("error", "fatal")]
    assert stored_rows(client) == 0


def test_validate_a_bundle(client, sample_json) -> None:
    outcome = assert_outcome(post(client, "/fhir/r4/Bundle/$validate", sample_json), 200)
    assert outcome.issue[0].diagnostics == "All OK"


@pytest.mark.parametrize("wrapped", [False, True])
def test_validate_an_invalid_resource(client, wrapped) -> None:
    report = corpus("hl7-r4-DiagnosticReport-f201.json")
    report["bogus"] = True
    body = parameters(report) if wrapped else report
    response = post(client, "/fhir/r4/DiagnosticReport/$validate", body)
    outcome = assert_outcome(response, 200, "structure")  # R4: the verdict is in the issues
    assert outcome.issue[0].severity == "error"
    assert outcome.issue[0].expression == ["DiagnosticReport.bogus"]
    assert "All OK" not in {i.diagnostics for i in outcome.issue}
    assert stored_rows(client) == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{nope", 400), (b'{"resourceType": "Parameters", "parameter": []}', 400)],
)
def test_validate_unreadable_input(client, body, status) -> None:
    outcome = assert_outcome(post(client, "/fhir/r4/$validate", body), status)
    assert outcome.issue[0].severity in ("error", "fatal")


def test_validate_wrong_type_for_url(client) -> None:
    patient = corpus("hl7-r4-Patient-example.json")
    for body in (patient, parameters(patient)):
        response = post(client, "/fhir/r4/ImagingStudy/$validate", body)
        assert_outcome(response, 400, "structure")


def test_validate_warns_about_profiles(client) -> None:
    profile = {"name": "profile", "valueUri": "http://example.org/StructureDefinition/x"}
    body = parameters(corpus("hl7-r4-Patient-example.json"), profile)
    outcome = assert_outcome(post(client, "/fhir/r4/$validate", body), 200)
    assert "warning" in {i.severity for i in outcome.issue}


def test_validate_honours_format_and_content_type(client) -> None:
    patient = corpus("hl7-r4-Patient-example.json")
    assert_outcome(post(client, "/fhir/r4/$validate?_format=xml", patient), 415)
    xml = {"Content-Type": "application/fhir+xml"}
    assert_outcome(post(client, "/fhir/r4/$validate", patient, headers=xml), 415)


# --- CapabilityStatement ----------------------------------------------------------------


def test_capability_statement_states_what_is_supported(client) -> None:
    response = client.get("/fhir/r4/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    assert (statement["kind"], statement["status"], statement["format"]) == (
        "instance",
        "active",
        ["json"],
    )
    assert statement["implementation"]["url"].endswith("/fhir/r4")
    [rest] = statement["rest"]
    assert rest["mode"] == "server"
    assert sorted(i["code"] for i in rest["interaction"]) == ["batch", "transaction"]
    assert [o["name"] for o in rest["operation"]] == ["validate"]
    interactions = {r["type"]: [i["code"] for i in r["interaction"]] for r in rest["resource"]}
    assert interactions == {  # only what Sluicegate produced can be read back
        "Bundle": ["create"],
        "DiagnosticReport": ["create", "read", "search-type"],
        "ImagingStudy": ["create"],
        "ServiceRequest": ["create"],
        "Provenance": ["read", "search-type"],
    }
    params = {r["type"]: {p["name"] for p in r.get("searchParam", [])} for r in rest["resource"]}
    assert params["DiagnosticReport"] == {"based-on", "subject", "patient", "_lastUpdated"}
    assert params["Provenance"] == {"target", "_lastUpdated"}
    assert "xml" in rest["documentation"].lower()


def test_openapi_lists_the_fhir_routes(client) -> None:
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {
        "/fhir/r4",
        "/fhir/r4/Bundle",
        "/fhir/r4/{rtype}",
        "/fhir/r4/$validate",
        "/fhir/r4/{rtype}/$validate",
        "/fhir/r4/metadata",
    } <= paths


# --- conditional create ----------------------------------------------------------


def _conditional(sample_json: dict[str, Any], kind: str, condition: str) -> dict[str, Any]:
    doc = as_request_bundle(sample_json, kind)
    doc["entry"][3]["request"]["ifNoneExist"] = condition
    return doc


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_if_none_exist_creates_once_then_points_at_the_first_job(client, sample_json, kind) -> None:
    condition = "identifier=http://hospital.example/reports|RPT-0001"
    first = post(client, "/fhir/r4", _conditional(sample_json, kind, condition)).json()
    assert statuses(first)[3] == "202 Accepted"
    job = first["entry"][3]["response"]["location"]
    changed = _conditional(sample_json, kind, condition)
    changed["entry"][3]["resource"]["conclusion"] = "Different content, same condition."
    again = post(client, "/fhir/r4", changed)
    assert again.status_code == 200
    Bundle.model_validate(again.json())
    assert statuses(again.json())[3] == "200 OK"
    assert again.json()["entry"][3]["response"]["location"] == job
    assert stored_rows(client) == 3  # one work item, job and outbox row: nothing new
    other = post(client, "/fhir/r4", _conditional(sample_json, kind, condition + "-2")).json()
    assert statuses(other)[3] == "202 Accepted"
    assert other["entry"][3]["response"]["location"] != job


@pytest.mark.parametrize(
    ("condition", "code"),
    [
        ("subject=Patient/1", "not-supported"),
        ("identifier=a|1&status=final", "not-supported"),
        ("identifier=", "invalid"),
        ("", "invalid"),
    ],
)
def test_unsupported_conditions_are_refused_not_ignored(
    client, sample_json, condition, code
) -> None:
    response = post(client, "/fhir/r4", _conditional(sample_json, "transaction", condition))
    outcome = assert_outcome(response, 400, code)
    assert outcome.issue[0].expression == ["Bundle.entry[3].request.ifNoneExist"]
    assert stored_rows(client) == 0


def test_if_none_exist_header_on_a_single_create(client, sample_json) -> None:
    report = next(
        e["resource"]
        for e in sample_json["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    report = {**report, "subject": {"display": "Patient"}}
    report.pop("basedOn", None)
    report.pop("imagingStudy", None)
    headers = {**FHIR, "If-None-Exist": "identifier=urn:x|R-77"}
    first = post(client, "/fhir/r4/DiagnosticReport", report, headers)
    assert first.status_code == 202, first.text
    again = post(client, "/fhir/r4/DiagnosticReport", report | {"conclusion": "Other."}, headers)
    assert again.status_code == 200
    assert again.headers["location"] == first.headers["content-location"]
    bad = post(client, "/fhir/r4/DiagnosticReport", report, {**FHIR, "If-None-Exist": "code=x"})
    assert_outcome(bad, 400, "not-supported")
