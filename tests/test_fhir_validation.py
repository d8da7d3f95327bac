"""FHIR validation beyond the models: each rule, ``$validate``, and the corpus table
that holds our verdicts against the HL7 Java validator's."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sluicegate.adapters.fhir.parse import parse_bundle, parse_bundle_with_issues
from sluicegate.adapters.fhir.validate import check_rules, compare_datetimes, validate_body
from sluicegate.core.interfaces import InvalidInput, Issue

FHIR = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "fhir"
VALID, INVALID = FHIR / "valid", FHIR / "invalid"
OUTCOMES = INVALID / "expected_outcomes"
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "fhir" / "radiology-bundle.json"
FHIR_JSON = "application/fhir+json"
needs_corpus = pytest.mark.skipif(not FHIR.is_dir(), reason="shared FHIR corpus not present")


def uuid_url(n: int) -> str:
    return f"urn:uuid:00000000-0000-4000-8000-{n:012d}"


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    entries = [{"fullUrl": uuid_url(i), "resource": r} for i, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def rules(doc: dict[str, Any]) -> list[Issue]:
    return check_rules(doc, root=doc["resourceType"])


def at(issues: list[Issue]) -> list[tuple[str, str | None]]:
    return [(i.code, i.location) for i in issues]


def validate(doc: Any, expected_type: str | None = None) -> tuple[int, list[Issue]]:
    return validate_body(json.dumps(doc).encode(), FHIR_JSON, expected_type)


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity in ("error", "fatal")]


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female"}


# --- empty arrays, objects and strings -------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"name": []}, "Patient.name"),
        ({"name": [{}]}, "Patient.name[0]"),
        ({"name": [{"given": ["Ann", ""]}]}, "Patient.name[0].given[1]"),
        ({"maritalStatus": {"coding": []}}, "Patient.maritalStatus.coding"),
        ({"_birthDate": {}}, "Patient.birthDate"),
    ],
)
def test_empty_values_are_refused(fields: dict[str, Any], location: str) -> None:
    issues = rules({**PATIENT, **fields})
    assert at(issues) == [("invalid", location)]
    assert issues[0].severity == "error"


def test_empty_array_message_is_the_java_validators() -> None:
    [issue] = rules({**PATIENT, "name": []})
    assert issue.diagnostics.startswith("Array cannot be empty - the property should not be")


def test_falsy_but_present_values_are_fine() -> None:
    doc = {
        **PATIENT,
        "active": False,
        "multipleBirthInteger": 0,
        "name": [{"given": ["Ann", None], "_given": [None, {"extension": [{"url": "u"}]}]}],
    }
    assert rules(doc) == []


# --- Bundle: duplicates and fullUrl --------------------------------------------------------


def test_duplicate_full_url_is_refused() -> None:
    doc = bundle(PATIENT, {"resourceType": "Patient", "id": "p2"})
    doc["entry"][1]["fullUrl"] = doc["entry"][0]["fullUrl"]
    issues = rules(doc)
    assert at(issues) == [("duplicate", "Bundle.entry[1]")]
    assert "bdl-7" in issues[0].diagnostics


def test_duplicate_type_and_id_is_refused() -> None:
    issues = rules(bundle(PATIENT, dict(PATIENT)))
    assert at(issues) == [("duplicate", "Bundle.entry[1]")]


@pytest.mark.parametrize(
    "doc",
    [
        bundle(PATIENT, {**PATIENT, "resourceType": "Group", "type": "person", "actual": True}),
        bundle({**PATIENT, "meta": {"versionId": "1"}}, {**PATIENT, "meta": {"versionId": "2"}}),
        bundle(PATIENT, dict(PATIENT), kind="history"),
    ],
    ids=["same-id-other-type", "other-version", "history"],
)
def test_not_duplicates(doc: dict[str, Any]) -> None:
    if doc["type"] == "history":
        doc["entry"][1]["fullUrl"] = doc["entry"][0]["fullUrl"]
        for e in doc["entry"]:
            e["request"], e["response"] = {"method": "PUT", "url": "Patient/p1"}, {"status": "200"}
    assert rules(doc) == []


@pytest.mark.parametrize(
    "url",
    [
        "Patient/p1",
        "urn:uuid:ABCDEF00-0000-4000-8000-000000000000",
        "urn:uuid:not-a-uuid",
        "urn:oid:3.1.2",
        "ftp://example.org/Patient/p1",
        "http:///Patient/p1",
        "http://example.org/fhir/Patient/p2",
        "http://example.org/fhir/Observation/p1",
        "http://example.org/fhir/Patient/p1/_history/2",
    ],
)
def test_bad_full_urls(url: str) -> None:
    doc = bundle(PATIENT)
    doc["entry"][0]["fullUrl"] = url
    issues = rules(doc)
    assert at(issues) == [("invalid", "Bundle.entry[0]")]
    assert url not in issues[0].diagnostics


@pytest.mark.parametrize(
    "url",
    [
        "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
        "urn:oid:2.16.840.1.113883.19.5",
        "http://example.org/fhir/Patient/p1",
        "https://example.org/Patient/p1",
    ],
)
def test_good_full_urls(url: str) -> None:
    doc = bundle(PATIENT)
    doc["entry"][0]["fullUrl"] = url
    assert rules(doc) == []


def test_http_full_url_without_resource_id_is_fine() -> None:
    doc = bundle({"resourceType": "Patient"})
    doc["entry"][0]["fullUrl"] = "http://example.org/fhir/Patient/anything"
    assert rules(doc) == []


# --- references ------------------------------------------------------------------------------


def observation(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, **fields}


@pytest.mark.parametrize("kind", ["collection", "transaction", "batch", "document", "message"])
def test_unresolved_uuid_reference_is_refused(kind: str) -> None:
    doc = bundle(PATIENT, observation(subject={"reference": uuid_url(7)}), kind=kind)
    issues = rules(doc)
    assert at(issues) == [("not-found", "Bundle.entry[1].resource.subject")]


def test_resolved_uuid_reference_is_fine() -> None:
    doc = bundle(PATIENT, observation(subject={"reference": uuid_url(0)}), kind="transaction")
    assert rules(doc) == []


def test_uuid_references_are_not_checked_where_they_may_point_outside() -> None:
    doc = bundle(PATIENT, observation(subject={"reference": uuid_url(7)}), kind="searchset")
    assert rules(doc) == []
    assert rules(observation(subject={"reference": uuid_url(7)})) == []  # not in a Bundle


def test_uuid_reference_in_contained_resource_is_checked() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "CT"},
        "contained": [observation(id="o1", subject={"reference": uuid_url(9)})],
        "result": [{"reference": "#o1"}],
    }
    issues = rules(bundle(report))
    assert at(issues) == [("not-found", "Bundle.entry[0].resource.contained[0].subject")]


def test_nested_bundle_is_its_own_scope() -> None:
    inner = bundle(observation(subject={"reference": uuid_url(0)}))  # resolves in inner
    outer = bundle(PATIENT, inner)
    outer["entry"][1]["resource"]["entry"][0]["fullUrl"] = uuid_url(5)
    issues = rules(outer)
    assert at(issues) == [("not-found", "Bundle.entry[1].resource.entry[0].resource.subject")]


def test_local_reference_needs_a_contained_resource() -> None:
    doc: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "plan",
        "medicationCodeableConcept": {"text": "x"},
        "subject": {"reference": "Patient/1"},
        "requester": {"reference": "#nobody"},
    }
    issues = rules(doc)
    assert at(issues) == [("invariant", "MedicationRequest.requester")]
    assert "ref-1" in issues[0].diagnostics and "nobody" not in issues[0].diagnostics
    doc["contained"] = [{"resourceType": "Practitioner", "id": "nobody"}]
    assert rules(doc) == []


def test_local_references_inside_contained_resources_use_the_container() -> None:
    doc = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "CT"},
        "contained": [
            {"resourceType": "Patient", "id": "pat"},
            observation(id="o1", subject={"reference": "#pat"}, focus=[{"reference": "#"}]),
        ],
        "result": [{"reference": "#o1"}],
        "subject": {"reference": "#pat"},
    }
    assert rules(doc) == []


# --- Period (per-1) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "order"),
    [
        ("2023-06-21", "2023-06-22", "lt"),
        ("2023-06-22", "2023-06-21", "gt"),
        ("2023-06-21", "2023-06-21", "eq"),
        ("2023-06-21", "2023-06-21T06:20:00Z", "unknown"),
        ("2023-06-20", "2023-06-21T06:20:00Z", "lt"),
        ("2023-06", "2023-06-21", "unknown"),
        ("2024-01-01T10:00:00+02:00", "2024-01-01T09:00:00Z", "lt"),
        ("2024-01-01T09:00:00Z", "2024-01-01T10:00:00+02:00", "gt"),
        ("2024-01-01T09:00:00.5Z", "2024-01-01T09:00:00.25Z", "gt"),
        ("2024-01-01T09:00:00Z", "not a date", None),
    ],
)
def test_datetime_order(start: str, end: str, order: str | None) -> None:
    assert compare_datetimes(start, end) == order


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"effectivePeriod": {"start": "2024-02-01", "end": "2024-01-01"}}, "effectivePeriod"),
        (
            {"identifier": [{"value": "1", "period": {"start": "2024-02", "end": "2024-01"}}]},
            "identifier[0].period",
        ),
        (
            {"extension": [{"url": "u", "valuePeriod": {"start": "2025", "end": "2024"}}]},
            "extension[0].valuePeriod",
        ),
        (
            {"effectivePeriod": {"start": "2023-06-21", "end": "2023-06-21T06:20:00Z"}},
            "effectivePeriod",
        ),
    ],
)
def test_period_start_after_end_is_refused(fields: dict[str, Any], location: str) -> None:
    issues = rules(observation(**fields))
    assert at(issues) == [("invariant", f"Observation.{location}")]
    assert "per-1" in issues[0].diagnostics and "2024" not in issues[0].diagnostics


@pytest.mark.parametrize(
    "period",
    [
        {"start": "2024-01-01", "end": "2024-01-01"},
        {"start": "2024-01-01T10:00:00+02:00", "end": "2024-01-01T09:00:00Z"},
        {"start": "2024-01-01"},
        {"end": "2024-01-01"},
    ],
)
def test_ordered_or_open_periods_are_fine(period: dict[str, str]) -> None:
    assert rules(observation(effectivePeriod=period)) == []


def test_start_end_outside_a_period_are_not_per1() -> None:
    # Appointment.start/end are instants of the resource itself, not a Period.
    appointment = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2024-01-02T10:00:00Z",
        "end": "2024-01-01T10:00:00Z",
        "participant": [{"status": "accepted", "actor": {"display": "x"}}],
    }
    assert rules(appointment) == []


# --- ids, timezones, required codes and choices ---------------------------------------------


@pytest.mark.parametrize("rid", ["bad-id 1", "a/b", "x" * 65, "é"])
def test_bad_resource_ids(rid: str) -> None:
    issues = rules({**PATIENT, "id": rid})
    assert at(issues) == [("value", "Patient.id")]
    assert rid not in issues[0].diagnostics


def test_ids_of_entries_and_contained_resources_are_checked() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r 1",
        "status": "final",
        "code": {"text": "CT"},
        "contained": [{"resourceType": "Patient", "id": "p 1"}],
        "subject": {"reference": "#p 1"},
    }
    issues = rules(bundle(report))
    assert at(issues) == [
        ("value", "Bundle.entry[0].resource.id"),
        ("value", "Bundle.entry[0].resource.contained[0].id"),
    ]


def test_good_ids_are_fine() -> None:
    assert rules({**PATIENT, "id": "A-z.0" + "x" * 59}) == []


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"effectiveDateTime": "2020-11-11T10:58:14"}, "Observation.effectiveDateTime"),
        ({"effectiveDateTime": "2020-11-11T10:58:14.768528"}, "Observation.effectiveDateTime"),
        ({"issued": "2020-11-11T10:58:14"}, "Observation.issued"),
        (
            {"effectivePeriod": {"start": "2020-11-11T10:58:14"}},
            "Observation.effectivePeriod.start",
        ),
    ],
)
def test_time_without_timezone_is_refused(fields: dict[str, Any], location: str) -> None:
    issues = rules(observation(**fields))
    assert at(issues) == [("value", location)]
    assert issues[0].diagnostics == "If a date has a time, it must have a timezone."


def test_timezones_dates_and_plain_strings_are_fine() -> None:
    doc = observation(
        effectiveDateTime="2020-11-11T10:58:14+01:00",
        issued="2020-11-11T10:58:14Z",
        valueString="2020-11-11T10:58:14",  # a string, not a dateTime
        identifier=[{"value": "2020-11-11T10:58:14"}],
    )
    assert rules(doc) == []
    assert rules({**PATIENT, "birthDate": "2020-11-11"}) == []


@pytest.mark.parametrize(
    ("doc", "location"),
    [
        ({"resourceType": "Encounter", "status": "completed", "class": {"code": "AMB"}}, "status"),
        ({**PATIENT, "gender": "F"}, "gender"),
        (observation(status="done"), "status"),
        ({"resourceType": "Bundle", "type": "bag"}, "type"),
    ],
)
def test_required_bindings_the_gateway_reads(doc: dict[str, Any], location: str) -> None:
    issues = rules(doc)
    assert at(issues) == [("code-invalid", f"{doc['resourceType']}.{location}")]


def test_required_binding_codes_inside_bundles() -> None:
    doc = bundle(observation(status="final"), kind="transaction")
    doc["entry"][0]["request"] = {"method": "POST", "url": "Observation"}
    assert rules(doc) == []
    doc["entry"][0]["request"]["method"] = "post"
    assert at(rules(doc)) == [("code-invalid", "Bundle.entry[0].request.method")]


def test_required_choice_is_reported_even_beside_other_errors() -> None:
    doc = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/1"},
        "authoredOn": "not a date",
    }
    status, issues = validate(doc)
    assert status == 200
    assert ("required", "MedicationRequest") in at(issues)
    assert ("value", "MedicationRequest.authoredOn") in at(issues)
    doc["authoredOn"] = "2020-01-01"
    status, issues = validate(doc)  # the model says it too: reported once
    assert at(errors(issues)) == [("required", "MedicationRequest")]
    doc["medicationReference"] = {"reference": "Medication/m"}
    assert validate(doc) == (200, [])


def test_rules_never_echo_values() -> None:
    secret = "Zebediah-Quux"
    doc = bundle(
        {"resourceType": "Patient", "id": secret + " x", "gender": secret},
        observation(
            subject={"reference": "#" + secret},
            effectivePeriod={"start": "2025", "end": "2024"},
            effectiveDateTime="2020-01-01T10:00:00",
        ),
    )
    doc["entry"][0]["fullUrl"] = f"http://example.org/{secret}"
    doc["entry"][1]["fullUrl"] = f"urn:uuid:{secret}"
    issues = rules(doc)
    assert len(issues) >= 6
    assert all(secret not in (i.diagnostics + str(i.location)) for i in issues)


def test_a_flood_of_issues_is_capped() -> None:
    issues = rules({**PATIENT, "name": [{}] * 500})
    assert len(issues) == 101
    assert issues[-1].code == "too-costly"


def test_clean_documents_have_no_rule_issues() -> None:
    assert rules(sample()) == []


# --- $validate ---------------------------------------------------------------------------------


def test_validate_accepts_any_resource_type() -> None:
    assert validate(PATIENT) == (200, [])
    assert validate(PATIENT, "Patient") == (200, [])
    status, issues = validate({**PATIENT, "birthDate": "soon"})
    assert status == 200
    assert at(errors(issues)) == [("value", "Patient.birthDate")]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{}", "text/plain", 415),
        (b"{}", "application/fhir+json; charset=latin-1", 415),
        (b"{", FHIR_JSON, 400),
        (b"\xff", FHIR_JSON, 400),
        (b"[]", FHIR_JSON, 400),
        (b'{"id": "x"}', FHIR_JSON, 400),
        (b'{"resourceType": "Zebediah"}', FHIR_JSON, 400),
        (b'{"resourceType": ["Patient"]}', FHIR_JSON, 400),
    ],
)
def test_validate_refuses_what_it_cannot_validate(
    body: bytes, content_type: str, status: int
) -> None:
    got, issues = validate_body(body, content_type)
    assert got == status
    assert errors(issues)
    assert all("Zebediah" not in i.diagnostics for i in issues)


def test_validate_checks_the_expected_type() -> None:
    status, [issue] = validate(PATIENT, "Observation")
    assert status == 400
    assert issue.diagnostics == "Expected a Observation resource, got Patient."


def test_validate_r4_only_types() -> None:
    product = {"resourceType": "MedicinalProduct", "id": "mp", "name": [{"productName": "A"}]}
    status, issues = validate(product)
    assert status == 200 and not errors(issues)
    assert at(issues) == [("not-supported", "MedicinalProduct")]
    status, issues = validate({**product, "id": "m p", "name": []})
    assert at(errors(issues)) == [
        ("invalid", "MedicinalProduct.name"),
        ("value", "MedicinalProduct.id"),
    ]
    status, issues = validate(bundle(PATIENT, product))
    assert [(i.severity, i.location) for i in issues] == [
        ("information", "Bundle.entry[1].resource")
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'{"resourceType": "Patient", "id": {}}',
        b'{"resourceType": "Patient", "name": "x", "contained": [7]}',
        b'{"resourceType": "Bundle", "type": "collection", "entry": [1, {"fullUrl": 2}]}',
        b'{"resourceType": "Bundle", "entry": {"resource": {}}}',
        b'{"resourceType": "Observation", "effectivePeriod": {"start": 1, "end": []}}',
        b'{"resourceType": "Patient", "extension": ' + b"[" * 700 + b"]" * 700 + b"}",
        b'{"resourceType": "Patient", "extension": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_validate_never_raises(body: bytes) -> None:
    status, issues = validate_body(body, FHIR_JSON)
    assert status in (200, 400)
    assert errors(issues)


# --- ingestion applies the rules too -------------------------------------------------------------


def ingest(doc: dict[str, Any]) -> list[Any]:
    return parse_bundle(json.dumps(doc).encode(), FHIR_JSON, tenant="t", channel="c")


def test_ingestion_refuses_rule_defects_with_422() -> None:
    doc = sample()
    doc["entry"][0]["resource"]["name"][0]["given"] = []
    report = doc["entry"][3]["resource"]
    report.pop("effectiveDateTime")
    report["effectivePeriod"] = {"start": "2024-03-05", "end": "2024-03-04"}
    with pytest.raises(InvalidInput) as caught:
        ingest(doc)
    assert caught.value.status == 422
    assert at(caught.value.issues) == [
        ("invalid", "Bundle.entry[0].resource.name[0].given"),
        ("invariant", "Bundle.entry[3].resource.effectivePeriod"),
    ]


def test_r4_only_entries_in_a_collection_are_ignored_with_a_note() -> None:
    doc = sample()
    product = {"resourceType": "MedicinalProduct", "id": "mp", "name": [{"productName": "A"}]}
    doc["entry"].append({"fullUrl": uuid_url(42), "resource": product})
    items, issues = parse_bundle_with_issues(
        json.dumps(doc).encode(), FHIR_JSON, tenant="t", channel="c"
    )
    assert len(items) == 1
    assert [(i.severity, i.code, i.location) for i in issues] == [
        ("information", "not-supported", "Bundle.entry[4].resource")
    ]
    assert len(ingest(doc)) == 1


def test_unknown_entry_types_are_still_refused() -> None:
    doc = sample()
    doc["entry"].append({"fullUrl": uuid_url(42), "resource": {"resourceType": "Nope"}})
    with pytest.raises(InvalidInput) as caught:
        ingest(doc)
    assert at(caught.value.issues) == [("structure", "Bundle.entry[4].resource")]


# --- the corpus acceptance table ----------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One corpus file: what we decide and why.

    ``java``: the elements the Java validator's error issues point at (its
    ``expression``, or the element its message names when it points at the
    parent), normalised; our errors must hit each. ``extra``: where our errors
    point beyond those, and ``defect`` (code, location pattern) pairs that every
    error of a non-conformant ``valid/`` file must fit. ``ingest``: what
    ``parse_bundle`` makes of a Bundle ("no-work" is the business-rule 422).
    """

    file: str
    verdict: str  # "reject" | "accept"
    java: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    defect: tuple[tuple[str, str], ...] = ()
    ingest: str | None = None
    why: str = ""


ENTRY = r"Bundle\.entry\[\d+\]"
TABLE = [
    # invalid/: the Java validator's negative tests
    Row("Observation-ex-pain.json", "reject", ("Observation.code", "Observation.valueInteger")),
    Row("ai3.json", "reject", ("Patient.unknownElement",)),
    Row("ai4.json", "reject", ("Patient.birthDate",)),
    Row("bad-json-close-1.json", "reject", why="not JSON: 400, both name line 15"),
    Row(
        "bundle-duplicate-id.json",
        "reject",
        ("Bundle.entry[0]",),
        extra=("Bundle.entry[1]",),
        why="relative fullUrls in entries 0 and 1; the Java validator locates both at "
        "Bundle.entry[0] (its literal path; its line numbers say 6 and 13)",
    ),
    Row("empty-array.json", "reject", ("DocumentReference.category[0].coding",)),
    Row("encounter-period.json", "reject", ("Encounter.period",), why="per-1, precisions differ"),
    Row(
        "hakan-se.json",
        "reject",
        (
            "MedicationRequest.medication",
            "MedicationRequest.authoredOn",
            "MedicationRequest.requester",
        ),
    ),
    Row("patient-id-bad-2.json", "reject", ("Patient.id",)),
    Row(
        "synthea.json",
        "reject",
        ("Encounter.reasonCode", "Encounter.status"),
        why="status 'completed' is R5; R4 encounter-status has 'finished'",
    ),
    # valid/: conformant except where a defect is named
    Row(
        "cdc-ti-002_CA_ORU_R01_initial_translation.fhir.json",
        "reject",
        defect=(
            ("required", rf"{ENTRY}\.resource\.(code|intent|target|agent)"),
            ("required", r"Bundle\.entry\[0\]\.resource\.destination\[0\]\.endpoint"),
            ("invalid", ENTRY),
        ),
        ingest="defect",
        why="R4 1..1 elements missing (Observation.code in 47 of 49 Observations, "
        "ServiceRequest.intent x2, Provenance.target, Provenance.agent, "
        "MessageHeader.destination.endpoint) and relative fullUrls ('MessageHeader/...') "
        "in all 73 entries",
    ),
    Row(
        "hl7-r4-Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json",
        "reject",
        defect=(("invalid", r"Bundle\.entry\[2\]"),),
        ingest="defect",
        why="entry 2's fullUrl ends Patient/pat12 but the resource id is pat2 (an HL7 "
        "example error; R4: the fullUrl SHALL NOT disagree with Resource.id)",
    ),
    Row("hl7-r4-Bundle-bundle-example.json", "accept", ingest="no-work"),
    Row("hl7-r4-Bundle-bundle-response.json", "accept", ingest="no-work"),
    Row("hl7-r4-Bundle-bundle-transaction.json", "accept", ingest="no-work"),
    Row("hl7-r4-Bundle-f001.json", "accept", ingest="no-work"),
    Row("hl7-r4-Bundle-father.json", "accept", ingest="no-work"),
    Row("hl7-r4-Bundle-lipids.json", "accept", ingest="no-work"),
    Row("hl7-r4-Bundle-xds.json", "accept", ingest="no-work"),
    Row("hl7-r4-DiagnosticReport-f201.json", "accept"),
    Row("hl7-r4-DiagnosticReport-ultrasound.json", "accept"),
    Row("hl7-r4-ImagingStudy-example-xr.json", "accept"),
    Row("hl7-r4-ImagingStudy-example.json", "accept"),
    Row("hl7-r4-Observation-bmd.json", "accept"),
    Row("hl7-r4-Organization-1.json", "accept"),
    Row("hl7-r4-Patient-dicom.json", "accept"),
    Row("hl7-r4-Patient-example.json", "accept"),
    Row("hl7-r4-Practitioner-example.json", "accept"),
    Row("hl7-r4-ServiceRequest-di.json", "accept"),
    Row("synthea-r4-Todd315_Stamm704_transaction.json", "accept", ingest="no-work"),
    Row("synthea-r4-hospitalInformation_transaction.json", "accept", ingest="no-work"),
    Row(
        "synthea-r4-practitionerInformation_transaction.json",
        "reject",
        defect=(("not-found", rf"{ENTRY}\.resource\.organization"),),
        ingest="defect",
        why="PractitionerRole.organization points at urn:uuid fullUrls that exist only in "
        "the companion hospitalInformation Bundle; urn:uuid ids are local to one Bundle",
    ),
]
ROWS = {row.file: row for row in TABLE}


def path_of(name: str) -> Path:
    return VALID / name if (VALID / name).exists() else INVALID / name


def normalise(path: str) -> str:
    """Java FHIRPath to ours: ``value.ofType(integer)`` -> ``valueInteger``, no ``[x]``
    or ``/*comments*/``."""
    path = re.sub(r"/\*.*?\*/", "", path)
    path = re.sub(r"\.(\w+)\.ofType\((\w)(\w*)\)", lambda m: f".{m[1]}{m[2].upper()}{m[3]}", path)
    return path.replace("[x]", "")


def java_errors(name: str) -> list[tuple[str, str]]:
    """(where it points, the element it is about) for each error of the Java outcome."""
    outcome = json.loads((OUTCOMES / name.replace(".json", ".java-outcome.json")).read_text())
    found = []
    for issue in outcome["issue"]:
        if issue["severity"] not in ("error", "fatal"):
            continue  # terminology-server and profile warnings
        where = (issue.get("expression") or issue.get("location") or [""])[0]
        if not where:
            continue
        where, text = normalise(where), issue.get("details", {}).get("text", "")
        named = re.match(r"([A-Z]\w*(?:\.\w+(?:\[x\])?)+): minimum required", text)
        unknown = re.match(r"Unrecognized property '(\w+)'", text)
        element = normalise(named[1]) if named else f"{where}.{unknown[1]}" if unknown else where
        found.append((where, element))
    return found


def hits(location: str | None, where: str, element: str) -> bool:
    """Our issue points at the Java issue's element, the same parent, or inside it."""
    loc = location or ""
    return loc in (where, element) or loc.startswith((f"{element}.", f"{element}["))


def corpus_files() -> list[str]:
    if not FHIR.is_dir():
        return []
    return sorted(p.name for p in [*VALID.glob("*.json"), *INVALID.glob("*.json")])


@needs_corpus
def test_the_table_covers_the_corpus() -> None:
    assert sorted(ROWS) == corpus_files()


@needs_corpus
@pytest.mark.parametrize("row", TABLE, ids=lambda r: r.file)
def test_corpus_verdict(row: Row) -> None:
    status, issues = validate_body(path_of(row.file).read_bytes(), FHIR_JSON)
    found = errors(issues)
    if row.verdict == "accept":
        assert (status, found) == (200, []), found[:5]
        return
    assert found, "accepted"
    if row.file == "bad-json-close-1.json":
        assert status == 400 and "line 15" in found[0].diagnostics
        return
    assert status == 200
    if row.defect:
        for issue in found:
            assert any(
                issue.code == code and re.fullmatch(pattern, issue.location or "")
                for code, pattern in row.defect
            ), issue
        for code, pattern in row.defect:
            assert any(i.code == code and re.fullmatch(pattern, i.location or "") for i in found)


@needs_corpus
@pytest.mark.parametrize(
    "row", [r for r in TABLE if (INVALID / r.file).exists()], ids=lambda r: r.file
)
def test_corpus_matches_the_java_validator(row: Row) -> None:
    java = java_errors(row.file)
    assert sorted({element for _, element in java}) == sorted(row.java)
    _, issues = validate_body((INVALID / row.file).read_bytes(), FHIR_JSON)
    ours = [i.location for i in errors(issues)]
    if not java:  # a parse failure: neither side points at an element
        assert ours == [None]
        return
    for where, element in java:
        assert any(hits(loc, where, element) for loc in ours), (element, ours)
    for loc in ours:
        explained = any(hits(loc, where, element) for where, element in java)
        assert explained or loc in row.extra, loc


@needs_corpus
@pytest.mark.parametrize("row", [r for r in TABLE if r.ingest], ids=lambda r: r.file)
def test_corpus_bundles_at_ingestion(row: Row) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_bundle((VALID / row.file).read_bytes(), FHIR_JSON, tenant="t", channel="c")
    assert caught.value.status == 422
    codes = {i.code for i in caught.value.issues}
    if row.ingest == "no-work":
        assert codes == {"business-rule"}  # valid FHIR, just no radiology work
    else:
        assert codes == {code for code, _ in row.defect}


# --- the claims about non-conformant valid/ files, checked against the files ------------------

# R4 (4.0.1) cardinalities: Observation.code 1..1, ServiceRequest.intent 1..1,
# Provenance.target 1..*, Provenance.agent 1..*, MessageHeader.destination.endpoint 1..1
# (hl7.org/fhir/R4/observation.html, servicerequest.html, provenance.html, messageheader.html).
R4_REQUIRED = {
    "Observation": {"code"},
    "ServiceRequest": {"intent"},
    "Provenance": {"target", "agent"},
    "MessageHeader": {"destination[0].endpoint"},
}


@needs_corpus
def test_cdc_translation_is_not_r4() -> None:
    name = "cdc-ti-002_CA_ORU_R01_initial_translation.fhir.json"
    doc = json.loads((VALID / name).read_text(encoding="utf-8-sig"))
    _, issues = validate_body((VALID / name).read_bytes(), FHIR_JSON)
    required = [i for i in issues if i.code == "required"]
    for issue in required:
        m = re.fullmatch(r"Bundle\.entry\[(\d+)\]\.resource\.(.+)", issue.location or "")
        assert m, issue
        rtype = doc["entry"][int(m[1])]["resource"]["resourceType"]
        assert m[2] in R4_REQUIRED[rtype]
    observations = [
        e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert sum("code" not in o for o in observations) == 47
    relative = [i for i in issues if i.code == "invalid"]
    assert len(relative) == len(doc["entry"]) == 73
    assert all(not e["fullUrl"].startswith(("urn:", "http")) for e in doc["entry"])


@needs_corpus
def test_hl7_message_example_full_url_disagrees_with_id() -> None:
    doc = json.loads(
        (VALID / "hl7-r4-Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json").read_text()
    )
    entry = doc["entry"][2]
    assert entry["fullUrl"].rsplit("/", 1)[-1] != entry["resource"]["id"]


@needs_corpus
def test_synthea_practitioners_point_into_another_bundle() -> None:
    mine = json.loads((VALID / "synthea-r4-practitionerInformation_transaction.json").read_text())
    other = json.loads((VALID / "synthea-r4-hospitalInformation_transaction.json").read_text())
    urls = {e["fullUrl"] for e in mine["entry"]}
    elsewhere = {e["fullUrl"] for e in other["entry"]}
    refs = [
        e["resource"]["organization"]["reference"]
        for e in mine["entry"]
        if e["resource"]["resourceType"] == "PractitionerRole"
    ]
    assert refs and all(r not in urls and r in elsewhere for r in refs)


# --- no PHI from the corpus in any diagnostics ---------------------------------------------------


def patient_names(node: Any) -> set[str]:
    """Family, given and text names of every Patient anywhere in a document."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= patient_names(item)
    elif isinstance(node, dict):
        if node.get("resourceType") == "Patient":
            for name in node.get("name") or []:
                parts = [name.get("family"), name.get("text"), *(name.get("given") or [])]
                found |= {p for p in parts if isinstance(p, str) and len(p) >= 3}
        for value in node.values():
            found |= patient_names(value)
    return found


@needs_corpus
@pytest.mark.parametrize("name", corpus_files())
def test_corpus_names_never_reach_diagnostics(name: str) -> None:
    body = path_of(name).read_bytes()
    try:
        names = patient_names(json.loads(body.decode("utf-8-sig")))
    except ValueError:
        names = {"Robin", "Christopher"}  # bad-json-close-1.json, read by eye
    _, issues = validate_body(body, FHIR_JSON)
    try:
        parse_bundle(body, FHIR_JSON, tenant="t", channel="c")
    except InvalidInput as exc:
        issues = [*issues, *exc.issues, Issue("error", "x", str(exc))]
    text = json.dumps([vars(i) for i in issues])
    assert not [n for n in names if n in text]


@needs_corpus
def test_corpus_has_patient_names_to_look_for() -> None:
    names = set().union(
        *(
            patient_names(json.loads(path_of(n).read_bytes().decode("utf-8-sig")))
            for n in corpus_files()
            if n != "bad-json-close-1.json"
        )
    )
    assert {"Chalmers", "Smith"} <= names


def test_validation_leaves_the_document_alone() -> None:
    doc = sample()
    before = copy.deepcopy(doc)
    rules(doc)
    validate(doc)
    assert doc == before
