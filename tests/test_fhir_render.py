"""The rendered Bundle's Provenance and Devices: who wrote the draft, from what."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from sluicegate.adapters.fhir import FhirAdapter, provenance
from sluicegate.adapters.fhir.render import render_report
from sluicegate.core.interfaces import Generation, WorkItem, Zone

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "fhir" / "radiology-bundle.json"
URI = "urn:ietf:rfc:3986"
NOW = datetime(2024, 3, 5, 10, 30, 15, tzinfo=timezone(timedelta(hours=1)))
GENERATION = Generation(
    text="IMPRESSION: 7 mm right upper lobe nodule.",
    backend_id="triton-a",
    model="rad-llm@3",
    zone=Zone.ONPREM,
    latency_s=4.2,
)
# Every element of these resources in FHIR R4 (4.0.1); R4B's models accept a few more.
R4_ELEMENTS = {
    "Provenance": {
        *("resourceType", "id", "meta", "implicitRules", "language", "text", "contained"),
        *("extension", "modifierExtension", "target", "occurredPeriod", "occurredDateTime"),
        *("recorded", "policy", "location", "reason", "activity", "agent", "entity", "signature"),
    },
    "Device": {
        *("resourceType", "id", "meta", "implicitRules", "language", "text", "contained"),
        *("extension", "modifierExtension", "identifier", "definition", "udiCarrier", "status"),
        *("statusReason", "distinctIdentifier", "manufacturer", "manufactureDate"),
        *("expirationDate", "lotNumber", "serialNumber", "deviceName", "modelNumber"),
        *("partNumber", "type", "specialization", "version", "property", "patient", "owner"),
        *("contact", "location", "url", "note", "safety", "parent"),
    },
}
R4_PARTS = {
    "deviceName": {"name", "type"},
    "version": {"type", "component", "value"},
    "agent": {"type", "role", "who", "onBehalfOf"},
    "entity": {"role", "what", "agent"},
}


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def parse(doc: dict[str, Any]) -> WorkItem:
    [item] = FhirAdapter().parse(
        json.dumps(doc).encode(), "application/fhir+json", tenant="t1", channel="fhir"
    )
    return item


def render(
    item: WorkItem, job: str = "job-1", generation: Generation = GENERATION
) -> dict[str, Any]:
    out = render_report(item, generation, job, now=NOW)
    assert out.media_type == "application/fhir+json"
    bundle: dict[str, Any] = json.loads(out.body)
    return bundle


def by_type(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def by_url(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


@pytest.fixture(scope="module")
def item() -> WorkItem:
    return parse(sample())


@pytest.fixture(scope="module")
def bundle(item: WorkItem) -> dict[str, Any]:
    return render(item)


def test_render_output_holds_report_then_provenance_and_devices(bundle: dict[str, Any]) -> None:
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["DiagnosticReport", "Provenance", "Device", "Device"]
    report = bundle["entry"][0]["resource"]
    assert report["status"] == "preliminary"
    assert [t["code"] for t in report["meta"]["tag"]] == ["AIAST"]
    assert [t["code"] for t in report["meta"]["security"]] == ["AIAST"]


def test_render_output_round_trips_through_r4b(bundle: dict[str, Any]) -> None:
    parsed = Bundle.model_validate(bundle)
    assert json.loads(parsed.model_dump_json()) == bundle


def test_render_output_uses_only_r4_elements(bundle: dict[str, Any]) -> None:
    for rtype, allowed in R4_ELEMENTS.items():
        for res in by_type(bundle, rtype):
            assert set(res) <= allowed, rtype
            for part, names in R4_PARTS.items():
                for element in res.get(part, []):
                    assert set(element) <= names, f"{rtype}.{part}"
    prov = by_type(bundle, "Provenance")[0]
    assert {e["role"] for e in prov["entity"]} == {"source"}  # R4 provenance-entity-role


def test_render_every_bundle_reference_resolves(bundle: dict[str, Any]) -> None:
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(urls)) == len(urls)
    assert all(u.startswith("urn:uuid:") for u in urls)
    for ref in references(bundle):
        assert not ref.startswith("#")
        if ref.startswith("urn:"):
            assert ref in urls


def test_render_provenance_targets_the_report(bundle: dict[str, Any]) -> None:
    prov = by_type(bundle, "Provenance")[0]
    [target] = prov["target"]
    assert target["reference"] == bundle["entry"][0]["fullUrl"]
    assert by_url(bundle)[target["reference"]]["resourceType"] == "DiagnosticReport"
    activity = prov["activity"]["coding"][0]
    assert activity["system"] == "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
    assert activity["code"] == "CREATE"
    assert "signature" not in prov


def test_render_provenance_times(bundle: dict[str, Any]) -> None:
    prov = by_type(bundle, "Provenance")[0]
    recorded = datetime.fromisoformat(prov["recorded"])
    assert recorded.tzinfo is not None
    assert recorded == NOW
    assert prov["recorded"] == bundle["entry"][0]["resource"]["issued"] == bundle["timestamp"]
    period = prov["occurredPeriod"]
    start, end = datetime.fromisoformat(period["start"]), datetime.fromisoformat(period["end"])
    assert end == NOW
    assert end - start == timedelta(seconds=5)  # 4.2 s back from :15 is :10.8, truncated


def test_render_provenance_recorded_defaults_to_now(item: WorkItem) -> None:
    out = json.loads(render_report(item, GENERATION, "job-1").body)
    recorded = datetime.fromisoformat(by_type(out, "Provenance")[0]["recorded"])
    assert recorded.tzinfo is not None
    assert abs((datetime.now(UTC) - recorded).total_seconds()) < 60


def test_render_agents_are_the_model_and_the_gateway(bundle: dict[str, Any]) -> None:
    prov = by_type(bundle, "Provenance")[0]
    devices = by_url(bundle)
    roles = {}
    for agent in prov["agent"]:
        [coding] = agent["type"]["coding"]
        assert coding["system"] == (
            "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
        )
        device = devices[agent["who"]["reference"]]
        assert device["resourceType"] == "Device"
        roles[coding["code"]] = device
    assert list(roles) == ["author", "assembler"]

    model = roles["author"]
    assert model["deviceName"] == [{"name": "rad-llm@3", "type": "model-name"}]
    assert [v["value"] for v in model["version"]] == ["3"]
    assert [i["value"] for i in model["identifier"]] == ["triton-a"]
    assert model["type"]["text"] == "AI language model"
    assert "owner" not in model and "manufacturer" not in model

    gateway = roles["assembler"]
    assert gateway["deviceName"][0]["name"] == "Sluicegate"
    assert [v["value"] for v in gateway["version"]] == [version("sluicegate")]


@pytest.mark.parametrize(
    ("model", "versions"),
    [("rad-llm", None), ("qwen2.5:7b", ["7b"]), ("org/rad-llm@2024-06", ["2024-06"])],
)
def test_render_model_version_only_when_the_model_id_has_one(
    item: WorkItem, model: str, versions: list[str] | None
) -> None:
    gen = Generation(text="x", backend_id="", model=model, zone=Zone.ONPREM, latency_s=1.0)
    device = by_type(render(item, generation=gen), "Device")[0]
    assert device["deviceName"][0]["name"] == model
    if versions:
        assert [v["value"] for v in device["version"]] == versions
    else:
        assert "version" not in device
    assert "identifier" not in device  # no backend id given


def test_render_model_version_reported_by_the_backend_wins(item: WorkItem) -> None:
    gen = Generation(
        text="x",
        backend_id="t",
        model="smollm2",
        zone=Zone.ONPREM,
        latency_s=1.0,
        model_version="3",
    )
    device = by_type(render(item, generation=gen), "Device")[0]
    assert [v["value"] for v in device["version"]] == ["3"]


def test_render_without_a_usable_latency_has_no_period(item: WorkItem) -> None:
    gen = Generation(text="x", backend_id="b", model="m", zone=Zone.ONPREM, latency_s=float("nan"))
    prov = by_type(render(item, generation=gen), "Provenance")[0]
    assert "occurredPeriod" not in prov and prov["recorded"]


def test_render_gateway_version_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(provenance, "version", missing)
    provenance.gateway_version.cache_clear()
    try:
        assert provenance.gateway_device("x")["version"][0]["value"] == "0+unknown"
    finally:
        provenance.gateway_version.cache_clear()


def test_render_entities_are_the_sample_inputs(bundle: dict[str, Any]) -> None:
    doc = sample()
    inputs = {
        e["resource"]["resourceType"]: e
        for e in doc["entry"]
        if e["resource"]["resourceType"] in {"DiagnosticReport", "ImagingStudy", "ServiceRequest"}
    }
    prov = by_type(bundle, "Provenance")[0]
    whats = [e["what"] for e in prov["entity"]]
    assert sorted(w["reference"] for w in whats) == sorted(
        f"{rtype}/{e['resource']['id']}" for rtype, e in inputs.items()
    )
    for what in whats:
        assert what["reference"].startswith(f"{what['type']}/")
    # The source report also carries the fullUrl it had in the input.
    source = next(w for w in whats if w["type"] == "DiagnosticReport")
    assert source["identifier"] == {"system": URI, "value": inputs["DiagnosticReport"]["fullUrl"]}


def test_render_input_without_ids_keeps_its_fullurls_as_identifiers() -> None:
    doc = sample()
    for entry in doc["entry"]:
        del entry["resource"]["id"]
    out = render(parse(doc))
    Bundle.model_validate(out)
    urls = {e["fullUrl"] for e in out["entry"]}
    assert all(ref in urls for ref in references(out))  # nothing dangles
    prov = by_type(out, "Provenance")[0]
    originals = {e["fullUrl"] for e in doc["entry"][1:]}  # all but the Patient
    assert {e["what"]["identifier"]["value"] for e in prov["entity"]} == originals
    assert all(e["what"]["identifier"]["system"] == URI for e in prov["entity"])
    report = out["entry"][0]["resource"]
    assert report["subject"] == {
        "identifier": {"system": URI, "value": doc["entry"][0]["fullUrl"]},
        "type": "Patient",
    }
    assert report["basedOn"][0]["type"] == "ServiceRequest"
    assert report["imagingStudy"][0]["type"] == "ImagingStudy"


def test_render_fullurls_and_ids_are_stable_per_job(item: WorkItem) -> None:
    first, second, other = render(item, "job-7"), render(item, "job-7"), render(item, "job-8")
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]
    assert [e["resource"]["id"] for e in first["entry"]] == [
        e["resource"]["id"] for e in second["entry"]
    ]
    assert not {e["fullUrl"] for e in first["entry"]} & {e["fullUrl"] for e in other["entry"]}
    long_job = render(item, "j" * 60)
    assert all(len(e["resource"]["id"]) <= 64 for e in long_job["entry"])


def test_render_provenance_and_devices_carry_no_patient_data(
    item: WorkItem, bundle: dict[str, Any]
) -> None:
    text = json.dumps(by_type(bundle, "Provenance") + by_type(bundle, "Device"))
    # Event dates ("date") may appear as the study's effective time; nothing else may.
    known = [v for kind, values in item.identifiers.items() if kind != "date" for v in values]
    assert "MRN-0048213" in known and "Testperson" in known  # the sample's own
    for value in known:
        assert value not in text
    assert "Patient" not in text
