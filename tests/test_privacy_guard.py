"""The guard: an independent scan that blocks identifiers, reports kinds only, fails closed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sluicegate.core.config import PrivacyConfig
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.privacy import guard as guard_module
from sluicegate.core.privacy.engine import PrivacyEngine
from sluicegate.core.privacy.guard import guard, scan

IDS = {
    "name": ["Jane Q. Testperson", "Testperson", "Jane", "Testperson, Jane"],
    "mrn": ["MRN-0048213", "7734"],
    "birth_date": ["1961-04-17"],
    "phone": ["+1-617-555-0142"],
    "address": ["42 Example Lane", "Springfield"],
    "email": ["jane.t@mail.test"],
}
CLEAN = "Comparison [DATE_1]. [PATIENT_1] has a 7 mm nodule in the right upper lobe, series 3."


def test_guard_module_shares_no_code_with_the_deidentifier() -> None:
    tree = ast.parse(Path(guard_module.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
            imported.update(f"{node.module}.{a.name}" for a in node.names)
    forbidden = ("detect", "known", "patterns", "names", "deidentify", "surrogates", "vault")
    assert not [
        m for m in imported if m.startswith("sluicegate") and m.rsplit(".", 1)[-1] in forbidden
    ]
    assert all(m.split(".")[0] in {"__future__", "re", "collections", "datetime"} for m in imported)


def test_clean_text_with_surrogate_tags_passes() -> None:
    assert scan(IDS, [CLEAN]) == []
    tags = "[PATIENT_1] [Patient 1] PATIENT_1 \\[ID\\_2\\] [ DATE_3 ] [PHONE_1] [EMAIL_1]"
    assert scan(IDS, [tags]) == []


def test_realistic_surrogates_from_reserved_ranges_pass() -> None:
    text = "Call (494) 555-0161 or mail kim@example.org; SSN 912-34-5678; host 192.0.2.7."
    assert scan({}, [text]) == []


@pytest.mark.parametrize(
    ("planted", "kind"),
    [
        ("Seen by JANE TESTPERSON today", "name"),
        ("testperson, jane was seen", "name"),
        ("Ms Testperson", "name"),
        ("MRN 0048213", "mrn"),
        ("mrn-0048213", "mrn"),
        ("id 7734 noted", "mrn"),
        ("DOB 04/17/1961", "birth_date"),
        ("born April 17th, 1961", "birth_date"),
        ("born 17 Apr 1961", "birth_date"),
        ("19610417", "birth_date"),
        ("17.04.1961", "birth_date"),
        ("call 617.555.0142", "phone"),
        ("call (617) 555 0142", "phone"),
        ("lives at 42 EXAMPLE LANE", "address"),
        ("from springfield", "address"),
        ("JANE.T@MAIL.TEST", "email"),
    ],
)
def test_known_identifiers_are_caught_in_any_format(planted: str, kind: str) -> None:
    found = scan(IDS, [CLEAN, f"{CLEAN} {planted}."])
    assert kind in found


@pytest.mark.parametrize(
    ("planted", "kind"),
    [
        ("SSN 123-45-6789", "ssn"),
        ("social security number 123456789", "ssn"),
        ("write to someone@hospital.org", "email"),
        ("phone (212) 867-5309", "phone"),
        ("phone +44 20 7946 0958", "phone"),
        ("account 000123456789", "digits"),
        ("card 4111 1111 1111 1111", "card"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "iban"),
    ],
)
def test_high_risk_patterns_are_caught(planted: str, kind: str) -> None:
    assert kind in scan({}, [f"{CLEAN} {planted}"])


def test_checksums_keep_lookalikes_out() -> None:
    assert "card" not in scan({}, ["ref 4111 1111 1111 1112"])
    assert "iban" not in scan({}, ["GB82 WEST 1234 5698 7654 33"])
    assert scan({}, ["SSN 000-12-3456 is invalid, so is 666-12-3456"]) == []


def test_a_lone_lowercase_word_is_not_a_name() -> None:
    ids = {"name": ["Will", "Grace Will"]}
    assert scan(ids, ["the patient will return"]) == []
    assert scan(ids, ["Will returns"]) == ["name"]


def test_findings_are_kinds_never_values() -> None:
    text = f"{CLEAN} JANE TESTPERSON MRN 0048213 SSN 123-45-6789 jane.t@mail.test"
    found = scan(IDS, [text])
    assert found == sorted(set(found))
    values = [v.casefold() for vs in IDS.values() for v in vs] + ["123-45-6789", "0048213"]
    assert not set(found) & set(values)
    assert not any(v in " ".join(found) for v in values if len(v) > 4)
    assert set(found) <= {"name", "mrn", "email", "ssn", "digits", "phone", "card", "iban"}


def test_guard_fails_closed() -> None:
    broken: dict[str, list[str]] = {"name": None}  # type: ignore[dict-item]
    assert guard(broken, {"findings": CLEAN}) == ["guard_error"]
    assert guard(IDS, {"findings": 42}) == ["guard_error"]  # type: ignore[dict-item]


def test_engine_guard_uses_the_items_identifiers() -> None:
    engine = PrivacyEngine(PrivacyConfig())
    item = WorkItem("t", "fhir", "radiology_report", "r", "k", {}, {"findings": "x"}, IDS)
    assert engine.guard(item, {"findings": CLEAN}) == []
    assert engine.guard(item, {"findings": CLEAN, "history": "Jane Testperson"}) == ["name"]
    out = engine.deidentify(
        WorkItem("t", "fhir", "r", "r", "k", {}, {"findings": "Jane Testperson, 04/17/1961"}, IDS)
    )
    assert engine.guard(item, out.inputs) == []


def test_realistic_id_fakes_shaped_like_ssn_or_phone_use_reserved_forms() -> None:
    from sluicegate.core.privacy.vault import Vault

    vault = Vault(mode="realistic", seed=9)
    for original in ("555-55-5555", "617-555-0142", "6175550142", "123456789"):
        fake = vault.surrogate("ID", original)
        assert scan({}, [f"id {fake}"]) == [], fake
