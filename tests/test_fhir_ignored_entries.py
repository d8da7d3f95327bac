"""Entries of resource types the adapter does not read are accepted and ignored,
each with one informational issue (``Bundle.entry[i]``), never rejected; the 202
of ``POST /fhir/r4/Bundle`` lists those issues after the "accepted as job" ones."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sluicegate.adapters.fhir.parse import parse_bundle_with_issues
from sluicegate.app import create_app
from tests.conftest import FAKE_INFERENCE, make_settings

FHIR_JSON = "application/fhir+json"

PRACTITIONER = {"resourceType": "Practitioner", "id": "pr1", "name": [{"family": "Wu"}]}
ORGANIZATION = {"resourceType": "Organization", "id": "org1", "name": "Radiology Dept"}
MEDICATION = {"resourceType": "Medication", "id": "med1", "code": {"text": "contrast"}}
HEADER = {
    "resourceType": "MessageHeader",
    "id": "mh1",
    "eventCoding": {"system": "http://example.org/events", "code": "radiology-report"},
    "source": {"endpoint": "http://example.org/ris"},
}


def uuid_url(n: int) -> str:
    return f"urn:uuid:{uuid.UUID(int=n)}"


def with_entries(sample: dict[str, Any], *resources: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(sample)
    for n, resource in enumerate(resources):
        doc["entry"].append({"fullUrl": uuid_url(1000 + n), "resource": copy.deepcopy(resource)})
    return doc


def parse(doc: dict[str, Any]) -> tuple[list[Any], list[tuple[str, str, str | None]]]:
    items, issues = parse_bundle_with_issues(
        json.dumps(doc).encode(), FHIR_JSON, tenant="t", channel="c"
    )
    return items, [(i.severity, i.code, i.location) for i in issues]


def test_the_sample_has_nothing_to_ignore(sample_json: dict[str, Any]) -> None:
    items, issues = parse(sample_json)
    assert len(items) == 1
    assert issues == []


@pytest.mark.parametrize("kind", ["collection", "document"])
def test_unread_types_are_ignored_with_one_note_each(
    sample_json: dict[str, Any], kind: str
) -> None:
    doc = with_entries(sample_json, PRACTITIONER, ORGANIZATION, MEDICATION)
    doc["type"] = kind
    items, issues = parse(doc)
    assert len(items) == 1
    assert issues == [
        ("information", "informational", "Bundle.entry[4]"),
        ("information", "informational", "Bundle.entry[5]"),
        ("information", "informational", "Bundle.entry[6]"),
    ]


def test_the_note_names_the_type_and_no_value(sample_json: dict[str, Any]) -> None:
    doc = with_entries(sample_json, ORGANIZATION)
    _, issues = parse_bundle_with_issues(
        json.dumps(doc).encode(), FHIR_JSON, tenant="t", channel="c"
    )
    (issue,) = issues
    assert "Organization" in issue.diagnostics
    assert "ignored" in issue.diagnostics
    assert "Radiology Dept" not in issue.diagnostics and "org1" not in issue.diagnostics


def test_a_message_header_is_ignored_with_a_note(sample_json: dict[str, Any]) -> None:
    doc = copy.deepcopy(sample_json)
    doc["type"] = "message"
    doc["entry"].insert(0, {"fullUrl": uuid_url(7), "resource": copy.deepcopy(HEADER)})
    items, issues = parse(doc)
    assert len(items) == 1
    assert issues == [("information", "informational", "Bundle.entry[0]")]


def test_an_r4_only_entry_keeps_its_single_note(sample_json: dict[str, Any]) -> None:
    product = {"resourceType": "MedicinalProduct", "id": "mp", "name": [{"productName": "A"}]}
    doc = with_entries(sample_json, product, PRACTITIONER)
    _, issues = parse(doc)
    assert issues == [
        ("information", "not-supported", "Bundle.entry[4].resource"),
        ("information", "informational", "Bundle.entry[5]"),
    ]


def test_transaction_entries_get_no_note(sample_json: dict[str, Any]) -> None:
    """A transaction's response Bundle answers every entry (200 for context) itself."""
    doc = with_entries(sample_json, PRACTITIONER)
    doc["type"] = "transaction"
    for entry in doc["entry"]:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    items, issues = parse(doc)
    assert len(items) == 1
    assert issues == []


# --- over HTTP -------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path, scripted: Any) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE)
    with TestClient(create_app(settings, run_relay=False)) as test_client:
        yield test_client


def test_post_bundle_lists_ignored_entries_after_the_job(
    client: TestClient, sample_json: dict[str, Any]
) -> None:
    doc = with_entries(sample_json, PRACTITIONER, MEDICATION)
    response = client.post(
        "/fhir/r4/Bundle", content=json.dumps(doc).encode(), headers={"Content-Type": FHIR_JSON}
    )
    assert response.status_code == 202, response.text
    job = response.headers["Content-Location"].removeprefix("/jobs/")
    issues = response.json()["issue"]
    assert [(i["severity"], i["code"]) for i in issues] == [("information", "informational")] * 3
    assert job in issues[0]["diagnostics"] and "expression" not in issues[0]
    assert [i["expression"] for i in issues[1:]] == [["Bundle.entry[4]"], ["Bundle.entry[5]"]]
    assert client.get(f"/jobs/{job}").status_code == 200


def test_post_bundle_without_ignored_entries_answers_only_the_job(
    client: TestClient, sample_json: dict[str, Any]
) -> None:
    response = client.post(
        "/fhir/r4/Bundle",
        content=json.dumps(sample_json).encode(),
        headers={"Content-Type": FHIR_JSON},
    )
    assert response.status_code == 202, response.text
    assert len(response.json()["issue"]) == 1
