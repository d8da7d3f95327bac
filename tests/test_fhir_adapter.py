"""FHIR adapter: Bundle parsing, rejection without PHI, and the rendered draft report."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from sluicegate.adapters.fhir import FhirAdapter
from sluicegate.adapters.fhir.outcome import operation_outcome
from sluicegate.adapters.fhir.render import EMPTY_TEXT
from sluicegate.core.interfaces import Adapter, Generation, InvalidInput, Issue, WorkItem, Zone

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FHIR_VALID = CORPUS / "fhir" / "valid"
FHIR_INVALID = CORPUS / "fhir" / "invalid"
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "fhir" / "radiology-bundle.json"
FHIR_JSON = "application/fhir+json"


adapter = FhirAdapter()


def parse(doc: Any, content_type: str | None = FHIR_JSON, tenant: str = "t1") -> list[WorkItem]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return adapter.parse(body, content_type, tenant=tenant, channel="fhir")


def rejected(doc: Any, content_type: str | None = FHIR_JSON) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(doc, content_type)
    return caught.value


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def corpus(name: str) -> dict[str, Any]:
    folder = FHIR_VALID if (FHIR_VALID / name).exists() else FHIR_INVALID
    return json.loads((folder / name).read_text(encoding="utf-8-sig"))


def wrap(*resources: dict[str, Any]) -> dict[str, Any]:
    """Single resources from the corpus, as the collection Bundle we accept."""
    entries = [
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r}
        for i, r in enumerate(resources)
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def generation(text: str = "IMPRESSION: 7 mm right upper lobe nodule.") -> Generation:
    return Generation(
        text=text, backend_id="triton-a", model="rad-llm", zone=Zone.ONPREM, latency_s=0.5
    )


# --- the sample ---------------------------------------------------------------


def test_sample_parses_into_one_work_item() -> None:
    doc = sample()
    [item] = parse(doc)
    report = doc["entry"][3]["resource"]
    assert item.task == "radiology_report"
    assert (item.tenant, item.channel) == ("t1", "fhir")
    assert item.source_ref == f"Bundle/sample-radiology-0001#DiagnosticReport/{report['id']}"
    assert len(item.idempotency_key) == 64

    prompt = item.prompt_inputs
    assert prompt["procedure"] == "CT chest without contrast"
    assert prompt["modality"] == "CT"
    assert "Persistent cough" in prompt["clinical_history"]
    assert "right upper lobe opacity" in prompt["clinical_history"]
    assert prompt["findings"].startswith("FINDINGS:")
    assert "7 mm solid nodule" in prompt["findings"]
    assert len(prompt["findings"].splitlines()) >= 8

    ids = item.identifiers
    assert {"Testperson", "Jane", "Jane Q. Testperson", "Jane Testperson"} <= set(ids["name"])
    assert "Q." not in ids["name"]  # a bare initial would match everywhere
    assert ids["mrn"] == ["MRN-0048213"]
    assert ids["birth_date"] == ["1961-04-17"]
    assert ids["phone"] == ["+1-555-0142"]
    assert "42 Example Lane" in ids["address"]
    # The findings mention the patient by a name variant the privacy engine knows.
    assert any(n in prompt["findings"] for n in ids["name"] if " " in n)

    payload = item.payload
    json.dumps(payload)  # stored as JSON
    patient, request, study = (doc["entry"][i]["resource"]["id"] for i in range(3))
    assert payload["subject"] == {"reference": f"Patient/{patient}"}
    assert payload["patient"] == {"reference": f"Patient/{patient}", "id": patient}
    assert payload["report"] == {
        "id": report["id"],
        "reference": f"DiagnosticReport/{report['id']}",
    }
    assert payload["service_requests"] == [
        {"id": request, "reference": f"ServiceRequest/{request}"}
    ]
    assert payload["imaging_studies"] == [{"id": study, "reference": f"ImagingStudy/{study}"}]
    assert payload["code"]["coding"][0]["code"] == "24627-2"


def test_idempotency_key_is_stable_and_scoped() -> None:
    first, again = parse(sample())[0], parse(sample())[0]
    other_tenant = parse(sample(), tenant="t2")[0]
    changed = sample()
    changed["entry"][3]["resource"]["status"] = "registered"
    assert first.idempotency_key == again.idempotency_key
    assert first.idempotency_key != other_tenant.idempotency_key
    assert first.idempotency_key != parse(changed)[0].idempotency_key


def test_adapter_satisfies_protocol() -> None:
    assert isinstance(adapter, Adapter)
    assert FhirAdapter({"anything": 1}).name == "fhir"


# --- what is refused before validation ------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json",
        "application/fhir+json; charset=utf-8",
        "Application/FHIR+JSON;charset=UTF-8",
        "application/json",
        "application/json+fhir",
    ],
)
def test_accepted_content_types(content_type: str) -> None:
    assert len(parse(sample(), content_type)) == 1


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/xml", "application/fhir+xml", "multipart/form-data"],
)
def test_other_content_types_are_415(content_type: str | None) -> None:
    err = rejected(sample(), content_type)
    assert err.status == 415
    assert [i.code for i in err.issues] == ["not-supported"]


def test_non_utf8_charset_is_415() -> None:
    assert rejected(sample(), "application/fhir+json; charset=iso-8859-1").status == 415


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"resourceType": "Bundle",}',
        b"\xff\xfe{}",
        json.dumps({"resourceType": "Bundle", "type": "collection"}).encode("utf-16"),
        b'{"resourceType": "Bundle", "type": "collection", "total": NaN}',
        b"",
    ],
)
def test_malformed_json_is_400(body: bytes) -> None:
    err = rejected(body)
    assert err.status == 400
    assert err.issues[0].code == "structure"
    assert "not valid" in err.issues[0].diagnostics


def test_bom_is_tolerated() -> None:
    assert len(parse(b"\xef\xbb\xbf" + SAMPLE.read_bytes())) == 1


def test_corpus_bad_json_is_400() -> None:
    err = rejected((FHIR_INVALID / "bad-json-close-1.json").read_bytes())
    assert err.status == 400
    assert "line 15" in err.issues[0].diagnostics


@pytest.mark.parametrize("doc", [[], "Bundle", 42, {"hello": "world"}, {"resourceType": 7}])
def test_non_fhir_json_is_400(doc: Any) -> None:
    err = rejected(doc)
    assert err.status == 400
    assert err.issues[0].code == "structure"


def test_non_bundle_resource_is_400() -> None:
    err = rejected(corpus("hl7-r4-DiagnosticReport-f201.json"))
    assert err.status == 400
    assert "Expected a Bundle resource, got DiagnosticReport" in err.issues[0].diagnostics


# --- validation: 422 with FHIRPath locations -----------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "location"),
    [
        ("ai3.json", "structure", "Bundle.entry[0].resource.unknownElement"),
        ("ai4.json", "value", "Bundle.entry[0].resource.birthDate"),
        ("patient-id-bad-2.json", "value", "Bundle.entry[0].resource.id"),
        ("hakan-se.json", "value", "Bundle.entry[0].resource.authoredOn"),
        ("synthea.json", "structure", "Bundle.entry[0].resource.reasonCode"),
        ("Observation-ex-pain.json", "required", "Bundle.entry[0].resource.code"),
    ],
)
def test_corpus_invalid_resources_are_422(name: str, code: str, location: str) -> None:
    err = rejected(wrap(corpus(name)))
    assert err.status == 422
    assert (code, location) in [(i.code, i.location) for i in err.issues]
    assert all(i.severity == "error" and i.diagnostics for i in err.issues)


@pytest.mark.parametrize(
    ("name", "code", "location"),
    [
        ("bundle-duplicate-id.json", "invalid", "Bundle.entry[0]"),
        ("empty-array.json", "invalid", "Bundle.entry[0].resource.category[0].coding"),
        ("encounter-period.json", "invariant", "Bundle.entry[0].resource.period"),
    ],
)
def test_corpus_negatives_the_library_misses_are_422(name: str, code: str, location: str) -> None:
    # fullUrl rules, empty arrays and invariants are not checked by fhir.resources;
    # the rules in validate.py catch them (tests/test_fhir_validation.py has the rest).
    doc = corpus(name)
    err = rejected(doc if doc["resourceType"] == "Bundle" else wrap(doc))
    assert err.status == 422
    assert (code, location) in [(i.code, i.location) for i in err.issues]
    assert "business-rule" not in [i.code for i in err.issues]


def test_validation_error_inside_report_is_located() -> None:
    doc = sample()
    doc["entry"][3]["resource"]["status"] = ["partial"]
    doc["entry"][3]["resource"].pop("code")
    err = rejected(doc)
    assert err.status == 422
    locations = {i.location: i.code for i in err.issues}
    assert locations["Bundle.entry[3].resource.status"] == "structure"
    assert locations["Bundle.entry[3].resource.code"] == "required"


@pytest.mark.parametrize(
    "resource",
    [{"resourceType": "NoSuchThing", "id": "x"}, {"id": "x"}],
    ids=["unknown-type", "no-type"],
)
def test_entry_resource_type_is_checked(resource: dict[str, Any]) -> None:
    doc = sample()
    doc["entry"].append({"fullUrl": "urn:uuid:1d7f4e2a-0000-4000-8000-000000000000"})
    doc["entry"][-1]["resource"] = resource
    err = rejected(doc)
    assert err.status == 422
    assert err.issues[0].location == "Bundle.entry[4].resource"
    assert "NoSuchThing" not in err.issues[0].diagnostics


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "MedicinalProduct", "id": "mp", "name": [{"productName": "Acme"}]},
        {
            "resourceType": "Evidence",
            "id": "ev",
            "status": "active",
            "exposureBackground": {"reference": "EvidenceVariable/x"},
        },
    ],
    ids=["removed-in-r4b", "reshaped-in-r4b"],
)
def test_r4_only_resources_do_not_block_the_bundle(resource: dict[str, Any]) -> None:
    doc = sample()
    doc["entry"].append({"fullUrl": "urn:uuid:2e8a5f3b-0000-4000-8000-000000000000"})
    doc["entry"][-1]["resource"] = resource
    assert len(parse(doc)) == 1


NAME = "Zebediah Quux-Testperson"
PHI_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "birthDate": ("Patient", {"birthDate": NAME}),
    "active": ("Patient", {"active": NAME}),
    "multipleBirthInteger": ("Patient", {"multipleBirthInteger": NAME}),
    "id": ("Patient", {"id": NAME}),
    "name-as-string": ("Patient", {"name": NAME}),
    "family-as-object": ("Patient", {"name": [{"family": {"text": NAME}}]}),
    "unknown-element": ("Patient", {NAME: "x"}),
    "gender-list": ("Patient", {"gender": [NAME]}),
    "status-list": ("DiagnosticReport", {"status": [NAME], "code": {"text": "CT"}}),
    "quantity": (
        "Observation",
        {"status": "final", "code": {"text": "x"}, "valueQuantity": {"value": NAME}},
    ),
    "resourceType": (NAME, {}),
}


@pytest.mark.parametrize("case", PHI_CASES, ids=list(PHI_CASES))
def test_diagnostics_never_echo_input_values(case: str) -> None:
    rtype, fields = PHI_CASES[case]
    doc = sample()
    doc["entry"][0]["resource"] = {"resourceType": rtype, **fields}
    err = rejected(doc)
    assert err.status == 422
    text = json.dumps([vars(i) for i in err.issues]) + str(err)
    for fragment in (NAME, "Zebediah", "Quux"):
        assert fragment not in text


def test_top_level_resource_type_is_not_echoed() -> None:
    err = rejected({"resourceType": NAME})
    assert err.status == 400
    assert "Zebediah" not in err.issues[0].diagnostics


# --- which bundles hold radiology work ---------------------------------------------


@pytest.mark.parametrize(
    "name", ["hl7-r4-Bundle-lipids.json", "hl7-r4-Bundle-f001.json", "hl7-r4-Bundle-father.json"]
)
def test_bundle_without_radiology_work_is_422(name: str) -> None:
    err = rejected(corpus(name))
    assert err.status == 422
    assert [i.code for i in err.issues] == ["business-rule"]
    assert "radiology" in err.issues[0].diagnostics


def test_radiology_report_without_findings_is_422() -> None:
    doc = sample()
    doc["entry"][3]["resource"].pop("presentedForm")
    doc["entry"][2]["resource"].pop("series")
    doc["entry"][1]["resource"].pop("note")
    assert rejected(doc).issues[0].code == "business-rule"


def test_corpus_radiology_report_produces_work() -> None:
    [item] = parse(wrap(corpus("hl7-r4-DiagnosticReport-f201.json")))
    assert item.source_ref == "Bundle#DiagnosticReport/f201"
    assert item.prompt_inputs["procedure"] == "CT of head-neck"
    assert item.prompt_inputs["findings"] == "CT brains: large tumor sphenoid/clivus."
    assert "Roel" in item.identifiers["name"]  # subject.display is a patient name
    assert item.payload["code"]["coding"][0]["code"] == "429858000"
    assert item.payload["subject"] == {"reference": "Patient/f201"}


def test_corpus_report_with_patient_and_order() -> None:
    report = corpus("hl7-r4-DiagnosticReport-ultrasound.json")
    report["basedOn"] = [{"reference": "ServiceRequest/di"}]
    doc = wrap(
        report, corpus("hl7-r4-ServiceRequest-di.json"), corpus("hl7-r4-Patient-example.json")
    )
    [item] = parse(doc)
    assert item.prompt_inputs["findings"] == "Unremarkable study"
    assert item.prompt_inputs["clinical_history"] == "Check for metastatic disease"
    assert item.payload["service_requests"] == [{"id": "di", "reference": "ServiceRequest/di"}]
    assert item.payload["patient"] == {"reference": "Patient/example", "id": "example"}
    assert {"Chalmers", "Peter James Chalmers"} <= set(item.identifiers["name"])
    assert "12345" in item.identifiers["mrn"]


def test_corpus_imaging_study_alone_produces_work() -> None:
    [item] = parse(wrap(corpus("hl7-r4-ImagingStudy-example-xr.json")))
    assert item.source_ref == "Bundle#ImagingStudy/example-xr"
    assert item.prompt_inputs["modality"] == "DX"
    assert item.prompt_inputs["procedure"] == "XR Wrist 3+ Views"
    assert "trapezoidal" in item.prompt_inputs["clinical_history"]
    assert item.payload["report"] is None


@pytest.mark.parametrize(
    "path",
    sorted(FHIR_VALID.glob("*.json")) if FHIR_VALID.is_dir() else [],
    ids=lambda p: p.name,
)
def test_valid_r4_corpus_passes_validation(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    doc = doc if doc["resourceType"] == "Bundle" else wrap(doc)
    try:
        parse(doc)
    except InvalidInput as err:
        # Non-conformant R4 in the corpus (tests/test_fhir_validation.py says why):
        # a v2->FHIR "initial translation" without required elements and with
        # relative fullUrls; an HL7 example whose fullUrl disagrees with the id;
        # Synthea references to another Bundle's urn:uuid entries.
        defects = {
            "cdc-ti-": {"required", "invalid"},
            "hl7-r4-Bundle-10bb101f-": {"invalid"},
            "synthea-r4-practitionerInformation": {"not-found"},
        }
        expected = next((v for k, v in defects.items() if path.name.startswith(k)), None)
        if expected is not None:
            assert {i.code for i in err.issues} == expected
        else:
            assert [i.code for i in err.issues] == ["business-rule"], err.issues[:3]


def test_findings_from_narrative_and_observations() -> None:
    doc = sample()
    report = doc["entry"][3]["resource"]
    report.pop("presentedForm")
    report["text"] = {
        "status": "additional",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Lungs: <b>clear</b>.</p>'
        "<p>Heart &amp; mediastinum: normal.</p></div>",
    }
    report["result"] = [{"reference": "#obs"}]
    report["contained"] = [
        {
            "resourceType": "Observation",
            "id": "obs",
            "status": "preliminary",
            "code": {"text": "Impression"},
            "valueString": "No acute abnormality.",
        }
    ]
    [item] = parse(doc)
    findings = item.prompt_inputs["findings"].split("\n\n")
    assert findings == [
        "Impression: No acute abnormality.",
        "Lungs: clear.\nHeart & mediastinum: normal.",
    ]


# --- rendering ------------------------------------------------------------------------


def rendered_report(
    item: WorkItem, text: str = "IMPRESSION: nodule.", job: str = "job-1"
) -> dict[str, Any]:
    out = adapter.render(item, generation(text), job)
    assert out.media_type == "application/fhir+json"
    bundle = json.loads(out.body)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    # The report comes first; its Provenance and Devices follow (test_fhir_render.py).
    entry = bundle["entry"][0]
    assert entry["resource"]["resourceType"] == "DiagnosticReport"
    return entry["resource"] | {"_bundle": bundle}


def test_render_produces_valid_preliminary_report() -> None:
    [item] = parse(sample())
    text = "FINDINGS: 7 mm nodule.\nIMPRESSION: Follow-up CT in 6-12 months."
    report = rendered_report(item, "  " + text + "\n")
    assert report["resourceType"] == "DiagnosticReport"
    assert report["status"] == "preliminary"
    rad = report["category"][0]["coding"][0]
    assert (rad["system"], rad["code"]) == ("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD")
    assert any(t["code"] == "AIAST" for t in report["meta"]["tag"])
    assert report["meta"]["source"] == "sluicegate/triton-a/rad-llm"
    assert report["conclusion"] == text
    form = report["presentedForm"][0]
    assert form["contentType"] == "text/plain;charset=utf-8"
    assert form["title"]
    assert base64.b64decode(form["data"]).decode("utf-8") == text
    assert report["code"] == item.payload["code"]
    assert report["subject"] == item.payload["subject"]
    assert report["basedOn"] == [{"reference": item.payload["service_requests"][0]["reference"]}]
    assert report["imagingStudy"] == [
        {"reference": item.payload["imaging_studies"][0]["reference"]}
    ]
    issued = datetime.fromisoformat(report["issued"])
    assert issued.tzinfo is not None
    assert abs((datetime.now(UTC) - issued).total_seconds()) < 60


def test_render_is_deterministic_per_job_and_handles_empty_text() -> None:
    [item] = parse(sample())
    first, second = rendered_report(item, "", "job-7"), rendered_report(item, "x", "job-7")
    assert first["conclusion"] == EMPTY_TEXT
    assert first["_bundle"]["id"] == second["_bundle"]["id"] == "job-7"
    assert first["_bundle"]["entry"][0]["fullUrl"] == second["_bundle"]["entry"][0]["fullUrl"]
    odd = rendered_report(item, "x", "job 7/with spaces and a very long tail " + "x" * 80)
    assert len(odd["_bundle"]["id"]) <= 64


def test_render_falls_back_to_generic_imaging_code() -> None:
    [item] = parse(sample())
    bare = WorkItem(**{**vars(item), "payload": {"code": None, "subject": None}})
    report = rendered_report(bare)
    assert report["code"]["coding"][0]["code"] == "18748-4"
    assert "subject" not in report and "basedOn" not in report


# --- OperationOutcome -------------------------------------------------------------------


def test_operation_outcome_validates() -> None:
    err = rejected(wrap({"resourceType": "Patient", "birthDate": "soon", "bogus": 1}))
    issues = [*err.issues, Issue("warning", "no-such-code", "odd"), Issue("error", "value", "")]
    outcome = operation_outcome(issues)
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["expression"] == [err.issues[0].location]
    assert outcome["issue"][-2]["code"] == "processing"
    assert "diagnostics" not in outcome["issue"][-1]


def test_operation_outcome_needs_an_issue() -> None:
    OperationOutcome.model_validate(operation_outcome([]))


def test_parsed_payload_survives_a_copy() -> None:
    # Stored payloads come back from JSON; rendering must not depend on identity.
    [item] = parse(sample())
    clone = WorkItem(
        **{**vars(item), "payload": json.loads(json.dumps(copy.deepcopy(item.payload)))}
    )
    assert rendered_report(clone)["subject"] == item.payload["subject"]


def test_generated_narrative_is_not_findings() -> None:
    doc = sample()
    report = doc["entry"][3]["resource"]
    report.pop("presentedForm")
    report["text"] = {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">status: partial</div>',
    }
    [item] = parse(doc)  # falls back to the study's series descriptions
    assert "status: partial" not in item.prompt_inputs["findings"]
    assert "Axial 1.25 mm lung" in item.prompt_inputs["findings"]
