"""Structured rules: harvesting identifiers from FHIR/HL7, de-identified copies, profiles."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from sluicegate.core.config import PrivacyConfig
from sluicegate.core.privacy.engine import PrivacyEngine
from sluicegate.core.privacy.guard import known_hits
from sluicegate.core.privacy.rules import (
    ProfileError,
    apply_fhir,
    apply_hl7,
    default_profile,
    harvest_fhir,
    harvest_hl7,
    load_profile,
    parse_rules,
)
from sluicegate.core.privacy.vault import Vault
from tests.conftest import CORPUS

FHIR = CORPUS / "fhir" / "valid"
HL7_FILES = sorted(p for p in (CORPUS / "hl7v2").iterdir() if p.suffix in (".hl7", ".txt"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FHIR / name).read_text(encoding="utf-8"))
    return data


def no_dates(ids: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: v for k, v in ids.items() if "date" not in k}


def test_default_profile_is_valid_and_documented() -> None:
    profile = default_profile()
    assert len(profile.fhir) > 40 and len(profile.hl7) > 40
    doc = (Path(__file__).resolve().parents[1] / "docs" / "privacy.md").read_text(encoding="utf-8")
    for rule in (*profile.fhir, *profile.hl7):
        assert f"`{rule.target}`" in doc, rule.target


def test_harvest_fhir_patient() -> None:
    ids = harvest_fhir(load("hl7-r4-Patient-example.json"))
    assert {"Peter James Chalmers", "Chalmers, Peter", "Jim", "Bénédicte"} <= set(ids["name"])
    assert ids["mrn"] == ["12345"]
    assert "(03) 5555 6473" in ids["phone"] and ids["birth_date"] == ["1974-12-25"]
    assert {"534 Erewhon St", "PleasantVille", "3999"} <= set(ids["address"])
    assert "Vic" not in ids["address"]  # state is kept, so not hunted


def test_harvest_fhir_synthea_bundle() -> None:
    ids = harvest_fhir(load("synthea-r4-Todd315_Stamm704_transaction.json"))
    assert {"Todd315", "Stamm704", "Todd315 Stamm704"} <= set(ids["name"])
    assert ids["birth_date"] and ids["mrn"] and ids["address"] and ids["phone"]
    assert len(ids["provider"]) >= 2 and len(ids["date"]) > 20


def test_harvest_fhir_reads_contained_resources() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "contained": [
            {"resourceType": "Patient", "id": "p", "name": [{"family": "Quill", "given": ["Ada"]}]}
        ],
        "subject": {"reference": "#p", "display": "Ada Quill"},
        "conclusion": "Ada Quill: no change.",
    }
    ids = harvest_fhir(report)
    assert {"Quill", "Ada", "Ada Quill", "Quill, Ada"} <= set(ids["name"])
    out = apply_fhir(report, Vault(mode="tags"))
    text = json.dumps(out)
    assert "Quill" not in text and "Ada" not in text
    assert out["conclusion"] == "[PATIENT_1]: no change."
    assert out["contained"][0]["name"][0]["family"] == "[PATIENT_1]"


def test_harvest_hl7_adt() -> None:
    ids = harvest_hl7((CORPUS / "hl7v2" / "msfc-ADT-A01-02.hl7").read_text())
    assert {"EVERYMAN", "ADAM", "ADAM EVERYMAN", "EVERYMAN, ADAM"} <= set(ids["name"])
    assert {"1234567", "PATID1234", "123456789"} <= set(ids["mrn"])
    assert "1988-08-18" in ids["birth_date"] and ids["ssn"] == ["PSSN123121234"]
    assert {"1000 Hospital Lane", "Ann Arbor", "99999"} <= set(ids["address"])
    assert "78788788" in ids["phone"]
    assert {"Woolfson", "Kathleen Woolfson", "Alaz"} <= set(ids["provider"])
    assert "MI" not in ids["address"]  # a state code would wipe "MI" (infarction) from text


@pytest.mark.parametrize("path", HL7_FILES, ids=lambda p: p.name)
def test_hl7_copies_keep_structure_and_lose_identifiers(path: Path) -> None:
    er7 = path.read_text(encoding="utf-8", errors="replace").lstrip("\ufeff")
    ids = harvest_hl7(er7)
    assert ids.get("name") or ids.get("provider") or ids.get("mrn")
    for mode in ("tags", "realistic"):
        out = apply_hl7(er7, Vault(mode=mode, seed=5, date_offset_days=-9))
        fields = [seg[4:] for seg in out.split("\r")]  # segment ids are not identifiers
        assert known_hits(no_dates(ids), fields) == []
        before = [s for s in er7.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s.strip()]
        after = [s for s in out.split("\r") if s]
        assert [s[:3] for s in after] == [s[:3] for s in before]
        assert after[0].startswith(before[0][:9])  # MSH keeps its delimiters
        assert [s.count("|") for s in after] == [s.count("|") for s in before]


@pytest.mark.parametrize("path", sorted(FHIR.glob("*.json")), ids=lambda p: p.name)
def test_fhir_copies_lose_identifiers(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    ids = harvest_fhir(doc)
    original = copy.deepcopy(doc)
    for mode in ("tags", "realistic"):
        out = apply_fhir(doc, Vault(mode=mode, seed=5, date_offset_days=-9))
        assert known_hits(no_dates(ids), [json.dumps(out, ensure_ascii=False)]) == []
        assert out.get("resourceType") == doc.get("resourceType")
    assert doc == original  # the input is not modified


def test_fhir_methods() -> None:
    patient = load("hl7-r4-Patient-example.json")
    vault = Vault(mode="realistic", seed=2, date_offset_days=-30)
    out = apply_fhir(patient, vault)
    assert out["birthDate"] == (date(1974, 12, 25) - timedelta(30)).isoformat()  # date_shift
    assert "postalCode" not in out["address"][0]  # 4 digits: too short to keep 3 of
    assert out["address"][0]["state"] == "Vic"  # keep
    assert out["gender"] == "male"  # no rule: kept
    assert "valueDateTime" not in json.dumps(out.get("_birthDate", {}))  # redacted
    assert out["address"][0]["period"]["start"] == (date(1974, 12, 25) - timedelta(30)).isoformat()
    assert out["name"][0]["use"] == "official"  # structural keys stay
    tags = apply_fhir(patient, Vault(mode="tags"))
    assert tags["birthDate"].startswith("[DATE_") and tags["identifier"][0]["value"] == "[ID_1]"


def test_inline_override_rules_win() -> None:
    patient = load("hl7-r4-Patient-example.json")
    profile = default_profile().with_overrides(
        parse_rules(
            [
                {"path": "Patient.birthDate", "method": "generalize", "kind": "birth_date"},
                {"path": "Patient.gender", "method": "redact"},
                {"path": "Patient.name.given", "method": "keep"},
            ],
            "fhir",
            "test",
        )
    )
    out = apply_fhir(patient, Vault(mode="tags"), profile)
    assert out["birthDate"] == "1974" and "gender" not in out
    assert out["name"][0]["given"] == ["Peter", "James"]
    assert "Peter" not in harvest_fhir(patient, profile).get("name", [])


def test_hl7_generalize_and_redact() -> None:
    er7 = (
        "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\r"
        "PID|1||4711^^^H^MR||Roe^Rita||19300215|F|||1 Elm St^^Salem^MA^01970\r"
    )
    profile = default_profile().with_overrides(
        hl7=parse_rules([{"field": "PID-7", "type": "TS", "method": "generalize"}], "hl7", "t")
    )
    out = apply_hl7(er7, Vault(mode="tags"), profile)
    pid = out.split("\r")[1].split("|")
    assert pid[7] == "1930" and pid[3].startswith("[ID_1]^^^H^MR")
    assert pid[5] == "[PATIENT_1]^" and pid[11].split("^")[3:5] == ["MA", "019"]


@pytest.mark.parametrize(
    ("rules", "domain", "message"),
    [
        (
            [{"path": "Patient.name", "method": "scramble"}],
            "fhir",
            "fhir rule 1 (Patient.name): method",
        ),
        ([{"path": "Patient.name", "method": "pseudonymize"}], "fhir", "needs a kind"),
        ([{"path": "name", "method": "redact"}], "fhir", "ResourceType.element"),
        ([{"path": "Patient.name", "method": "keep", "colour": 1}], "fhir", "unknown keys"),
        ([{"field": "PID5", "method": "redact"}], "hl7", "hl7 rule 1 (PID5)"),
        ([{"field": "PID-5", "method": "redact", "type": "XYZ"}], "hl7", "type must be"),
        ([{"method": "redact"}], "hl7", "'field' is required"),
        ("PID-5", "hl7", "must be a list"),
    ],
)
def test_invalid_rules_name_the_rule(rules: Any, domain: str, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_rules(rules, domain, "custom.yaml")
    assert message in str(caught.value) and "custom.yaml" in str(caught.value)


def test_profile_files(tmp_path: Path) -> None:
    good = tmp_path / "strict.yaml"
    good.write_text("name: strict\nfhir:\n  - {path: '*.**.text', method: redact}\nhl7: []\n")
    assert load_profile(good).name == "strict"
    bad = tmp_path / "bad.yaml"
    bad.write_text("fhir:\n  - {path: Patient.name, method: nope}\n")
    with pytest.raises(ProfileError, match=r"bad.yaml: fhir rule 1 \(Patient.name\)"):
        load_profile(bad)
    (tmp_path / "broken.yaml").write_text("fhir: [\n")
    with pytest.raises(ProfileError, match="invalid YAML"):
        load_profile(tmp_path / "broken.yaml")
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "missing.yaml")


def test_engine_refuses_a_bad_channel_profile_at_start(tmp_path: Path) -> None:
    config = PrivacyConfig.model_validate(
        {"channels": {"hl7": {"hl7": [{"field": "PID-5", "method": "shred"}]}}}
    )
    with pytest.raises(ProfileError, match=r"privacy.channels.hl7: hl7 rule 1 \(PID-5\)"):
        PrivacyEngine(config)
    good = tmp_path / "p.yaml"
    good.write_text("name: mine\nfhir: []\nhl7: []\n")
    engine = PrivacyEngine(
        PrivacyConfig.model_validate({"channels": {"x": {"profile": str(good)}}})
    )
    assert engine.profile_for("x").name == "mine" and engine.profile_for("y").name == "default"


def test_engine_structured_copies_use_the_detector_too() -> None:
    engine = PrivacyEngine(PrivacyConfig())
    vault = engine.new_vault("fhir")
    report = load("hl7-r4-DiagnosticReport-f201.json")
    report["conclusion"] = "Discussed with Dr. Gregory House on 2013-03-11; call 212-867-5309."
    out = engine.deidentify_fhir(report, vault)
    assert "House" not in out["conclusion"] and "867-5309" not in out["conclusion"]
    assert "2013-03-11" not in out["conclusion"]


def test_harvest_hl7_ignores_mllp_framing_and_line_endings() -> None:
    er7 = (CORPUS / "hl7v2" / "msfc-ADT-A01-02.hl7").read_text()
    framed = "\x0b" + er7.replace("\r", "\n") + "\x1c\r"
    assert harvest_hl7(framed) == harvest_hl7(er7)


def test_privacy_config_section() -> None:
    from pydantic import ValidationError

    from sluicegate.core.config import Settings

    settings = Settings.model_validate(
        {"privacy": {"surrogates": "realistic", "date_shift_days": [-30, -5], "ner": False}}
    )
    engine = PrivacyEngine.from_settings(settings)
    assert engine.mode_for("fhir") == "realistic"
    assert -30 <= engine.new_vault("fhir").date_offset_days <= -5
    with pytest.raises(ValidationError, match="min <= max"):
        PrivacyConfig.model_validate({"date_shift_days": [10, -10]})
    with pytest.raises(ValidationError):
        PrivacyConfig.model_validate({"surrogates": "fancy"})
    with pytest.raises(ValidationError):
        PrivacyConfig.model_validate({"channels": {"fhir": {"profil": "x.yaml"}}})


def test_fhir_work_items_carry_every_rule_harvested_identifier() -> None:
    from sluicegate.adapters.fhir.extract import work_items

    bundle = json.loads(
        (
            Path(__file__).resolve().parents[1] / "samples" / "fhir" / "radiology-bundle.json"
        ).read_text()
    )
    [item] = work_items(bundle, tenant="t", channel="fhir")
    for kind, values in harvest_fhir(bundle).items():
        assert set(values) <= set(item.identifiers[kind]), kind
    assert "Jane Q. Testperson" in item.identifiers["name"]  # what extract collects itself stays
